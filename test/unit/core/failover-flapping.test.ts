/**
 * Check results fed through HealthCounter (and PassiveDetector) into the reducer, the way the
 * shell wires them: only a `changed` transition becomes a `health` event.
 */
import t from 'tap';
import { HealthCounter, PassiveDetector } from '../../../src/core/health.js';
import type { FailoverCommand } from '../../../src/core/failover-types.js';
import { pairs, pool, serving } from '../../helpers/failover-pool.js';

const INTERVAL = 1_000;

t.test('a flapping hot moves the pool only when rise/fall are reached', async (t) => {
  const p = pool('app-1 app-2 | spare-1'); // everyone passed the startup round at t=0
  const counter = new HealthCounter(2, 3);
  counter.observe(true); // app-2's startup check

  // One check of app-2 per interval from t=1000: `+` ok, `-` failed.
  const results = '--+---+-++-+';
  const log: { t: number; health: string; commands: FailoverCommand['type'][] }[] = [];
  let wakeAt: number | null = null;
  [...results].forEach((r, i) => {
    const now = (i + 1) * INTERVAL;
    if (counter.observe(r === '+') !== 'changed') return;
    const health = counter.health === 'up' ? 'up' : 'down';
    const tr = p.health(now, 'app-2', health);
    wakeAt = tr.wakeAt;
    log.push({ t: now, health, commands: tr.commands.map((c) => c.type) });
  });

  t.strictSame(log, [
    // 1000 -, 2000 -, 3000 + (streak broken), 4000 -, 5000 -, 6000 - → fall 3 reached
    { t: 6_000, health: 'down', commands: ['promoted'] },
    // 7000 +, 8000 - (broken), 9000 +, 10000 + → rise 2 reached
    { t: 10_000, health: 'up', commands: [] },
    // 11000 - is only pending: app-2 keeps serving, the failback hold keeps running
  ]);
  t.equal(wakeAt, 40_000, 'hold runs from the flip to up at 10000');
  t.strictSame(serving(p.state), ['app-1', 'app-2', 'spare-1']);

  t.strictSame(p.send(39_999, { type: 'tick' }).commands, []);
  t.strictSame(p.send(40_000, { type: 'tick' }).commands, [
    { type: 'released', warm: 'spare-1', covered: 'app-2', reason: 'failback' },
  ]);
});

t.test('passive detection marks down at once; only rise checks bring it back', async (t) => {
  const p = pool('app-1 | spare-1');
  const counter = new HealthCounter(2, 3);
  counter.observe(true);
  const passive = new PassiveDetector(3);

  const dispatched: string[] = [];
  const failure = (now: number) => {
    if (passive.failure() && counter.forceDown() === 'changed') {
      dispatched.push(`${now}:down`);
      p.health(now, 'app-1', 'down');
    }
  };
  const check = (now: number, ok: boolean) => {
    if (counter.observe(ok) === 'changed') {
      dispatched.push(`${now}:${counter.health}`);
      p.health(now, 'app-1', counter.health === 'up' ? 'up' : 'down');
    }
  };

  failure(100);
  failure(200);
  t.strictSame(pairs(p.state), {}, 'two failures: below the threshold');
  failure(300);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-1' }, 'third consecutive failure: down and covered');

  check(1_000, true);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-1' }, 'one good check is not enough');
  check(2_000, true);
  t.strictSame(dispatched, ['300:down', '2000:up']);
  t.match(p.member('app-1'), { servingSince: 2_000, ramp: true });
});
