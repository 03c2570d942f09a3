/** core/pool `affinity`: where a sticky session goes as its backend fails, is covered and fails back. */
import t from 'tap';
import { Pool, type PoolMember, type PoolSettings } from '../../../src/core/pool.js';
import { MANUAL } from '../../helpers/failover-pool.js';

const SETTINGS: PoolSettings = { policy: MANUAL, slowStartMs: 0, spill: true };

function member(name: string, role: 'hot' | 'warm' = 'hot', maxConns = 0): PoolMember {
  return { name, role, weight: 1, maxConns, inFlight: 0, credit: 0, lastPick: 0, servingSince: null, ramp: false };
}

t.test('own backend, full, covered, uncovered, unknown', async (t) => {
  const a = member('a', 'hot', 1);
  const b = member('b');
  const w = member('w', 'warm');
  const pool = new Pool('app', [a, b, w], SETTINGS);
  for (const m of [a, b, w]) pool.dispatch({ type: 'health', backend: m.name, health: 'up' }, 0);
  t.same(pool.affinity('a'), { kind: 'backend', backend: a });
  pool.acquire(a);
  t.same(pool.affinity('a'), { kind: 'busy' }, 'at max_conns: balanced once, cookie kept');
  pool.release(a);
  t.same(pool.affinity('nope'), { kind: 'lost' }, 'not a member');

  pool.dispatch({ type: 'health', backend: 'a', health: 'down' }, 1);
  const covering = pool.state.members.find((m) => m.name === 'w');
  t.match(covering?.promotion, { kind: 'covers', hot: 'a' }, 'w covers a');
  t.same(pool.affinity('a'), { kind: 'backend', backend: w }, 'the cover inherits a\'s sessions');
  t.same(pool.affinity('b'), { kind: 'backend', backend: b }, 'b\'s sessions stay');

  pool.dispatch({ type: 'health', backend: 'a', health: 'up' }, 2);
  t.same(pool.affinity('a'), { kind: 'backend', backend: w }, 'a serves again, but the pair holds: sessions stay on the cover');

  // b fails while a serves again: the failover reducer moves w to cover b.
  pool.dispatch({ type: 'health', backend: 'b', health: 'down' }, 3);
  t.same(pool.affinity('b'), { kind: 'backend', backend: w }, 'b\'s sessions follow w');
  t.same(pool.affinity('a'), { kind: 'backend', backend: a }, 'a\'s sessions go home once w no longer covers a');

  pool.dispatch({ type: 'health', backend: 'w', health: 'down' }, 4);
  t.same(pool.affinity('b'), { kind: 'lost' }, 'no warm left to cover b: balanced afresh');
});
