/**
 * SIGHUP reload of the real binary (SPEC §6): the config file is rewritten, a signal is sent to
 * the child process, and its JSON log and traffic tell what happened. Configs keep one fixed
 * listen port across reloads (port 0 would mean a new port, i.e. a rebind).
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import net from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { request, type Reply } from '../helpers/client.js';
import { freePort, freePorts, STEADY_CHECKS, waitFor, writeConfig } from '../helpers/harness.js';
import { ProxyProcess, type LogLine } from '../helpers/process.js';
import { closeAll, owned, type Owned } from '../helpers/owned.js';

interface Backend {
  readonly name: string;
  readonly address: string;
  readonly weight?: number;
  readonly role?: 'hot' | 'warm';
}

const CHECKS = STEADY_CHECKS;

function config(port: number, backends: readonly Backend[], pool: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: `127.0.0.1:${port}`, pool: 'app' }],
    pools: { app: { health_check: CHECKS, connect_timeout: '200ms', response_timeout: '2s', drain_timeout: '500ms', backends, ...pool } },
    ...extra,
  };
}

const spec = (b: TestBackend, more: Partial<Backend> = {}): Backend => ({ name: b.name, address: b.address, ...more });

/** Starts the binary on `file` and waits for its listener. */
async function start(t: Test, file: string): Promise<ProxyProcess> {
  const proxy = new ProxyProcess(['-c', file]);
  t.teardown(() => proxy.kill());
  await proxy.port('web');
  return proxy;
}

/** Sends SIGHUP and waits for the reload event it produces (the `n`th overall). */
async function reload(proxy: ProxyProcess, n: number): Promise<LogLine> {
  proxy.signal('SIGHUP');
  await proxy.waitForLine(() => proxy.events('reload').length >= n);
  return proxy.events('reload')[n - 1] as LogLine;
}

const failed = (r: Reply): boolean => r.status !== 200 || r.error !== null;

/** A server on 127.0.0.1 port 0, closed with the test. */
async function listening(own: Owned, server: net.Server): Promise<number> {
  own(server, (s) => new Promise((resolve) => s.close(resolve)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as net.AddressInfo).port;
}

t.test('10 reloads under steady load (8 clients, keep-alive and not): no request fails', async (t) => {
  const own = owned(t);
  const backends = own(await startBackends(['a', 'b', 'c', 'd'], { latencyMs: 3 }), closeAll);
  const [a, b, c, d] = backends as [TestBackend, TestBackend, TestBackend, TestBackend];
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [spec(a), spec(b)]));
  const proxy = await start(t, file);

  // Each step changes something different: weights, added / removed / replaced backends, timeouts, routes.
  const steps: Record<string, unknown>[] = [
    config(port, [spec(a, { weight: 3 }), spec(b)]),
    config(port, [spec(a, { weight: 3 }), spec(b), spec(c)]),
    config(port, [spec(a), spec(c)]),
    config(port, [spec(a), spec(c)], { response_timeout: '3s', retries: 1 }),
    config(port, [spec(a), { name: 'c', address: d.address }]),
    config(port, [spec(a, { weight: 2 }), spec(b), { name: 'c', address: d.address }]),
    { ...config(port, [spec(a), spec(b)]), listeners: [{ name: 'web', listen: `127.0.0.1:${port}`, routes: [{ path_prefix: '/x/', pool: 'app' }, { pool: 'app' }] }] },
    config(port, [spec(b), spec(d)], { health_check: { ...CHECKS, interval: '150ms' } }),
    config(port, [spec(a), spec(b), spec(c), spec(d)], {}, { log: { level: 'info', access: false } }),
    config(port, [spec(a), spec(b)]),
  ];

  let running = true;
  const replies: Reply[] = [];
  const keepAlive = own(new http.Agent({ keepAlive: true, maxSockets: 4 }), (x) => x.destroy());
  const worker = async (agent: http.Agent | false): Promise<void> => {
    while (running) replies.push(await request(port, { agent, path: '/x/y' }));
  };
  const workers = [...Array.from({ length: 4 }, () => worker(keepAlive)), ...Array.from({ length: 4 }, () => worker(false))];
  own(workers, async (w) => {
    running = false;
    await Promise.all(w);
  });
  /** Requests flow under the config in force before the next step. */
  const someTraffic = async (): Promise<void> => {
    const before = replies.length;
    await waitFor(() => replies.length >= before + 16, undefined, 'requests between reloads');
  };

  for (const [i, step] of steps.entries()) {
    await someTraffic();
    writeConfig(file, step);
    const event = await reload(proxy, i + 1);
    t.equal(event.ok, true, `reload ${i + 1}: ${JSON.stringify(event.changes)}`);
  }
  await someTraffic();
  running = false;
  await Promise.all(workers);
  keepAlive.destroy();

  const failures = replies.filter(failed);
  // Enough to overlap every reload; a loaded machine (or workers, whose reloads are quicker) makes fewer.
  t.ok(replies.length > 100, `${replies.length} requests during the reloads`);
  t.strictSame(failures.map((r) => `${r.status} ${r.error}`), [], 'no request failed');
  t.equal(proxy.events('reload').at(-1)?.version, 11, 'ten reloads applied');
  t.ok(proxy.events('reload').every((e) => (e.changes as unknown[]).length > 0), 'each changed something');
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
});

