/**
 * One pool, both sides of SPEC §9 without sockets: the primary's PoolRuntime adds up passive
 * evidence from several workers; a worker's PoolRuntime reports, avoids a refusing backend until
 * the verdict, and balances by the snapshot it adopts.
 */
import t from 'tap';
import { pino } from 'pino';
import { parseConfig } from '../../../src/config/load.js';
import type { PoolConfig } from '../../../src/config/schema.js';
import { EventLog } from '../../../src/control/events.js';
import { ProxyError } from '../../../src/errors.js';
import { PoolRuntime, type RemoteBrain } from '../../../src/upstream/pool-runtime.js';
import { withNow } from '../../../src/upstream/clock.js';

const YAML = `
listeners: [{ name: web, listen: "127.0.0.1:0", pool: app }]
pools:
  app:
    passive: { consecutive_failures: 3 }
    failover: { slow_start: 10s }
    backends:
      - { name: a, address: "127.0.0.1:1" }
      - { name: b, address: "127.0.0.1:2" }
      - { name: spare, address: "127.0.0.1:3", role: warm }
`;

async function poolConfig(): Promise<PoolConfig> {
  return (await parseConfig(YAML, 'proxy.yaml', { env: {} })).pools.app as PoolConfig;
}

const silent = pino({ level: 'silent' });
const refused = (): ProxyError => new ProxyError('UPSTREAM_CONNECT_FAILED', 'ECONNREFUSED');

t.test('primary: failures reported by different workers add up; a success from any worker ends the streak', async (t) => {
  const events = new EventLog(silent);
  const streaks: string[] = [];
  let now = 0;
  const pool = new PoolRuntime('app', await poolConfig(), { events, logger: silent, clock: withNow(() => now), onStreak: (_p, b, open) => streaks.push(`${b}:${open}`) });
  t.teardown(() => pool.stop());
  pool.begin([{ ok: true, detail: '200', durationMs: 1 }, { ok: true, detail: '200', durationMs: 1 }, { ok: true, detail: '200', durationMs: 1 }]);
  const a = pool.backends[0];
  if (a === undefined) throw new Error('no backend a');
  pool.reportPassive('a', a.key, false, 'worker 1');
  pool.reportPassive('a', a.key, false, 'worker 2');
  pool.reportPassive('a', a.key, true, '');
  t.same(streaks, ['a:true', 'a:false'], 'the streak opened, then a success closed it');
  pool.reportPassive('a', 'a|127.0.0.1:9|hot', false, 'an older backend of that name');
  t.equal(a.passive.streak, 0, 'a report about another identity is dropped');
  now = 5;
  pool.reportPassive('a', a.key, false, 'worker 1');
  pool.reportPassive('a', a.key, false, 'worker 2');
  t.equal(events.recent().filter((e) => e.type === 'backend_down').length, 0);
  pool.reportPassive('a', a.key, false, 'worker 1');
  t.match(events.recent().find((e) => e.type === 'backend_down'), { backend: 'a', source: 'passive' }, 'three of the host make it down');
  t.match(events.recent().find((e) => e.type === 'promoted'), { backend: 'spare', covers: 'a' });
});

t.test('worker: reports at once, avoids a refusing backend until the verdict, and adopts the snapshot with its clock', async (t) => {
  const reports: string[] = [];
  const brain: RemoteBrain = { report: (_pool, backend, _key, ok) => reports.push(`${backend}:${ok}`) };
  let now = 1_000;
  const worker = new PoolRuntime('app', await poolConfig(), { events: new EventLog(silent), logger: silent, clock: withNow(() => now), brain });
  const primary = new PoolRuntime('app', await poolConfig(), { events: new EventLog(silent), logger: silent, clock: withNow(() => 0) });
  t.teardown(() => {
    worker.stop();
    primary.stop();
  });
  t.same(await worker.firstRound(), [], 'a worker checks nothing');
  t.equal(worker.select([], false).backend, null, 'nothing serves before the first snapshot');
  primary.begin([{ ok: true, detail: '200', durationMs: 1 }, { ok: true, detail: '200', durationMs: 1 }, { ok: true, detail: '200', durationMs: 1 }]);
  // The primary's clock started 500 ms before this worker's: serving times move by the difference.
  worker.adopt(primary.core.state, 500);
  t.same(worker.core.serving.map((b) => b.name), ['a', 'b'], 'balances by the snapshot');
  t.equal(worker.core.member('a')?.servingSince, primary.core.member('a')?.servingSince === null ? null : (primary.core.member('a')?.servingSince ?? 0) + 500);

  const a = worker.core.member('a');
  if (a === undefined) throw new Error('no backend a');
  worker.upstreamFailed(a, refused());
  t.same(reports, ['a:false'], 'the failure went to the primary');
  for (let i = 0; i < 4; i++) {
    t.equal(worker.select([], false).backend?.name, 'b', 'a is avoided');
  }
  worker.verdict('a');
  const names = new Set<string>();
  for (let i = 0; i < 4; i++) names.add(worker.select([], false).backend?.name ?? '');
  t.ok(names.has('a'), 'after the verdict a takes requests again');

  worker.upstreamSucceeded(a);
  t.same(reports, ['a:false'], 'no success is reported while no streak is open');
  worker.streak('a', true);
  worker.upstreamSucceeded(a);
  worker.upstreamSucceeded(a);
  t.same(reports, ['a:false', 'a:true'], 'one success ends an open streak');

  worker.upstreamFailed(a, refused());
  now += 1_001;
  t.ok(new Set([1, 2, 3, 4].map(() => worker.select([], false).backend?.name)).has('a'), 'avoiding lasts 1 s at most');
});
