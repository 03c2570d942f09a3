/** core/pool: a reload keeps member objects (and their load) and renews replaced ones by identity. */
import t from 'tap';
import { Pool, type PoolMember, type PoolSettings } from '../../../src/core/pool.js';
import { AUTO, MANUAL } from '../../helpers/failover-pool.js';

const SETTINGS: PoolSettings = { policy: AUTO, slowStartMs: 0, spill: true };

function member(name: string, role: 'hot' | 'warm' = 'hot', weight = 1): PoolMember {
  return { name, role, weight, maxConns: 0, inFlight: 0, credit: 0, lastPick: 0, servingSince: null, ramp: false };
}

t.test('kept objects keep state and load; a new object under an old name starts fresh', async (t) => {
  const a = member('a');
  const b = member('b');
  const spare = member('spare', 'warm');
  const pool = new Pool('app', [a, b, spare], SETTINGS);
  for (const m of ['a', 'b', 'spare']) pool.dispatch({ type: 'health', backend: m, health: 'up' }, 0);
  a.inFlight = 3;
  const b2 = member('b', 'hot', 4);
  const tr = pool.reconfigure([a, b2, spare], { ...SETTINGS, policy: MANUAL }, 100);
  t.strictSame(tr.commands, []);
  t.equal(pool.member('a'), a, 'same object');
  t.equal(a.inFlight, 3, 'in-flight kept');
  t.equal(pool.member('b'), b2);
  t.match(pool.memberState('a'), { health: 'up', servingSince: 0 });
  t.match(pool.memberState('b'), { health: 'unknown', servingSince: null }, 'renewed');
  t.strictSame(pool.serving.map((m) => m.name), ['a'], 'the new b serves only once up');
  t.equal(pool.settings.policy, MANUAL);
  pool.dispatch({ type: 'health', backend: 'b', health: 'up' }, 200);
  t.strictSame(pool.serving, [a, b2]);
  t.equal(pool.select(300).backend, b2, 'least loaded: the new b (weight 4, idle)');
});
