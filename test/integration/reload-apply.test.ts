/**
 * Proxy.reload() in process (SPEC §6): what a reload keeps, changes and drains, the all-or-
 * nothing rule, and the result it reports. Signals and the real binary: reload.test.ts.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { load, request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { backendSpecs, freePort, freePorts, steadyConfig, startProxy, waitFor, writeConfig, type BackendSpec } from '../helpers/harness.js';
import { closeAll, stopProxy, owned } from '../helpers/owned.js';

/** A handler that holds each request until `open()`; `waiting` counts those held. */
function gate(): { handler: TestBackend['handler']; open: () => void; waiting: () => number } {
  const held: (() => void)[] = [];
  let opened = false;
  return {
    handler: async (_req, res) => {
      if (!opened) await new Promise<void>((resolve) => held.push(resolve));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('held-then-done');
    },
    open: () => {
      opened = true;
      for (const resolve of held.splice(0)) resolve();
    },
    waiting: () => held.length,
  };
}

const refused = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

t.test('weights apply at once; kept backends are the same objects with their state; version and result', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['a', 'b'], { latencyMs: 10 }), closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const config = (weights: [number, number]): Record<string, unknown> => steadyConfig(backendSpecs(backends, (_, i) => ({ weight: weights[i] })));
  const h = own(await startProxy(config([1, 1]), { file }), stopProxy);
  const pool = h.proxy.pools.get('app');
  const [a, b] = pool?.backends ?? [];
  const stateBefore = pool?.core.memberState('a');
  t.equal(h.proxy.version, 1);
  t.equal(h.proxy.lastReload, null);

  writeConfig(file, config([4, 1]));
  const result = await h.proxy.reload();
  t.match(result, { ok: true, version: 2, changes: ['pool app: backend a weight 1 → 4'], errors: [] });
  t.match(result.at, /^\d{4}-\d\d-\d\dT/);
  t.equal(h.proxy.lastReload, result);
  t.equal(h.proxy.version, 2);
  t.equal(h.proxy.pools.get('app'), pool, 'same pool object');
  t.equal(pool?.backends[0], a, 'same backend objects');
  t.equal(pool?.backends[1], b);
  t.equal(a?.weight, 4);
  t.strictSame(pool?.core.memberState('a'), stateBefore, 'health, serving since and the rest kept');
  t.match(h.log.events('reload').at(-1), { ok: true, version: 2, changes: ['pool app: backend a weight 1 → 4'] });

  const agent = own(new http.Agent({ keepAlive: true, maxSockets: 10 }), (x) => x.destroy());
  await load(10, 300, () => request(h.port(), { agent }));
  const share = backends[0]?.traffic.length ?? 0;
  t.ok(share / 300 > 0.7, `a got ${share}/300 after weight 4:1`);

  const same = await h.proxy.reload();
  t.match(same, { ok: true, version: 3, changes: [] }, 'applied, with nothing changed');
  t.strictSame(h.proxy.reloads, { ok: 2, failed: 0 });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('an invalid file changes nothing and reports FILE:LINE:COL lines', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(steadyConfig(backendSpecs([a])), { file }), stopProxy);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, 'listeners:\n  - name: web\n    listen: 127.0.0.1:0\n    pool: nope\npools:\n  app:\n    backends: [{ name: a, address: "x", weight: 0 }]\n');
  const result = await h.proxy.reload();
  t.equal(result.ok, false);
  t.equal(result.version, 1);
  t.strictSame(result.changes, []);
  t.ok(result.errors.length >= 2, result.errors.join('\n'));
  for (const line of result.errors) t.match(line, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+: \\S+: .+`));
  t.match(h.log.events('reload').at(-1), { ok: false, code: 'CONFIG_INVALID', level: 'error' });
  t.equal((await request(h.port())).status, 200, 'the old config serves');
  t.strictSame(h.proxy.reloads, { ok: 0, failed: 1 });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('an added backend serves as soon as the reload returns (checked while preparing)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a, c] = own((await startBackends(['a', 'c'])) as [TestBackend, TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(steadyConfig(backendSpecs([a]), { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' } }), { file }), stopProxy);
  writeConfig(file, steadyConfig([...backendSpecs([a]), { name: 'c', address: c.address, weight: 100 }], { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' } }));
  const result = await h.proxy.reload();
  t.match(result.changes, ['pool app: backend c added (127.0.0.1:' + c.port + ', hot, weight 100)']);
  t.match(h.proxy.pools.get('app')?.core.memberState('c'), { health: 'up' }, 'up without waiting for an interval');
  t.equal((await request(h.port())).body, 'c', 'the new backend takes traffic at once');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a removed backend takes no new request; its in-flight request completes, then it is closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a, b] = own((await startBackends(['a', 'b'])) as [TestBackend, TestBackend], closeAll);
  const g = gate();
  b.handler = g.handler;
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(steadyConfig(backendSpecs([b]), { response_timeout: '5s' }), { file }), stopProxy);
  const slow = request(h.port());
  await waitFor(() => g.waiting() === 1);
  const retired = h.proxy.pools.get('app')?.backends[0];
  writeConfig(file, steadyConfig(backendSpecs([a]), { response_timeout: '5s' }));
  const result = await h.proxy.reload();
  t.strictSame(result.changes, [`pool app: backend a added (${a.address}, hot, weight 1)`, 'pool app: backend b removed']);
  t.equal(h.proxy.pools.get('app')?.draining, 1, 'b drains');
  for (let i = 0; i < 5; i++) t.equal((await request(h.port())).body, 'a');
  t.equal(b.traffic.length, 1, 'b got nothing new');
  g.open();
  t.match(await slow, { status: 200, body: 'held-then-done', error: null }, 'the in-flight request completed');
  await waitFor(() => h.proxy.pools.get('app')?.draining === 0, 1000, 'b closed once idle');
  t.equal(retired?.inFlight, 0);
  t.equal(h.log.events('backend_down').length, 0, 'no health event for a removed backend');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('an idle removed backend is closed at once: its pooled connections too', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a, b] = own((await startBackends(['a', 'b'])) as [TestBackend, TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(steadyConfig(backendSpecs([a, b])), { file }), stopProxy);
  for (let i = 0; i < 4; i++) await request(h.port());
  const removed = h.proxy.pools.get('app')?.backends[1];
  const pooled = Object.values(removed?.agent.freeSockets ?? {}).flat();
  t.equal(pooled.length, 1, 'b has a pooled connection');
  writeConfig(file, steadyConfig(backendSpecs([a])));
  t.equal((await h.proxy.reload()).ok, true);
  t.equal(h.proxy.pools.get('app')?.draining, 0, 'nothing to wait for');
  t.equal(pooled[0]?.destroyed, true, 'its pooled connection closed');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('drain_timeout bounds a removed backend: what it still carries is closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a, b] = own((await startBackends(['a', 'b'])) as [TestBackend, TestBackend], closeAll);
  const g = gate();
  b.handler = g.handler;
  const file = join(t.testdir(), 'proxy.yaml');
  const pool = { response_timeout: '5s', drain_timeout: '150ms', retries: 0 };
  const h = own(await startProxy(steadyConfig(backendSpecs([a, b], (x) => ({ weight: x === b ? 100 : 1 })), pool), { file }), stopProxy);
  const slow = request(h.port(), { method: 'POST', body: 'x' });
  await waitFor(() => g.waiting() === 1);
  writeConfig(file, steadyConfig(backendSpecs([a]), pool));
  t.equal((await h.proxy.reload()).ok, true);
  const reply = await slow;
  // The gate is still shut: only the drain could have ended it (response_timeout would be a 504).
  t.equal(reply.status, 502, 'cut at drain_timeout, not at response_timeout: the backend connection was closed under it');
  t.equal(h.proxy.pools.get('app')?.draining, 0);
  g.open();
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a backend whose address changes is a new backend; the old one finishes its request', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [old, moved] = own((await startBackends(['old', 'moved'])) as [TestBackend, TestBackend], closeAll);
  const g = gate();
  old.handler = g.handler;
  const file = join(t.testdir(), 'proxy.yaml');
  const spec = (b: TestBackend): BackendSpec[] => [{ name: 'app-1', address: b.address }];
  const h = own(await startProxy(steadyConfig(spec(old), { response_timeout: '5s' }), { file }), stopProxy);
  const before = h.proxy.pools.get('app')?.backends[0];
  const slow = request(h.port());
  await waitFor(() => g.waiting() === 1);
  writeConfig(file, steadyConfig(spec(moved), { response_timeout: '5s' }));
  t.match((await h.proxy.reload()).changes, [`pool app: backend app-1 replaced (address ${old.address} → ${moved.address})`]);
  const after = h.proxy.pools.get('app')?.backends[0];
  t.not(after, before, 'a new object');
  t.equal(after?.inFlight, 0, 'fresh in-flight count');
  t.equal((await request(h.port())).body, 'moved');
  g.open();
  t.equal((await slow).status, 200);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('pools added and removed, routes switched; the removed pool finishes its request', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a, x, y] = own((await startBackends(['a', 'x', 'y'])) as [TestBackend, TestBackend, TestBackend], closeAll);
  const g = gate();
  x.handler = g.handler;
  const file = join(t.testdir(), 'proxy.yaml');
  const pool = (b: TestBackend) => ({ health_check: { protocol: 'tcp', interval: '100ms', timeout: '100ms' }, response_timeout: '5s', backends: [{ name: b.name, address: b.address }] });
  const config = (apiPool: string, pools: Record<string, unknown>) => ({
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ path_prefix: '/api/', pool: apiPool }, { pool: 'app' }] }],
    pools: { app: pool(a), ...pools },
  });
  const h = own(await startProxy(config('x', { x: pool(x) }), { file }), stopProxy);
  const port = h.port();
  const slow = request(port, { path: '/api/slow' });
  await waitFor(() => g.waiting() === 1);
  const retired = h.proxy.pools.get('x');
  writeConfig(file, config('y', { y: pool(y) }));
  const result = await h.proxy.reload();
  t.strictSame(result.changes, ['listener web: routes */api/:x *:app → */api/:y *:app', 'pool y added (1 backend)', 'pool x removed']);
  t.equal(h.port(), port, 'the listener was updated in place');
  t.equal((await request(port, { path: '/api/v' })).body, 'y', 'the new pool serves at once');
  t.equal(h.proxy.pools.has('x'), false);
  t.equal(retired?.draining, 1);
  g.open();
  t.equal((await slow).status, 200, 'the removed pool finished its request');
  await waitFor(() => retired?.draining === 0, 1000, 'removed pool closed');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('listeners: added, rebound (new address first, old one drains), removed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const g = gate();
  a.handler = g.handler;
  const file = join(t.testdir(), 'proxy.yaml');
  const [p1, p2, p3] = (await freePorts(3)) as [number, number, number];
  const pools = { app: { health_check: { protocol: 'tcp', interval: '100ms', timeout: '100ms' }, response_timeout: '5s', backends: backendSpecs([a]) } };
  const h = own(await startProxy({ listeners: [{ name: 'web', listen: `127.0.0.1:${p1}`, pool: 'app' }, { name: 'old', listen: '127.0.0.1:0', pool: 'app' }], pools }, { file }), stopProxy);
  const oldPort = h.port('old');
  const agent = own(new http.Agent({ keepAlive: true }), (x) => x.destroy());
  const inFlightOnWeb = request(p1, { agent });
  const inFlightOnOld = request(oldPort, { agent });
  await waitFor(() => g.waiting() === 2);
  writeConfig(file, { listeners: [{ name: 'web', listen: `127.0.0.1:${p2}`, pool: 'app' }, { name: 'new', listen: `127.0.0.1:${p3}`, pool: 'app' }], pools });
  const result = await h.proxy.reload();
  t.strictSame(result.changes, [
    `listener new added (http on 127.0.0.1:${p3})`,
    'listener old removed',
    `listener web rebound: listen 127.0.0.1:${p1} → 127.0.0.1:${p2}`,
  ]);
  t.ok(await refused(p1), 'the old address accepts nothing new');
  t.ok(await refused(oldPort), 'the removed listener accepts nothing new');
  g.open();
  const [web, old] = await Promise.all([inFlightOnWeb, inFlightOnOld]);
  t.match(web, { status: 200, error: null });
  t.equal(web.headers.connection, 'close', 'a draining listener closes the connection after the response');
  t.match(old, { status: 200, error: null });
  t.equal((await request(p2)).status, 200, 'the new address serves');
  t.equal((await request(p3)).status, 200, 'the added listener serves');
  t.strictSame([...h.proxy.listeners.keys()].sort(), ['new', 'web']);
  t.strictSame(h.log.events('listening').slice(-2).map((e) => e.listener), ['web', 'new']);
  await own.stopAll();
  await leaks.assertClean(t);
});

/** Resolves once `port` accepts a connection. */
async function accepting(port: number): Promise<void> {
  for (;;) {
    if (!(await refused(port))) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A pool whose only backend never answers its http check: preparing it takes the check timeout. */
async function slowPool(): Promise<{ pool: Record<string, unknown>; close: () => Promise<void> }> {
  const silent = net.createServer((socket) => socket.resume());
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
  const port = (silent.address() as net.AddressInfo).port;
  return {
    pool: { health_check: { protocol: 'http', path: '/', interval: '1h', timeout: '300ms' }, backends: [{ name: 's', address: `127.0.0.1:${port}` }] },
    close: () => new Promise<void>((resolve) => silent.close(() => resolve())),
  };
}

t.test('a request on a listener bound by a reload waits for the swap, then is served', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const extra = await freePort();
  const base = steadyConfig(backendSpecs([a]));
  const h = own(await startProxy(base, { file }), stopProxy);
  const slow = own(await slowPool(), (x) => x.close());
  writeConfig(file, {
    ...base,
    listeners: [...(base.listeners as unknown[]), { name: 'extra', listen: `127.0.0.1:${extra}`, pool: 'app' }],
    pools: { ...(base.pools as object), slow: slow.pool },
  });
  let swapped = false;
  const reloading = h.proxy.reload().then((r) => {
    swapped = true;
    return r;
  });
  await accepting(extra);
  t.equal(swapped, false, 'the new address is bound while the reload is being prepared');
  const reply = await request(extra);
  t.equal(swapped, true, 'answered only after the swap');
  t.match(reply, { status: 200, body: 'a', error: null });
  t.equal((await reloading).ok, true);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a bind failure rolls the whole reload back', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a, b] = own((await startBackends(['a', 'b'])) as [TestBackend, TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const blocker = own(net.createServer(), (s) => new Promise((resolve) => s.close(resolve)));
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', () => resolve()));
  const busy = (blocker.address() as net.AddressInfo).port;
  const free = await freePort();
  const h = own(await startProxy(steadyConfig(backendSpecs([a])), { file }), stopProxy);
  const port = h.port();
  writeConfig(file, {
    ...steadyConfig(backendSpecs([a, b], () => ({ weight: 7 })), { response_timeout: '3s' }),
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }, { name: 'extra', listen: `127.0.0.1:${free}`, pool: 'app' }, { name: 'blocked', listen: `127.0.0.1:${busy}`, pool: 'app' }],
  });
  const result = await h.proxy.reload();
  t.match(result, { ok: false, version: 1, changes: [] });
  t.strictSame(result.errors, [`listener blocked: cannot listen on 127.0.0.1:${busy}: EADDRINUSE`]);
  t.match(h.log.events('reload').at(-1), { ok: false, code: 'LISTEN_FAILED' });
  t.ok(await refused(free), 'the listener bound for the reload was closed again');
  t.strictSame([...h.proxy.listeners.keys()], ['web']);
  const pool = h.proxy.pools.get('app');
  t.strictSame(pool?.backends.map((x) => [x.name, x.weight]), [['a', 1]], 'pools unchanged');
  t.equal(pool?.responseTimeoutMs, 1000);
  t.equal((await request(port)).status, 200, 'still serving');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('reloads asked for while one runs are coalesced into one more', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(steadyConfig(backendSpecs([a])), { file }), stopProxy);
  writeConfig(file, steadyConfig(backendSpecs([a], () => ({ weight: 2 }))));
  const first = h.proxy.reload();
  const second = h.proxy.reload();
  const third = h.proxy.reload();
  t.equal(second, third, 'one queued reload for every caller meanwhile');
  const results = await Promise.all([first, second, third]);
  t.strictSame(results.map((r) => r.version), [2, 3, 3]);
  t.strictSame(results[1]?.changes, [], 'the queued reload found nothing more to change');
  t.equal(h.log.events('reload').length, 2);
  await h.stop();
  t.match(await h.proxy.reload(), { ok: false, errors: ['the proxy is not running'] }, 'no reload after shutdown');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('log settings apply at once', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(steadyConfig(backendSpecs([a])), { file }), stopProxy);
  await request(h.port());
  await waitFor(() => h.log.access.length === 1);
  writeConfig(file, { ...steadyConfig(backendSpecs([a])), log: { level: 'warn', access: false } });
  t.strictSame((await h.proxy.reload()).changes, ['log.level debug → warn', 'log.access true → false']);
  const mark = h.log.lines.length;
  await request(h.port());
  await h.stop();
  t.equal(h.log.access.length, 1, 'no access line after access: false');
  t.strictSame(h.log.lines.slice(mark).filter((l) => l.level === 'debug' || l.level === 'info'), [], 'nothing below warn after level: warn');
  await own.stopAll();
  await leaks.assertClean(t);
});