t.test('new weights change the shares', async (t) => {
  const own = owned(t);
  const [a, b] = own((await startBackends(['a', 'b'], { latencyMs: 10 })) as [TestBackend, TestBackend], closeAll);
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [spec(a), spec(b)]));
  const proxy = await start(t, file);
  const agent = own(new http.Agent({ keepAlive: true, maxSockets: 10 }), (x) => x.destroy());
  const shareOfA = async (): Promise<number> => {
    const before = a.traffic.length + b.traffic.length;
    const beforeA = a.traffic.length;
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 30; i++) await request(port, { agent });
    }));
    return (a.traffic.length - beforeA) / (a.traffic.length + b.traffic.length - before);
  };
  const even = await shareOfA();
  t.ok(Math.abs(even - 0.5) < 0.1, `1:1 → a ${(even * 100).toFixed(0)}%`);
  writeConfig(file, config(port, [spec(a, { weight: 4 }), spec(b)]));
  t.strictSame((await reload(proxy, 1)).changes, ['pool app: backend a weight 1 → 4']);
  const skewed = await shareOfA();
  t.ok(Math.abs(skewed - 0.8) < 0.1, `4:1 → a ${(skewed * 100).toFixed(0)}%`);
  agent.destroy();
  proxy.signal('SIGTERM');
  await proxy.exited;
});

t.test('invalid YAML and schema errors: the old config keeps serving; FILE:LINE:COL in the log', async (t) => {
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [spec(a)]));
  const proxy = await start(t, file);

  writeFileSync(file, `listeners:\n  - name: web\n    listen: 127.0.0.1:${port}\n    pool: [app\npools: {}\n`);
  const yaml = await reload(proxy, 1);
  t.match(yaml, { ok: false, version: 1, code: 'CONFIG_INVALID', level: 'error' });
  const yamlErrors = yaml.errors as string[];
  t.ok(yamlErrors.length >= 1);
  t.match(yamlErrors[0], new RegExp(`^${escape(file)}:\\d+:\\d+: \\(yaml\\): `));
  t.equal((await request(port)).status, 200, 'still serving after a YAML error');

  writeFileSync(file, [
    'listeners:',
    `  - { name: web, listen: "127.0.0.1:${port}", pool: app }`,
    'pools:',
    '  app:',
    '    health_check: { protocol: tcp, interval: 2 }',
    `    backends: [{ name: a, address: "${a.address}", weight: 999 }]`,
    '',
  ].join('\n'));
  const schema = await reload(proxy, 2);
  t.match(schema, { ok: false, version: 1, code: 'CONFIG_INVALID' });
  t.match(schema.errors, [
    new RegExp(`^${escape(file)}:5:\\d+: pools\\.app\\.health_check\\.interval: `),
    new RegExp(`^${escape(file)}:6:\\d+: pools\\.app\\.backends\\[0\\]\\.weight: `),
  ]);
  const reply = await request(port);
  t.match(reply, { status: 200, body: 'a' }, 'still serving after schema errors');

  writeConfig(file, config(port, [spec(a, { weight: 2 })]));
  t.match(await reload(proxy, 3), { ok: true, version: 2 }, 'a valid file is applied afterwards');
  proxy.signal('SIGTERM');
  await proxy.exited;
});

t.test('a removed backend gets no new request while its in-flight request completes', async (t) => {
  const own = owned(t);
  const [a, b] = own((await startBackends(['a', 'b'])) as [TestBackend, TestBackend], closeAll);
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  own(held, () => release());
  b.handler = async (_req, res) => {
    await held;
    res.writeHead(200, { 'content-type': 'text/plain' }).end('b finished');
  };
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  // Bounds far above what the test takes even on a loaded machine: the held request must end by
  // its release, not by response_timeout (504) or drain_timeout (cut).
  const LONG = { drain_timeout: '30s', response_timeout: '30s' };
  writeConfig(file, config(port, [spec(b)], LONG));
  const proxy = await start(t, file);
  const slow = request(port);
  await waitFor(() => b.traffic.length === 1, undefined, 'the request held at b');

  writeConfig(file, config(port, [spec(a)], LONG));
  t.match(await reload(proxy, 1), { ok: true, changes: [`pool app: backend a added (${a.address}, hot, weight 1)`, 'pool app: backend b removed'] });
  for (let i = 0; i < 10; i++) t.equal((await request(port)).body, 'a');
  t.equal(b.traffic.length, 1, 'no new request reached b');
  release();
  t.match(await slow, { status: 200, body: 'b finished', error: null }, 'its in-flight request completed');
  await proxy.waitForLine((l) => l.type === 'access' && l.backend === 'b');
  t.match(proxy.lines.find((l) => l.type === 'access' && l.backend === 'b'), { status: 200 });
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
});

