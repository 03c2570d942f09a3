/**
 * `GET /readyz` over real sockets: 503 while the first round of checks runs (the admin listener
 * is already open), 200 once every listener is bound, 503 again as soon as shutdown begins —
 * while `/healthz` stays 200 throughout — and never a token.
 */
import net from 'node:net';
import t from 'tap';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { Proxy } from '../../src/proxy.js';
import { adminRequest as get, body } from '../helpers/admin.js';
import { startBackends } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { freePorts, waitFor } from '../helpers/harness.js';
import { LogSink } from '../helpers/log-sink.js';

/** A backend that accepts connections and never answers: an http check on it lasts its whole timeout. */
async function silentServer(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

t.test('/readyz: 503 during the first round, 200 when serving, 503 from the start of shutdown; no token', async (t) => {
  const leaks = leakCheck();
  const [app] = await startBackends(['app-1'], { latencyMs: 600 });
  const silent = await silentServer();
  const [adminPort] = (await freePorts(1)) as [number];
  t.teardown(async () => {
    await app?.close();
    await silent.close();
  });
  const text = stringify({
    shutdown_timeout: '5s',
    admin: { listen: `127.0.0.1:${adminPort}`, token_env: 'READYZ_TEST_TOKEN' },
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: { health_check: { protocol: 'tcp', interval: '100ms', timeout: '500ms', rise: 1, fall: 1 }, backends: [{ name: 'app-1', address: app?.address }] },
      // Its check waits the whole 800 ms timeout: the first round is not done before then.
      slow: { health_check: { protocol: 'http', path: '/', interval: '1s', timeout: '800ms' }, backends: [{ name: 's-1', address: `127.0.0.1:${silent.port}` }] },
    },
  });
  const env = { READYZ_TEST_TOKEN: 'tok' };
  const config = await parseConfig(text, 'readyz.yaml', { env });
  const log = new LogSink();
  const proxy = new Proxy(config, { logger: log.logger('info'), env, adminToken: 'tok' });
  t.teardown(() => proxy.shutdown());
  const started = proxy.start();

  let early = await get(adminPort, '/readyz');
  const deadline = Date.now() + 3_000;
  while (early.error !== null && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    early = await get(adminPort, '/readyz');
  }
  t.equal(early.status, 503, 'the admin listener answers before the first round is done: 503');
  t.strictSame(body(early), { status: 'not ready' });
  t.equal((await get(adminPort, '/healthz')).status, 200, '/healthz is liveness only');
  t.notOk(proxy.ready);

  await started;
  const ready = await get(adminPort, '/readyz');
  t.equal(ready.status, 200, 'ready once listeners are bound and the round is done');
  t.strictSame(body(ready), { status: 'ready' });
  t.equal((await get(adminPort, '/readyz', { method: 'HEAD' })).status, 200, 'HEAD works too');
  t.equal((await get(adminPort, '/readyz', { method: 'POST' })).status, 405);
  t.equal((await get(adminPort, '/status')).status, 401, 'other endpoints still need the token');

  // A request in flight keeps the proxy draining for a while.
  const inFlight = request(proxy.address('web').port, { path: '/slow' });
  await waitFor(() => (app?.traffic.length ?? 0) === 1, 3_000, 'the request to reach the backend');
  const stopping = proxy.shutdown();
  const during = await get(adminPort, '/readyz');
  t.equal(during.status, 503, 'not ready once shutdown has begun');
  t.equal((await get(adminPort, '/healthz')).status, 200, 'still alive while draining');
  t.equal((await inFlight).status, 200, 'the request in flight finishes');
  await stopping;
  await app?.close();
  await silent.close();
  await leaks.assertClean(t);
});
