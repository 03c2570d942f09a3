/**
 * Graceful shutdown of the real binary (SPEC §6): SIGTERM / SIGINT stop accepting, let
 * in-flight requests finish with `Connection: close`, close idle keep-alive connections at once,
 * cut what is left at shutdown_timeout, flush the log and exit 0; a second signal exits at once.
 * In process: the same through Proxy.shutdown(), and a reload racing a shutdown.
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { owned } from '../helpers/owned.js';
import { backendSpecs, freePort, freePorts, STEADY_CHECKS, steadyConfig, startProxy, waitFor, writeConfig } from '../helpers/harness.js';
import { ProxyProcess } from '../helpers/process.js';

/** A backend that holds requests for /slow until `release()` and answers others at once. */
async function heldBackend(t: Test): Promise<{ backend: TestBackend; release: () => void }> {
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  const [backend] = (await startBackends(['slow'])) as [TestBackend];
  // Released first, so that closing does not wait on a held request.
  t.teardown(async () => {
    release();
    await backend.close();
  });
  backend.handler = async (req, res) => {
    if (req.url === '/slow') await held;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('finished');
  };
  return { backend, release };
}

/**
 * Idle client connections: one kept alive after a complete exchange, one that never sent
 * anything (a browser's spare connection). Resolves with a function that resolves once both closed.
 */
async function idleConnections(t: Test, port: number): Promise<() => Promise<void>> {
  const used = net.connect(port, '127.0.0.1');
  const spare = net.connect(port, '127.0.0.1');
  for (const socket of [used, spare]) {
    socket.on('error', () => undefined);
    t.teardown(() => socket.destroy());
  }
  await new Promise((resolve) => spare.once('connect', resolve));
  used.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise<void>((resolve) => {
    let text = '';
    used.on('data', (d: Buffer) => {
      text += d.toString();
      if (text.endsWith('finished\r\n0\r\n\r\n')) resolve(); // the whole chunked response
    });
  });
  return async () => {
    await Promise.all([closed(used), closed(spare)]);
  };
}

async function start(t: Test, backend: TestBackend, shutdownTimeout: string): Promise<{ proxy: ProxyProcess; port: number }> {
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, {
    shutdown_timeout: shutdownTimeout,
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    // Steady checks: the startup round decides a backend's health from one check, and a 100 ms
    // timeout on a loaded machine (the child still starting, two cores shared) marked the live
    // backend down, so the held request got a 503 and never reached it.
    pools: { app: { health_check: STEADY_CHECKS, response_timeout: '10s', backends: [{ name: backend.name, address: backend.address }] } },
  });
  const proxy = new ProxyProcess(['-c', file]);
  t.teardown(() => proxy.kill());
  return { proxy, port: await proxy.port('web') };
}

/** Resolves when `socket` closes. */
const closed = (socket: net.Socket): Promise<void> => new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

/** Whether `promise` has settled, read without waiting. */
function settled(promise: Promise<unknown>): () => boolean {
  let done = false;
  promise.then(
    () => (done = true),
    () => (done = true),
  );
  return () => done;
}

t.test('SIGTERM: the request in flight completes with Connection: close, idle connections close, new ones are refused, exit 0', async (t) => {
  const { backend, release } = await heldBackend(t);
  const { proxy, port } = await start(t, backend, '5s');
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const slow = request(port, { agent, path: '/slow' });
  const slowDone = settled(slow);
  await waitFor(() => backend.traffic.length === 1);
  const idle = await idleConnections(t, port);
  const idleClosed = idle();

  proxy.signal('SIGTERM');
  await proxy.waitForLine((l) => l.type === 'shutdown' && l.phase === 'draining');
  await idleClosed;
  t.notOk(slowDone(), 'idle connections were closed at once: while the request in flight was still held');
  t.match(await request(port), { status: 0, error: 'ECONNREFUSED' }, 'new connections are refused');
  proxy.signal('SIGHUP');
  await proxy.waitForLine((l) => l.msg === 'SIGHUP ignored: shutting down');

  release();
  const reply = await slow;
  t.match(reply, { status: 200, body: 'finished', error: null }, 'the request in flight completed');
  t.equal(reply.headers.connection, 'close');
  const exit = await proxy.exited;
  t.equal(exit.code, 0, 'exit 0');
  t.match(proxy.events('shutdown').at(-1), { phase: 'stopped', outcome: 'drained' }, 'the last log line was flushed');
  t.strictSame(proxy.events('reload'), [], 'SIGHUP during shutdown did nothing');
});

t.test('a second SIGTERM exits at once', async (t) => {
  const { backend, release } = await heldBackend(t);
  const { proxy, port } = await start(t, backend, '10s');
  const slow = request(port, { path: '/slow' });
  await waitFor(() => backend.traffic.length === 1);
  proxy.signal('SIGTERM');
  await proxy.waitForLine((l) => l.type === 'shutdown' && l.phase === 'draining');
  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  t.equal(exit.code, 1, 'not a clean shutdown');
  t.notOk(
    proxy.events('shutdown').some((l) => l.phase === 'stopped'),
    'exited at the second signal, not at shutdown_timeout (no drain outcome logged)',
  );
  t.not((await slow).error, null, 'the request in flight was cut');
});

t.test('SIGINT: shutdown_timeout cuts what is still in flight, then exit 0', async (t) => {
  const { backend, release } = await heldBackend(t);
  const { proxy, port } = await start(t, backend, '300ms');
  const slow = request(port, { path: '/slow' });
  await waitFor(() => backend.traffic.length === 1);
  proxy.signal('SIGINT');
  const exit = await proxy.exited;
  t.equal(exit.code, 0);
  t.match(proxy.events('shutdown').at(-1), { phase: 'stopped', outcome: 'timeout' }, 'at shutdown_timeout, with the request still held');
  t.not((await slow).error, null, 'the client saw its connection closed, not a complete response');
});

