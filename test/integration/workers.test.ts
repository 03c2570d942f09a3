/**
 * SPEC §9 over real processes: `hotwarm` run as an operator runs it, with `workers: 2` — a
 * primary and two workers. One brain (checks once, one promotion, passive failures added up over
 * the host), a worker's crash, reload and shutdown across workers, no orphan after the primary is
 * SIGKILLed, host-wide /metrics and /status, whole log lines carrying `worker`.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { body, adminRequest } from '../helpers/admin.js';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { request, type Reply } from '../helpers/client.js';
import { freePorts, waitFor, writeConfig } from '../helpers/harness.js';
import { ProxyProcess, runBin } from '../helpers/process.js';
import { startTcpBackends, startWsBackends, TcpClient, type TcpBackend } from '../helpers/tunnels.js';
import WebSocket from 'ws';

interface WorkerRow {
  readonly id: number;
  readonly pid: number;
  readonly state: string;
  readonly in_flight: number;
  readonly requests: number;
  readonly restarts: number;
  readonly rss_bytes: number;
  readonly last_apply_ms: number | null;
}
interface Status {
  readonly workers: readonly WorkerRow[];
  readonly pools: readonly { readonly backends: readonly { readonly name: string; readonly in_flight: number; readonly state: string }[] }[];
}

const CHECKS = { protocol: 'http', path: '/healthz', interval: '100ms', timeout: '1s', rise: 1, fall: 2 } as const;

function config(webPort: number, adminPort: number, backends: readonly Record<string, unknown>[], pool: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    workers: 2,
    shutdown_timeout: '3s',
    admin: { listen: `127.0.0.1:${adminPort}` },
    listeners: [{ name: 'web', listen: `127.0.0.1:${webPort}`, pool: 'app' }],
    pools: { app: { health_check: CHECKS, connect_timeout: '500ms', response_timeout: '5s', failover: { slow_start: '0s' }, backends, ...pool } },
    ...extra,
  };
}

/** A proxy process with 2 workers, once every worker listens. */
async function start(t: Test, cfg: (web: number, admin: number) => Record<string, unknown>) {
  const [web, admin] = (await freePorts(2)) as [number, number];
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, cfg(web, admin));
  const proxy = new ProxyProcess(['-c', file]);
  t.teardown(() => proxy.kill());
  await proxy.waitForLine((l) => l.type === 'listening' && l.admin === true, 20_000);
  const status = async (): Promise<Status> => body<Status>(await adminRequest(admin, '/status'));
  // Both workers run once `listening` is logged; this says so if not.
  const deadline = Date.now() + 20_000;
  while (!(await status()).workers.every((w) => w.state === 'running')) {
    if (Date.now() > deadline) throw new Error('workers did not all start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { proxy, web, admin, file, status };
}

const fresh = (port: number, path = '/'): Promise<Reply> => request(port, { path, headers: { connection: 'close' } });

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

t.test('a primary and two workers; checks run once per interval; /status, /metrics and access lines show the workers', async (t) => {
  const [a, spare] = (await startBackends(['a', 'spare'])) as [TestBackend, TestBackend];
  t.teardown(() => Promise.all([a.close(), spare.close()]));
  const { proxy, web, admin, status } = await start(t, (w, ad) => config(w, ad, [{ name: 'a', address: a.address }, { name: 'spare', address: spare.address, role: 'warm' }]));

  const s = await status();
  t.equal(s.workers.length, 2, 'two workers');
  t.same(s.workers.map((w) => w.id), [1, 2]);
  for (const w of s.workers) {
    t.equal(parentOf(w.pid), proxy.child.pid, `worker ${w.id} is a child of the primary`);
    t.equal(w.state, 'running');
  }

  // Traffic over fresh connections: round-robin spreads them over both workers.
  const replies = await Promise.all(Array.from({ length: 20 }, () => fresh(web)));
  t.ok(replies.every((r) => r.status === 200), 'all served');
  await proxy.waitForLine(() => proxy.lines.filter((l) => l.type === 'access').length >= 20);
  const access = proxy.lines.filter((l) => l.type === 'access');
  t.same(new Set(access.map((l) => l.worker)), new Set([1, 2]), 'access lines carry the worker id, both workers served');
  t.notOk(proxy.lines.some((l) => 'unparsed' in l), 'every stdout line is whole JSON');

  // Health checks: the backend saw as many as the primary counted (once per interval, not per worker).
  const scrape = async (): Promise<string> => (await adminRequest(admin, '/metrics')).body;
  const value = (text: string, series: string): number => Number(text.split('\n').find((l) => l.startsWith(`${series} `))?.slice(series.length + 1) ?? NaN);
  await waitFor(() => true);
  const before = a.received.filter((r) => r.url === '/healthz').length;
  const text = await scrape();
  const counted = value(text, 'hotwarm_health_checks_total{pool="app",backend="a",result="ok"}');
  const after = a.received.filter((r) => r.url === '/healthz').length;
  t.ok(counted >= before - 1 && counted <= after + 1, `checks at the backend (${before}..${after}) = checks counted by the primary (${counted})`);

  // /metrics: counters summed over the workers (batched every 100 ms).
  let metrics = '';
  await waitFor(() => false, 0).catch(() => undefined);
  for (let i = 0; i < 50; i++) {
    metrics = await scrape();
    if (value(metrics, 'hotwarm_requests_total{listener="web",pool="app",backend="a",code="2xx",protocol="http1"}') === 20) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(value(metrics, 'hotwarm_requests_total{listener="web",pool="app",backend="a",code="2xx",protocol="http1"}'), 20, 'requests of both workers summed');
  t.equal(value(metrics, 'hotwarm_workers'), 2);
  t.ok(value(metrics, 'hotwarm_worker_resident_memory_bytes{worker="1"}') > 0, 'per-worker process metrics labelled worker');
  for (const worker of ['1', '2']) {
    const lag = value(metrics, `hotwarm_worker_event_loop_lag_seconds{worker="${worker}"}`);
    t.ok(lag >= 0 && lag < 5, `worker ${worker}'s event-loop lag is reported (${lag} s)`);
  }
  const rows = (await status()).workers;
  t.equal(rows.reduce((n, w) => n + w.requests, 0), 20, '/status requests per worker add up');
  t.ok(rows.every((w) => w.rss_bytes > 0));
});

t.test('one promotion for the host, applied by every worker; passive failures add up over the workers', async (t) => {
  const [a, spare] = (await startBackends(['a', 'spare'])) as [TestBackend, TestBackend];
  t.teardown(() => Promise.all([a.close(), spare.close()]));
  // Checks so slow that only passive detection can find `a` dead during the test.
  const slow = { ...CHECKS, interval: '1m' };
  const { proxy, web, status } = await start(t, (w, ad) =>
    config(w, ad, [{ name: 'a', address: a.address }, { name: 'spare', address: spare.address, role: 'warm' }], {
      health_check: slow,
      retries: 0,
      passive: { consecutive_failures: 4 },
    }),
  );
  await a.kill();
  // Four refused requests over fresh connections, alternating between the workers.
  const failed: Reply[] = [];
  for (let i = 0; i < 4; i++) failed.push(await fresh(web, `/fail-${i}`));
  t.ok(failed.every((r) => r.status === 502), `refused: ${failed.map((r) => r.status).join(',')}`);
  const down = await proxy.waitForLine((l) => l.type === 'backend_down' && l.backend === 'a', 5_000);
  t.equal(down.source, 'passive', 'marked down by passive detection');
  const byWorker = new Map<unknown, number>();
  for (const l of proxy.lines.filter((l) => l.type === 'access' && String(l.path).startsWith('/fail-'))) byWorker.set(l.worker, (byWorker.get(l.worker) ?? 0) + 1);
  t.ok([...byWorker.values()].every((n) => n < 4), `no single worker saw 4 failures (${JSON.stringify([...byWorker])}): the host's failures added up`);

  await proxy.waitForLine((l) => l.type === 'promoted' && l.backend === 'spare');
  const after = await Promise.all(Array.from({ length: 6 }, () => fresh(web)));
  t.ok(after.every((r) => r.status === 200 && r.body === 'spare'), 'both workers send to the promoted warm');
  t.equal(proxy.events('promoted').length, 1, 'one promotion for the whole host');
  t.equal(proxy.events('backend_down').length, 1, 'one backend_down');
  await waitFor(() => true);
  const s = await status();
  t.ok(s.workers.every((w) => w.last_apply_ms !== null && w.last_apply_ms < 1_000), `snapshot applied by every worker (${s.workers.map((w) => w.last_apply_ms).join(', ')} ms)`);
});

t.test('a worker killed mid-traffic: only its requests are lost, it is replaced under the same id, worker_exit says so', async (t) => {
  const [a] = (await startBackends(['a'], { latencyMs: 1_500 })) as [TestBackend];
  t.teardown(() => a.close());
  const { proxy, web, status } = await start(t, (w, ad) => config(w, ad, [{ name: 'a', address: a.address }]));
  const before = await status();
  // Two slow requests on fresh connections: round-robin gives one to each worker.
  const slow = [fresh(web, '/slow-1'), fresh(web, '/slow-2')];
  await waitFor(() => a.traffic.length >= 2, 5_000, 'both slow requests at the backend');
  let rows = before.workers;
  for (let i = 0; i < 50 && !rows.every((w) => w.in_flight === 1); i++) {
    await new Promise((r) => setTimeout(r, 50));
    rows = (await status()).workers;
  }
  t.ok(rows.every((w) => w.in_flight === 1), 'one request in flight on each worker');
  const victim = rows[0] as WorkerRow;
  process.kill(victim.pid, 'SIGKILL');
  const results = await Promise.all(slow);
  t.equal(results.filter((r) => r.status === 200).length, 1, 'the other worker finished its request');
  t.equal(results.filter((r) => r.status !== 200).length, 1, 'the killed worker lost its own request only');
  const exit = await proxy.waitForLine((l) => l.type === 'worker_exit');
  t.match(exit, { worker: 1, pid: victim.pid, signal: 'SIGKILL', lost_requests: 1 });
  // Meanwhile the listener stays open: new connections are served.
  a.latencyMs = 0;
  const during = await Promise.all(Array.from({ length: 4 }, () => fresh(web)));
  t.ok(during.every((r) => r.status === 200), 'no other request fails');
  await waitFor(() => false, 0).catch(() => undefined);
  let replaced: WorkerRow | undefined;
  for (let i = 0; i < 100; i++) {
    replaced = (await status()).workers.find((w) => w.id === 1);
    if (replaced?.state === 'running' && replaced.pid !== victim.pid) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  t.equal(replaced?.state, 'running', 'replaced');
  t.not(replaced?.pid, victim.pid, 'by a new process');
  t.equal(replaced?.restarts, 1, 'under the same id, counted');
});

t.test('reload across workers: same generation everywhere; a listener no worker can bind fails it for all', async (t) => {
  const [a, b] = (await startBackends(['a', 'b'])) as [TestBackend, TestBackend];
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const [extraPort] = (await freePorts(1)) as [number];
  let web = 0;
  let admin = 0;
  const base = (backends: Record<string, unknown>[], more: Record<string, unknown>[] = []) => {
    const c = config(web, admin, backends);
    return { ...c, listeners: [...(c.listeners as Record<string, unknown>[]), ...more] };
  };
  const { proxy, file, status } = await start(t, (w, ad) => {
    web = w;
    admin = ad;
    return base([{ name: 'a', address: a.address }]);
  });
  writeConfig(file, base([{ name: 'b', address: b.address }], [{ name: 'extra', listen: `127.0.0.1:${extraPort}`, pool: 'app' }]));
  const reply = body<{ ok: boolean; version: number; errors: string[] }>(await adminRequest(admin, '/reload', { method: 'POST' }));
  t.equal(reply.ok, true, `reload ok: ${reply.errors.join('; ')}`);
  const onWeb = await Promise.all(Array.from({ length: 6 }, () => fresh(web)));
  const onExtra = await Promise.all(Array.from({ length: 6 }, () => fresh(extraPort)));
  t.ok(onWeb.every((r) => r.body === 'b'), 'every worker routes to the new backend');
  t.ok(onExtra.every((r) => r.status === 200 && r.body === 'b'), 'every worker accepts on the new listener');

  // A port taken by someone else: no worker can bind it, the reload fails everywhere.
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const taken = (blocker.address() as net.AddressInfo).port;
  writeConfig(file, base([{ name: 'a', address: a.address }], [{ name: 'extra', listen: `127.0.0.1:${extraPort}`, pool: 'app' }, { name: 'bad', listen: `127.0.0.1:${taken}`, pool: 'app' }]));
  const failed = body<{ ok: boolean; version: number; errors: string[] }>(await adminRequest(admin, '/reload', { method: 'POST' }));
  t.equal(failed.ok, false, 'refused');
  t.match(failed.errors.join('\n'), /EADDRINUSE/);
  t.equal(failed.version, reply.version, 'version unchanged');
  const still = await Promise.all(Array.from({ length: 6 }, () => fresh(web)));
  t.ok(still.every((r) => r.body === 'b'), 'nothing changed in any worker');
  t.ok((await status()).workers.every((w) => w.state === 'running'), 'workers still running');
  // The primary's lines are written asynchronously: the answer may come before its line.
  await waitFor(() => proxy.events('reload').length >= 2, 5_000, 'reload lines');
  t.equal(proxy.events('reload').length, 2);
});

t.test('SIGTERM drains every worker; a request in flight finishes; exit 0 and no worker left', async (t) => {
  const [a] = (await startBackends(['a'], { latencyMs: 600 })) as [TestBackend];
  t.teardown(() => a.close());
  const { proxy, web, status } = await start(t, (w, ad) => config(w, ad, [{ name: 'a', address: a.address }]));
  const pids = (await status()).workers.map((w) => w.pid);
  const inFlight = fresh(web);
  await waitFor(() => a.traffic.length >= 1, 5_000);
  proxy.signal('SIGTERM');
  const reply = await inFlight;
  t.equal(reply.status, 200, 'the request in flight finished');
  const exit = await proxy.exited;
  t.equal(exit.code, 0);
  await waitFor(() => pids.every((pid) => !isAlive(pid)), 3_000, 'workers gone');
  t.pass('no worker outlives a clean shutdown');
});

t.test('the primary SIGKILLed: every worker exits too', async (t) => {
  const [a] = (await startBackends(['a'])) as [TestBackend];
  t.teardown(() => a.close());
  const { proxy, status } = await start(t, (w, ad) => config(w, ad, [{ name: 'a', address: a.address }]));
  const pids = (await status()).workers.map((w) => w.pid);
  proxy.signal('SIGKILL');
  await proxy.exited;
  await waitFor(() => pids.every((pid) => !isAlive(pid)), 5_000, 'orphaned workers to exit');
  t.pass('no orphan');
});

t.test('a worker that cannot listen fails startup with one line; workers out of range are config errors', async (t) => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  t.teardown(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as net.AddressInfo).port;
  const [a] = (await startBackends(['a'])) as [TestBackend];
  t.teardown(() => a.close());
  const dir = t.testdir();
  const file = join(dir, 'proxy.yaml');
  writeConfig(file, { ...config(port, 0, [{ name: 'a', address: a.address }]), admin: undefined });
  const out = await runBin(['-c', file], { timeoutMs: 30_000 });
  t.equal(out.code, 1);
  t.match(out.stderr, /^hotwarm: listener web: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE\n$/);
  // The whole table is in test/unit/config/load-errors.test.ts; here the command line says it.
  for (const [value, shown] of [[0, '0'], [257, '257']] as const) {
    writeConfig(file, { ...config(8080, 9901, [{ name: 'a', address: a.address }]), workers: value });
    const check = await runBin(['check', '-c', file], { timeoutMs: 30_000 });
    t.equal(check.code, 1, `workers: ${shown} refused`);
    t.match(check.stderr, /proxy\.yaml:1:10: workers: must be "auto" or an integer between 1 and 256/, `workers: ${shown}: ${check.stderr}`);
  }
});

t.test('tunnels through workers: TCP and WebSocket echo; a backend the primary marks down has its tunnels closed in every worker', async (t) => {
  const [echo] = (await startTcpBackends(['echo'])) as [TcpBackend];
  const [wsb] = await startWsBackends(['ws']);
  t.teardown(async () => {
    await echo.close();
    await wsb?.close();
  });
  const [tcpPort] = (await freePorts(1)) as [number];
  const { proxy, web } = await start(t, (w, ad) => ({
    ...config(w, ad, [{ name: 'ws', address: wsb?.address }]),
    listeners: [
      { name: 'web', listen: `127.0.0.1:${w}`, pool: 'app' },
      { name: 'db', listen: `127.0.0.1:${tcpPort}`, protocol: 'tcp', pool: 'db' },
    ],
    pools: {
      app: { health_check: CHECKS, backends: [{ name: 'ws', address: wsb?.address }] },
      db: { health_check: { protocol: 'tcp', interval: '100ms', timeout: '1s', rise: 1, fall: 1 }, connect_timeout: '500ms', backends: [{ name: 'echo', address: echo.address }] },
    },
  }));
  // Four TCP clients: round-robin puts two on each worker.
  const clients = [0, 1, 2, 3].map(() => TcpClient.connect(tcpPort));
  for (const c of clients) c.socket.write('ping');
  await Promise.all(clients.map((c) => c.waitFor('ping')));
  const ws = new WebSocket(`ws://127.0.0.1:${web}/chat`);
  const echoed = await new Promise<string>((resolve, reject) => {
    ws.once('open', () => ws.send('hello'));
    ws.once('message', (data: Buffer) => resolve(String(data)));
    ws.once('error', reject);
  });
  t.equal(echoed, 'ws:hello', 'a WebSocket through a worker');
  ws.close();
  // New connections are refused, so the primary's checks fail; every worker closes its tunnels.
  await echo.stopListening();
  await Promise.all(clients.map((c) => c.closed));
  t.pass('every tunnel closed');
  // The primary's line is written asynchronously: it may reach the log after the workers acted on the decision.
  await waitFor(() => proxy.events('backend_down').some((l) => l.backend === 'echo'), 5_000, 'backend_down');
  t.equal(proxy.events('backend_down').filter((l) => l.backend === 'echo').length, 1, 'one backend_down for the host');
  await waitFor(() => proxy.lines.filter((l) => l.type === 'access' && l.tunnel === 'tcp').length === 4, 5_000, 'access lines');
  const lines = proxy.lines.filter((l) => l.type === 'access' && l.tunnel === 'tcp');
  t.ok(lines.every((l) => l.reason === 'backend down'), 'closed because the backend is down');
  t.same(new Set(lines.map((l) => l.worker)), new Set([1, 2]), 'in both workers');
});

t.test('sticky sessions across workers: every worker issues the same token for a backend and honours the others\' cookies', async (t) => {
  const [a, b] = (await startBackends(['a', 'b'])) as [TestBackend, TestBackend];
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const { web } = await start(t, (w, ad) =>
    config(w, ad, [{ name: 'a', address: a.address }, { name: 'b', address: b.address }], { sticky: { cookie: 'hw' } }),
  );
  // Fresh connections alternate between the workers (round-robin accept): each issues cookies.
  const tokens = new Map<string, Set<string>>();
  for (let i = 0; i < 12; i++) {
    const reply = await fresh(web, `/s-${i}`);
    const cookie = String(reply.headers['set-cookie'] ?? '');
    const token = /hw=([^;]+)/.exec(cookie)?.[1];
    t.ok(token !== undefined, `a cookie on a request without one (${cookie})`);
    const backend = String(reply.headers['x-backend']);
    if (!tokens.has(backend)) tokens.set(backend, new Set());
    tokens.get(backend)?.add(token ?? '');
  }
  t.same([...tokens.keys()].sort(), ['a', 'b'], 'both backends chosen');
  for (const [backend, set] of tokens) t.equal(set.size, 1, `one token for ${backend} whichever worker issued it`);
  const tokenOfB = [...(tokens.get('b') ?? [])][0] ?? '';
  const pinned: string[] = [];
  for (let i = 0; i < 8; i++) {
    const reply = await request(web, { path: `/p-${i}`, headers: { connection: 'close', cookie: `hw=${tokenOfB}` } });
    pinned.push(String(reply.headers['x-backend']));
    t.equal(reply.headers['set-cookie'], undefined, 'a valid cookie is left as it is');
  }
  t.same(pinned, Array(8).fill('b'), 'the cookie of one worker is honoured by every worker');
});
