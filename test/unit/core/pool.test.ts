/** core/pool: selection semantics around the balancer (spill, max_conns, retries), load accounting, capacity. */
import t from 'tap';
import { Pool, type PoolMember, type PoolSettings } from '../../../src/core/pool.js';
import { MANUAL } from '../../helpers/failover-pool.js';

const SETTINGS: PoolSettings = { policy: MANUAL, slowStartMs: 10_000, spill: true };

function member(name: string, role: 'hot' | 'warm' = 'hot', weight = 1, maxConns = 0): PoolMember {
  return { name, role, weight, maxConns, inFlight: 0, credit: 0, lastPick: 0, servingSince: null, ramp: false };
}

function upPool(members: PoolMember[], settings: PoolSettings = SETTINGS): Pool<PoolMember> {
  const pool = new Pool('app', members, settings);
  for (const m of members) pool.dispatch({ type: 'health', backend: m.name, health: 'up' }, 0);
  return pool;
}

t.test('acquire and release keep the in-flight count; release never goes below 0', async (t) => {
  const a = member('a');
  const pool = upPool([a]);
  pool.acquire(a);
  pool.acquire(a);
  t.equal(a.inFlight, 2);
  pool.release(a);
  pool.release(a);
  pool.release(a);
  t.equal(a.inFlight, 0);
});

t.test('spill: every serving backend at max_conns → a standby warm; nothing with room → all_full', async (t) => {
  const a = member('a', 'hot', 1, 1);
  const spare = member('spare', 'warm', 1, 1);
  const pool = upPool([a, spare]);
  const first = pool.select(1);
  t.match(first, { backend: a, via: 'serving' });
  pool.acquire(a);
  t.match(pool.select(2), { backend: spare, via: 'spill' });
  pool.acquire(spare);
  t.match(pool.select(3), { backend: null, reason: 'all_full' });
  const noSpill = upPool([member('a', 'hot', 1, 1), member('spare', 'warm')], { ...SETTINGS, spill: false });
  noSpill.acquire(noSpill.member('a') as PoolMember);
  t.match(noSpill.select(1), { backend: null, reason: 'all_full' }, 'spill off');
});

t.test('a serving backend with room is used before spill, even over its in-flight cap', async (t) => {
  const a = member('a');
  const b = member('b', 'hot', 1, 2);
  const spare = member('spare', 'warm');
  const pool = upPool([a, b, spare]);
  a.inFlight = 5;
  b.inFlight = 2; // full
  t.match(pool.select(1), { backend: a, via: 'serving' });
});

t.test('retries: never the same backend; a standby warm only when asked and no untried serving one is left', async (t) => {
  const a = member('a');
  const b = member('b');
  const spare = member('spare', 'warm');
  const pool = upPool([a, b, spare]);
  t.match(pool.select(1, [a]), { backend: b });
  t.match(pool.select(1, [a, b]), { backend: null, reason: 'none_untried' });
  t.match(pool.select(1, [a, b], true), { backend: spare, via: 'standby' });
  t.match(pool.select(1, [a, b, spare], true), { backend: null, reason: 'none_untried' });
});

t.test('a promoted warm takes the very next request, at 10% of its weight', async (t) => {
  const a = member('a');
  const b = member('b');
  const spare = member('spare', 'warm');
  const pool = upPool([a, b, spare]);
  for (let i = 0; i < 7; i++) pool.select(i);
  pool.dispatch({ type: 'health', backend: 'b', health: 'down' }, 1_000);
  t.equal(pool.select(1_001).backend, spare);
  t.ok(Math.abs(pool.effectiveWeight(spare, 1_001) - 0.1009) < 0.001);
});

t.test('capacity: serving effective weights over the configured hot weight, at most 1', async (t) => {
  const a = member('a', 'hot', 3);
  const b = member('b', 'hot', 1);
  const spare = member('spare', 'warm', 2);
  const pool = upPool([a, b, spare]);
  t.equal(pool.capacity(0), 1, 'all hot serving');
  pool.dispatch({ type: 'health', backend: 'a', health: 'down' }, 1_000);
  // b (1) + spare ramping from 10% of 2 → (1 + 0.2) / 4 at the start, (1 + 2) / 4 after the ramp.
  t.ok(Math.abs(pool.capacity(1_000) - 0.3) < 1e-9, `just promoted: ${pool.capacity(1_000)}`);
  t.ok(Math.abs(pool.capacity(6_000) - (1 + 2 * 0.55) / 4) < 1e-9, 'half way');
  t.equal(pool.capacity(11_000), 0.75, 'ramped: a lighter warm covers only part of a');
  pool.dispatch({ type: 'health', backend: 'b', health: 'down' }, 20_000);
  t.ok(pool.capacity(40_000) <= 1);
  const heavySpare = upPool([member('x', 'hot', 1), member('y', 'warm', 5)]);
  heavySpare.dispatch({ type: 'health', backend: 'x', health: 'down' }, 0);
  t.equal(heavySpare.capacity(100_000), 1, 'capped at 100%');
  t.equal(upPool([member('w', 'warm')]).capacity(0), 0, 'no hot weight');
});