t.test('a promoted warm stays promoted across an unrelated reload', async (t) => {
  const own = owned(t);
  const [hot, warm] = own((await startBackends(['hot', 'warm'])) as [TestBackend, TestBackend], closeAll);
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  const backends = [spec(hot), spec(warm, { role: 'warm' })];
  writeConfig(file, config(port, backends, { failover: { slow_start: '0s' } }));
  const proxy = await start(t, file);
  await hot.kill();
  await proxy.waitForLine((l) => l.event === 'promoted' && l.backend === 'warm' && l.covers === 'hot');
  t.equal((await request(port)).body, 'warm');

  writeConfig(file, config(port, backends, { failover: { slow_start: '0s' }, response_timeout: '3s', retries: 1 }));
  const event = await reload(proxy, 1);
  t.strictSame(event.changes, ['pool app: response_timeout 2s → 3s', 'pool app: retries 2 → 1']);
  // Several health checks (tcp: one connection each) reach both backends under the new config.
  const checksBefore = warm.connections;
  await waitFor(() => warm.connections >= checksBefore + 3, undefined, 'three more health checks of the warm');
  for (let i = 0; i < 5; i++) t.equal((await request(port)).body, 'warm', 'traffic keeps reaching the warm');
  t.strictSame(proxy.events('released'), [], 'no released');
  t.equal(proxy.events('promoted').length, 1, 'no second promotion either');
  t.equal(proxy.events('backend_up').filter((l) => l.backend === 'warm').length, 1, 'the warm kept its health');
  proxy.signal('SIGTERM');
  await proxy.exited;
});

t.test('a reload to a port in use changes nothing', async (t) => {
  const own = owned(t);
  const [a, b] = own((await startBackends(['a', 'b'])) as [TestBackend, TestBackend], closeAll);
  const busy = await listening(own, net.createServer((socket) => socket.destroy()));
  const [port, extra] = (await freePorts(2)) as [number, number];
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [spec(a)]));
  const proxy = await start(t, file);

  const next = config(busy, [spec(a), spec(b, { weight: 50 })]);
  (next.listeners as unknown[]).push({ name: 'extra', listen: `127.0.0.1:${extra}`, pool: 'app' });
  writeConfig(file, next);
  const event = await reload(proxy, 1);
  t.match(event, { ok: false, version: 1, code: 'LISTEN_FAILED', errors: [`listener web: cannot listen on 127.0.0.1:${busy}: EADDRINUSE`] });
  for (let i = 0; i < 5; i++) t.match(await request(port), { status: 200, body: 'a' }, 'the old listener serves the old pool');
  t.equal(b.traffic.length, 0, 'the new backend was never added');
  t.match(await request(extra, { timeoutMs: 1000 }), { status: 0, error: 'ECONNREFUSED' }, 'the listener bound for the reload was closed');
  t.equal(proxy.events('listening').length, 1, 'no new listener announced');
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
});

t.test('SIGHUPs during a reload are coalesced into one more reload', async (t) => {
  const own = owned(t);
  const [a] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  // An http check against a server that never answers takes the whole check timeout: a slow reload.
  const silentPort = await listening(own, net.createServer((socket) => socket.resume()));
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [spec(a)]));
  const proxy = await start(t, file);
  writeConfig(file, {
    ...config(port, [spec(a)]),
    pools: {
      ...(config(port, [spec(a)]).pools as object),
      slow: { health_check: { protocol: 'http', path: '/', interval: '1h', timeout: '400ms' }, backends: [{ name: 's', address: `127.0.0.1:${silentPort}` }] },
    },
  });
  proxy.signal('SIGHUP');
  await proxy.waitForLine((l) => l.msg === 'reloading');
  // Two more while the first reload waits out its 400 ms check.
  t.equal(proxy.events('reload').length, 0, 'the first reload is still running');
  proxy.signal('SIGHUP');
  proxy.signal('SIGHUP');
  await proxy.waitForLine(() => proxy.events('reload').length >= 2);
  // A third reload would begin as soon as the second ended, and be logged before the shutdown ends the log.
  proxy.signal('SIGTERM');
  await proxy.exited;
  t.equal(proxy.events('reload').length, 2, 'the reload, then one more for the signals that came during it');
  t.strictSame(proxy.events('reload').map((e) => e.changes), [['pool slow added (1 backend)'], []], 'the second found nothing more to change');
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