t.test('in process: idle keep-alive closed at once, busy ones after their response, the rest at shutdown_timeout', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const { backend, release } = await heldBackend(t);
  const h = own(await startProxy({ ...steadyConfig(backendSpecs([backend]), { response_timeout: '5s' }), shutdown_timeout: '300ms' }), (h) => h.stop());
  const agent = own(new http.Agent({ keepAlive: true }), (a) => a.destroy());
  const slow = request(h.port(), { agent, path: '/slow' });
  await waitFor(() => backend.traffic.length === 1);
  const idle = await idleConnections(t, h.port());
  await waitFor(() => h.proxy.listeners.get('web')?.openConnections === 3);
  const idleClosed = idle();
  const stopping = h.stop();
  await idleClosed;
  // Not "draining is logged" yet: with workers the primary announces it when their listeners are
  // closed, a message that may come after the idle connections they closed.
  t.notOk(h.log.events('shutdown').some((e) => e.phase === 'stopped'), 'idle connections closed at once: before shutdown_timeout cut the rest');
  await stopping;
  t.not((await slow).error, null, 'cut at shutdown_timeout');
  t.match(h.log.events('shutdown'), [{ phase: 'draining', timeout_ms: 300 }, { phase: 'stopped', outcome: 'timeout' }]);
  release();
  await own.stopAll();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('in process: a reload prepared while shutdown begins is abandoned, nothing bound stays open', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], ([a]) => a.close());
  // A new pool whose backend never answers its http check: the reload spends the check timeout preparing.
  const silent = own(net.createServer((socket) => socket.resume()), (s) => new Promise((resolve) => s.close(resolve)));
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const file = join(t.testdir(), 'proxy.yaml');
  const extra = await freePort();
  const h = own(await startProxy(steadyConfig(backendSpecs([a])), { file }), (h) => h.stop());
  writeConfig(file, {
    ...steadyConfig(backendSpecs([a])),
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }, { name: 'extra', listen: `127.0.0.1:${extra}`, pool: 'app' }],
    pools: {
      ...(steadyConfig(backendSpecs([a])).pools as object),
      slow: { health_check: { protocol: 'http', path: '/', interval: '1h', timeout: '200ms' }, backends: [{ name: 's', address: `127.0.0.1:${(silent.address() as net.AddressInfo).port}` }] },
    },
  });
  const reloading = h.proxy.reload();
  let held = request(extra);
  for (let i = 0; i < 100; i++) {
    const probe = await Promise.race([held, new Promise<null>((r) => setTimeout(() => r(null), 20))]);
    if (probe === null) break; // connected and waiting: held by the listener the reload bound
    held = request(extra); // refused: not bound yet
  }
  await h.stop();
  const result = await reloading;
  t.match(result, { ok: false, errors: ['the proxy began shutting down'] });
  t.match(await held, { status: 0 }, 'the request held by the abandoned listener was closed, not served');
  t.match(await request(extra), { error: 'ECONNREFUSED' });
  t.strictSame([...h.proxy.listeners.keys()], ['web']);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('in process: shutdown waits for a listener a reload left draining', async (t) => {
  const leaks = leakCheck();
  const { backend, release } = await heldBackend(t);
  const file = join(t.testdir(), 'proxy.yaml');
  const [p1, p2] = (await freePorts(2)) as [number, number];
  const config = (port: number) => ({ ...steadyConfig(backendSpecs([backend]), { response_timeout: '5s' }, { listen: `127.0.0.1:${port}` }), shutdown_timeout: '3s' });
  const h = await startProxy(config(p1), { file });
  t.teardown(() => h.stop());
  const slow = request(p1, { path: '/slow' });
  await waitFor(() => backend.traffic.length === 1);
  writeConfig(file, config(p2));
  t.match(await h.proxy.reload(), { ok: true, changes: [`listener web rebound: listen 127.0.0.1:${p1} → 127.0.0.1:${p2}`] });
  const stopping = h.stop();
  // Released once shutdown has begun: the draining listener's request must still finish.
  await waitFor(() => h.log.events('shutdown').length > 0, undefined, 'shutdown begins');
  release();
  t.match(await slow, { status: 200, body: 'finished', error: null }, 'the old socket finished its request');
  await stopping;
  t.match(h.log.events('shutdown').at(-1), { phase: 'stopped', outcome: 'drained' });
  await backend.close();
  await leaks.assertClean(t);
});

for (const workers of [1, 2]) {
  t.test(`in process, workers: ${workers}: from the moment draining is announced, new connections are refused`, async (t) => {
    const own = owned(t);
    const [a] = own((await startBackends(['a'])) as [TestBackend], ([a]) => a.close());
    const h = own(await startProxy({ ...steadyConfig(backendSpecs([a])), workers }), (h) => h.stop());
    const port = h.port();
    t.match(await request(port), { status: 200 }, 'served before');
    // Connecting at the very event: with workers the primary holds the listening socket, and it
    // used to announce draining before any worker had closed its listeners (accepted, then reset).
    let probe: ReturnType<typeof request> | null = null;
    const unsubscribe = h.proxy.events.subscribe((event) => {
      if (event.type === 'shutdown' && event.phase === 'draining') probe = request(port);
    });
    await h.stop();
    unsubscribe();
    t.ok(probe !== null, 'draining was announced');
    t.match(await probe, { status: 0, error: 'ECONNREFUSED' }, 'the connection made at `draining` was refused');
    await own.stopAll();
  });
}
