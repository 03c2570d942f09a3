/**
 * The swap over real sockets (SPEC §3–4): hot backends killed and restarted under steady load,
 * warms promoted one for one, failback, manual failback, warm-up, spill, nothing serving.
 */
import { ProxyAdminHost } from '../../src/control/host.js';
import t from 'tap';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { request, steadyLoad, type SteadyLoad } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { startProxy, WAIT_FLOOR_MS, waitFor, type Harness } from '../helpers/harness.js';
import { closeAll, stopLoad, stopProxy, owned } from '../helpers/owned.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** Simulated-time tests advance in steps of this many ms, waiting for real I/O between steps. */
const STEP = 50;

// A long timeout: crashed backends refuse at once; a 100 ms one fails healthy backends on a busy machine.
const CHECKS = { protocol: 'http', path: '/healthz', interval: '100ms', timeout: '1s', rise: 2, fall: 2 };

function config(backends: readonly TestBackend[], failover: Record<string, unknown> = {}, pool: Record<string, unknown> = {}) {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: {
        health_check: CHECKS,
        passive: { consecutive_failures: 2 },
        connect_timeout: '200ms',
        response_timeout: '2s',
        failover: { failback: 'auto', failback_hold: '400ms', slow_start: '0s', ...failover },
        backends: backends.map((b) => ({ name: b.name, address: b.address, role: b.name.startsWith('spare') ? 'warm' : 'hot' })),
        ...pool,
      },
    },
  };
}

/** Names of backends serving now, from the pool's own state. */
function serving(h: Harness): string[] {
  return (h.proxy.pools.get('app')?.core.serving ?? []).map((b) => b.name);
}

/** Waits until `n` more replies arrived: a stretch of traffic measured in requests, not milliseconds. */
async function moreReplies(traffic: SteadyLoad, n: number): Promise<void> {
  const before = traffic.replies.length;
  await waitFor(() => traffic.replies.length >= before + n, undefined, `${n} more replies`);
}

/** Like waitFor, for a condition that must be fetched (a refresh of the workers' reports). */
async function until(condition: () => Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_FLOOR_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_FLOOR_MS} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Health checks (GET /healthz) `backend` has received. */
const checks = (backend: TestBackend): number => backend.received.length - backend.traffic.length;

const eventTimes = (h: Harness, type: string): { backend: unknown; at: number }[] =>
  h.log.events(type).map((e) => ({ backend: e.backend, at: Date.parse(String(e.time)) }));

