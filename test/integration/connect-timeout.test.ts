/**
 * connect_timeout over real sockets (SPEC §4): a backend whose connects hang (see
 * helpers/blackhole.ts) costs each request at most connect_timeout, after which HTTP requests,
 * WebSocket upgrades and TCP connections are retried on another backend, and the failures count
 * as passive evidence. With nothing else to try the client gets a 502 (HTTP) or a close (TCP).
 */
import t from 'tap';
import { WebSocket } from 'ws';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { Blackhole } from '../helpers/blackhole.js';
import { request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { simpleConfig, startProxy, STEADY_CHECKS, WAIT_FLOOR_MS, waitFor } from '../helpers/harness.js';
import { startTcpBackends, TcpClient, tcpConfig, type TcpBackend, startWsBackends, type WsBackend } from '../helpers/tunnels.js';
import { close, closeAll, stopProxy, owned } from '../helpers/owned.js';

const CONNECT_TIMEOUT = { connect_timeout: '150ms', health_check: { ...STEADY_CHECKS, timeout: '1s', fall: 5 }, passive: { consecutive_failures: 2 } };

t.test('HTTP: a hanging connect is abandoned at connect_timeout and retried elsewhere; passive detection counts it', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const hole = own(await Blackhole.start(), close);
  const [good] = own((await startBackends(['good'])) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig([{ name: 'hole', address: hole.address, weight: 10 }, { name: 'good', address: good.address }], CONNECT_TIMEOUT)), stopProxy);
  await hole.swallow();

  const started = Date.now();
  const reply = await request(h.port(), { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
  const took = Date.now() - started;
  t.equal(reply.status, 200, 'answered by the other backend');
  t.equal(good.traffic[0]?.body, 'payload', 'with its body intact (nothing had been sent)');
  t.ok(took >= 140, `not before connect_timeout (${took} ms)`);
  await waitFor(() => h.log.access.length === 1, 2_000, 'access line');
  t.match(h.log.access[0], { backend: 'good', retries: 1, status: 200 });
  // The code says which clock gave up: ours (connect_timeout), not the OS's (ETIMEDOUT, minutes).
  t.ok(h.log.lines.some((l) => JSON.stringify(l).includes('UPSTREAM_CONNECT_TIMEOUT')), 'abandoned at connect_timeout: the timeout is logged with its code');

  await request(h.port());
  await waitFor(() => h.log.events('backend_down').length === 1, 2_000, 'backend_down');
  t.match(h.log.events('backend_down')[0], { backend: 'hole', source: 'passive' }, 'two timeouts in a row mark it down');
  t.match(JSON.stringify(h.log.events('backend_down')[0]), /UPSTREAM_CONNECT_TIMEOUT/, 'with the timeouts as evidence');

  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('HTTP: with nothing else to try the client gets 502 at connect_timeout', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const hole = own(await Blackhole.start(), close);
  const h = own(await startProxy(simpleConfig([{ name: 'hole', address: hole.address }], { ...CONNECT_TIMEOUT, passive: { consecutive_failures: 0 } })), stopProxy);
  await hole.swallow();
  const reply = await request(h.port());
  t.equal(reply.status, 502);
  // With workers the access line comes from a worker's log, which may reach the test after the reply.
  await waitFor(() => h.log.lines.some((l) => JSON.stringify(l).includes('UPSTREAM_CONNECT_TIMEOUT')), WAIT_FLOOR_MS, 'the connect timeout logged');
  t.pass('at once after connect_timeout, not at the OS connect timeout');
  t.notMatch(reply.body, /127\.0\.0\.1|ETIMEDOUT|Error/, 'a generic body');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('WebSocket: an upgrade whose first backend hangs is tunnelled to another', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const hole = own(await Blackhole.start(), close);
  const [ws] = own((await startWsBackends(['ws-1'])) as [WsBackend], closeAll);
  const h = own(await startProxy(simpleConfig([{ name: 'hole', address: hole.address, weight: 10 }, { name: 'ws-1', address: ws.address }], CONNECT_TIMEOUT)), stopProxy);
  await hole.swallow();
  const client = new WebSocket(`ws://127.0.0.1:${h.port()}/`);
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  client.send('ping');
  const echoed = await new Promise<string>((resolve) => client.once('message', (d) => resolve(String(d))));
  t.equal(echoed, 'ws-1:ping', 'echoed by ws-1');
  t.equal(ws.upgrades.length, 1);
  client.close(1000);
  await new Promise((r) => client.once('close', r));
  await waitFor(() => h.log.access.length === 1, 2_000, 'access line');
  t.match(h.log.access[0], { backend: 'ws-1', retries: 1 });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('TCP: a connection whose first backend hangs is piped to another, even one that only half-closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const hole = own(await Blackhole.start(), close);
  const [echo] = own((await startTcpBackends(['echo-1'])) as [TcpBackend], closeAll);
  const h = own(await startProxy(tcpConfig([{ name: 'hole', address: hole.address, weight: 10 }, { name: 'echo-1', address: echo.address }], CONNECT_TIMEOUT)), stopProxy);
  await hole.swallow();
  // No bytes, only a FIN: by the time the hanging attempt is given up, Node has long emitted the
  // client's `end` (its buffer is empty), before the tunnel to echo-1 listens for it.
  const finOnly = TcpClient.connect(h.port());
  finOnly.socket.end();
  await finOnly.closed;
  t.ok(finOnly.ended, 'the echo backend saw the end and ended too');
  const client = TcpClient.connect(h.port());
  client.socket.write('hello');
  await client.waitFor('hello');
  client.socket.end();
  await client.closed;
  await waitFor(() => h.log.access.length === 2, 2_000, 'access lines');
  // In the order of their bytes, not of arrival: with workers each connection may have its own
  // worker, and each worker writes its access lines in its own 50 ms batches.
  t.match([...h.log.access].sort((a, b) => Number(a.bytes) - Number(b.bytes)), [
    { backend: 'echo-1', retries: 1, reason: 'closed', bytes: 0 },
    { backend: 'echo-1', retries: 1, reason: 'closed', bytes: 10 },
  ]);
  await own.stopAll();
  await leaks.assertClean(t);
});
