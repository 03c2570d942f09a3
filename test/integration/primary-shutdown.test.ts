/**
 * A primary's shutdown (SPEC §9) leaves nothing behind in its process: the metrics registry is
 * closed (no event subscription, no event-loop sampler), and sockets, servers and timers are
 * back to where they were before it started.
 */
import t from 'tap';
import { adminRequest } from '../helpers/admin.js';
import { startBackends } from '../helpers/backend.js';
import { leakCheck } from '../helpers/handles.js';
import { backendSpecs, freePort, startProxy, steadyConfig } from '../helpers/harness.js';

t.test('a primary with 2 workers closes its metrics and returns to the handle baseline', async (t) => {
  const backends = await startBackends(['a']);
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const leaks = leakCheck();
  const admin = await freePort();
  const proxy = await startProxy({ ...steadyConfig(backendSpecs(backends)), workers: 2, admin: { listen: `127.0.0.1:${admin}` } });
  let stopped = false;
  t.teardown(() => (stopped ? undefined : proxy.stop()));
  const scrape = await adminRequest(proxy.adminPort(), '/metrics');
  t.equal(scrape.status, 200, '/metrics answers');
  t.ok(proxy.proxy.events.subscribers > 0, 'the metrics registry follows the events while running');
  await proxy.stop();
  stopped = true;
  t.equal(proxy.proxy.events.subscribers, 0, 'no subscriber left on the events after shutdown');
  await leaks.assertClean(t, 5_000);
});