t.test('a hot backend crashes under load: 0 failed requests, first warm covers it, second warm idle; failback after the hold', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'app-3', 'spare-1', 'spare-2'], { latencyMs: 5 }), closeAll);
  const [, app2, , spare1, spare2] = backends as [TestBackend, TestBackend, TestBackend, TestBackend, TestBackend];
  const h = own(await startProxy(config(backends)), stopProxy);
  t.strictSame(serving(h), ['app-1', 'app-2', 'app-3'], 'hots serve, warms stand by');

  const traffic = own(steadyLoad(h.port(), 8), stopLoad);
  await moreReplies(traffic, 30);
  const crashAt = Date.now();
  await app2.kill();
  await waitFor(() => spare1.traffic.length > 0, 3000, 'spare-1 takes traffic');
  const firstWarmRequest = Date.now() - crashAt;
  t.comment(`crash → first request served by the warm: ${firstWarmRequest} ms (interval 100ms, fall 2, passive 2)`);
  await moreReplies(traffic, 30);
  t.strictSame(serving(h), ['app-1', 'app-3', 'spare-1'], 'spare-1 serves in place of app-2');
  t.match(h.log.events('promoted'), [{ backend: 'spare-1', covers: 'app-2' }]);
  t.match(h.log.events('backend_down')[0], { backend: 'app-2', evidence: Array });

  await app2.start();
  await waitFor(() => h.log.events('released').length > 0, 3000, 'failback');
  const released = h.log.events('released')[0];
  t.match(released, { backend: 'spare-1', covered: 'app-2', reason: 'failback' });
  const upAt = eventTimes(h, 'backend_up').find((e) => e.backend === 'app-2')?.at ?? 0;
  t.ok(Date.parse(String(released?.time)) - upAt >= 380, 'released only after the failback hold');
  // Requests spare-1 had accepted before the release finish; from then on it must get none.
  // With workers the release reaches each worker a moment later (a keep-alive request may still
  // go to spare-1 meanwhile), and the primary's in-flight counts are their last reports: read
  // them from reports made after every worker applied the release, never from older ones.
  const spareRuntime = h.proxy.pools.get('app')?.backends.find((b) => b.name === 'spare-1');
  await until(async () => {
    await h.refresh();
    return spareRuntime?.inFlight === 0;
  }, 'spare-1 finishes what it had');
  const spareAfterRelease = spare1.traffic.length;
  await moreReplies(traffic, 40);
  const replies = await traffic.stop();

  t.equal(replies.filter((r) => r.status !== 200).length, 0, `0 failed of ${replies.length} requests`);
  t.equal(spare1.traffic.length, spareAfterRelease, 'the released warm gets no new requests');
  t.equal(spare2.traffic.length, 0, 'the second warm was never needed');
  t.strictSame(serving(h), ['app-1', 'app-2', 'app-3']);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('cascade: a second crash promotes the second warm; a third leaves the pool degraded but serving', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'app-3', 'spare-1', 'spare-2']), closeAll);
  const [app1, app2, app3, , spare2] = backends as [TestBackend, TestBackend, TestBackend, TestBackend, TestBackend];
  const h = own(await startProxy(config(backends)), stopProxy);
  const traffic = own(steadyLoad(h.port(), 8, { pauseMs: 2 }), stopLoad);
  await app1.kill();
  await waitFor(() => h.log.events('promoted').length === 1, 3000, 'first promotion');
  await app2.kill();
  await waitFor(() => h.log.events('promoted').length === 2, 3000, 'second promotion');
  t.match(h.log.events('promoted'), [{ backend: 'spare-1', covers: 'app-1' }, { backend: 'spare-2', covers: 'app-2' }]);
  await waitFor(() => spare2.traffic.length > 0, 2000, 'spare-2 takes traffic');
  await app3.kill();
  await waitFor(() => h.log.events('degraded').length === 1, 3000, 'degraded');
  t.match(h.log.events('degraded')[0], { uncovered: ['app-3'] });
  await moreReplies(traffic, 30);
  const replies = await traffic.stop();
  t.strictSame(serving(h), ['spare-1', 'spare-2'], 'serving with what is left');
  t.equal(replies.filter((r) => r.status !== 200).length, 0, `0 failed of ${replies.length}`);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('manual failback: the warm stays after the hot recovers, until demoted', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'spare-1']), closeAll);
  const [app1, , spare1] = backends as [TestBackend, TestBackend, TestBackend];
  const h = own(await startProxy(config(backends, { failback: 'manual', failback_hold: '0s' })), stopProxy);
  await app1.kill();
  await waitFor(() => serving(h).includes('spare-1'), 3000, 'promotion');
  await app1.start();
  await waitFor(() => serving(h).includes('app-1'), 3000, 'app-1 back');
  // Three more check rounds (failback_hold is 0s): an automatic failback would have happened by now.
  const checksBefore = checks(spare1);
  await waitFor(() => checks(spare1) >= checksBefore + 3, undefined, 'three more health checks');
  t.strictSame(serving(h), ['app-1', 'app-2', 'spare-1'], 'the warm still serves beside the recovered hot');
  t.equal(h.log.events('released').length, 0);
  const before = spare1.traffic.length;
  for (let i = 0; i < 9; i++) await request(h.port());
  t.ok(spare1.traffic.length > before, 'and keeps taking traffic');

  const pool = h.proxy.pools.get('app');
  pool?.dispatch({ type: 'demote', backend: 'spare-1' });
  t.match(h.log.events('released'), [{ backend: 'spare-1', covered: 'app-1', reason: 'demoted' }]);
  t.strictSame(serving(h), ['app-1', 'app-2']);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('/status while a recovered hot serves beside its warm: the failback hold still to run; a down backend says since when (simulated time)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'spare-1']), closeAll);
  const [app1] = backends as [TestBackend, TestBackend, TestBackend];
  // Checks and the hold run on simulated time: the hold's countdown is exact, not "somewhere below 60 s".
  const clock = new ManualClock();
  const h = own(await startProxy(config(backends, { failback_hold: '60s' }), { clock }), stopProxy);
  const host = new ProxyAdminHost(h.proxy, () => clock.now());
  const app = (name: string) => host.snapshot().pools[0]?.backends.find((b) => b.name === name);
  t.equal(app('app-1')?.down_since, null);
  await app1.kill();
  await clock.advanceUntil(() => serving(h).includes('spare-1'), STEP, 5_000, 'promotion');
  t.match(app('app-1')?.down_since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.equal(app('app-1')?.failback_hold_remaining_ms, null, 'no hold while it is down');
  await app1.start();
  await clock.advanceUntil(() => serving(h).includes('app-1'), STEP, 5_000, 'app-1 back');
  // app-1 came up during the last step.
  const hold = app('app-1')?.failback_hold_remaining_ms ?? -1;
  t.ok(hold > 60_000 - STEP - 1 && hold <= 60_000, `the hold still to run: ${hold} ms`);
  await clock.advance(30_000);
  t.equal(app('app-1')?.failback_hold_remaining_ms, hold - 30_000, '30 s later: exactly 30 s less');
  t.equal(app('app-1')?.down_since, null, 'up again');
  t.equal(app('app-2')?.failback_hold_remaining_ms, null, 'nothing covers app-2');
  t.equal(app('spare-1')?.phase, 'serving');
  t.equal(app('app-1')?.phase, null, 'phase is a warm backend\'s');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('failback: the warm is released exactly failback_hold after the hot is back (simulated time)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'spare-1']), closeAll);
  const [app1] = backends as [TestBackend, TestBackend, TestBackend];
  const clock = new ManualClock();
  const h = own(await startProxy(config(backends, { failback_hold: '400ms' }), { clock }), stopProxy);
  await app1.kill();
  await clock.advanceUntil(() => serving(h).includes('spare-1'), STEP, 5_000, 'promotion');
  t.notOk(serving(h).includes('app-1'), 'app-1 left the serving set');
  await app1.start();
  // rise 2 at a 100 ms interval: back after two good checks.
  await clock.advanceUntil(() => serving(h).includes('app-1'), STEP, 5_000, 'app-1 back');
  await clock.advance(400 - STEP - 1);
  t.equal(h.log.events('released').length, 0, 'less than the hold after app-1 came back: spare-1 still covers');
  t.strictSame(serving(h), ['app-1', 'app-2', 'spare-1']);
  await clock.advance(STEP + 1);
  t.match(h.log.events('released'), [{ backend: 'spare-1', covered: 'app-1', reason: 'failback' }], 'the hold ran out: released');
  t.strictSame(serving(h), ['app-1', 'app-2']);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('warm-up: the promoted warm gets its warm-up requests before any live request', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'spare-1']), closeAll);
  const [app1, , spare1] = backends as [TestBackend, TestBackend, TestBackend];
  const h = own(await startProxy(config(backends, { warmup: { path: '/warm', requests: 3 } })), stopProxy);
  const traffic = own(steadyLoad(h.port(), 4, { pauseMs: 5 }), stopLoad);
  await moreReplies(traffic, 10);
  await app1.kill();
  await waitFor(() => spare1.traffic.some((r) => r.url === '/'), 3000, 'live traffic on the warm');
  const replies = await traffic.stop();
  const urls = spare1.traffic.map((r) => r.url);
  t.strictSame(urls.slice(0, 3), ['/warm', '/warm', '/warm'], 'three warm-up requests first');
  t.equal(urls.indexOf('/'), 3, 'live traffic only after them');
  t.equal(spare1.traffic[0]?.headers['user-agent'], 'hotwarm-warmup');
  t.equal(replies.filter((r) => r.status !== 200).length, 0);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a warm whose warm-up fails is marked down and the next warm covers', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'spare-1', 'spare-2']), closeAll);
  const [app1, spare1, spare2] = backends as [TestBackend, TestBackend, TestBackend];
  spare1.handler = (_req, res) => void res.writeHead(500).end('cold');
  const h = own(await startProxy(config(backends, { warmup: { path: '/warm', requests: 2 } })), stopProxy);
  await app1.kill();
  await waitFor(() => serving(h).includes('spare-2'), 3000, 'spare-2 serves');
  t.match(h.log.events('backend_down').find((e) => e.backend === 'spare-1'), { source: 'warmup' });
  t.equal((await request(h.port())).status, 200);
  t.equal(spare2.traffic.at(-1)?.url, '/');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('slow start: a promoted warm ramps from 10% of its weight', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'spare-1']), closeAll);
  const [app1] = backends as [TestBackend];
  const h = own(await startProxy(config(backends, { slow_start: '2s' })), stopProxy);
  await app1.kill();
  const pool = h.proxy.pools.get('app');
  await waitFor(() => serving(h).includes('spare-1'), 3000, 'promotion');
  const spare = pool?.backends.find((b) => b.name === 'spare-1');
  // Read at the moment it began serving (the core's own clock), however late this test looks.
  const since = spare?.servingSince ?? null;
  const weightAt = (ms: number): number | undefined => (spare && since !== null ? pool?.core.effectiveWeight(spare, since + ms) : undefined);
  const weight = weightAt(0);
  t.ok(weight !== undefined && weight >= 0.1 && weight < 0.5, `effective weight right after promotion: ${weight}`);
  const halfway = weightAt(1_000);
  t.ok(halfway !== undefined && weight !== undefined && halfway > weight && halfway < 1, `ramping: ${halfway} a second later`);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('spill: every serving backend full → a standby warm with room takes the overflow', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'app-2', 'spare-1'], { latencyMs: 40 }), closeAll);
  const [, , spare1] = backends as [TestBackend, TestBackend, TestBackend];
  const spec = config(backends);
  const pool = (spec.pools.app as { backends: Record<string, unknown>[] });
  pool.backends = pool.backends.map((b) => (b.role === 'hot' ? { ...b, max_conns: 2 } : b));
  const h = own(await startProxy(spec), stopProxy);
  const traffic = own(steadyLoad(h.port(), 8), stopLoad);
  await moreReplies(traffic, 60);
  const replies = await traffic.stop();
  t.equal(replies.filter((r) => r.status !== 200).length, 0, `0 failed of ${replies.length}`);
  t.ok(spare1.traffic.length > 0, `the standby warm took ${spare1.traffic.length} overflow requests`);
  t.strictSame(serving(h), ['app-1', 'app-2'], 'spill does not promote');
  t.ok(h.log.events('spill').length >= 1, 'spill event logged');
  // Rate-limited to one a second, read on the proxy's own clock (the test may have taken longer on a busy machine).
  const spillTimes = h.log.events('spill').map((e) => Date.parse(String(e.time)));
  const gaps = spillTimes.slice(1).map((at, i) => at - (spillTimes[i] as number));
  t.ok(gaps.every((gap) => gap >= 990), `and rate-limited: ${spillTimes.length} events, gaps ${JSON.stringify(gaps)} ms`);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('no spill: every backend full → 503 at once', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'spare-1']), closeAll);
  // The first request is held at its backend until released: the second must not wait for it.
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  own(held, () => release());
  for (const b of backends) {
    b.handler = async (_req, res) => {
      await held;
      res.end(b.name);
    };
  }
  // One process: max_conns is split over workers, so "full" is per worker (workers.test.ts).
  const spec = { ...config(backends, { spill: false }), workers: 1 };
  const pool = spec.pools.app as { backends: Record<string, unknown>[] };
  pool.backends = pool.backends.map((b) => ({ ...b, max_conns: 1 }));
  const h = own(await startProxy(spec), stopProxy);
  const first = request(h.port());
  await waitFor(() => backends.some((b) => b.traffic.length === 1), undefined, 'the first request held at a backend');
  const second = await request(h.port());
  t.equal(second.status, 503);
  t.equal(backends.reduce((n, b) => n + b.traffic.length, 0), 1, 'at once: while the first is still held, without queueing or reaching a backend');
  release();
  t.equal((await first).status, 200);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('everything down: 503 with Retry-After in well under a second; recovery serves again', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['app-1', 'spare-1']), closeAll);
  const h = own(await startProxy(config(backends)), stopProxy);
  await Promise.all(backends.map((b) => b.kill()));
  await waitFor(() => serving(h).length === 0, 3000, 'nothing serving');
  const reply = await request(h.port());
  t.equal(reply.status, 503);
  await waitFor(() => h.log.access.length > 0, undefined, 'the access line');
  t.match(h.log.access[0], { status: 503, backend: null, retries: 0 }, 'at once: no dead backend was tried');
  t.equal(reply.headers['retry-after'], '1', 'interval 100ms × rise 2 → 1 s');
  t.notMatch(reply.body, /127\.0\.0\.1|app-1/);
  await (backends[0] as TestBackend).start();
  await waitFor(() => serving(h).length === 1, 3000, 'app-1 back');
  t.equal((await request(h.port())).status, 200);
  await own.stopAll();
  await leaks.assertClean(t);
});
