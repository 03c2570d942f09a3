import t from 'tap';
import { reconfigure, reduce } from '../../../src/core/failover.js';
import { AUTO, MANUAL, assertInvariants, layout, memberOf, pairs, pool, serving } from '../../helpers/failover-pool.js';

t.test('a kept pair survives an unrelated change', async (t) => {
  const p = pool('app-1 app-2 | spare-1 spare-2');
  p.health(1_000, 'app-2', 'down');
  const before = p.member('spare-1');
  const tr = p.reload(2_000, 'app-1 app-2 app-3 | spare-1 spare-2');
  t.strictSame(tr.commands, []);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-2' });
  t.strictSame(p.member('spare-1'), before, 'health, promotion, phase, servingSince, ramp kept');
  t.match(p.member('app-1'), { health: 'up', servingSince: 0, ramp: false });
  t.match(p.member('app-3'), { health: 'unknown', admin: 'enabled', servingSince: null }, 'new member starts unknown');
  t.strictSame(p.state.uncovered, [], 'an unknown new hot is not covered');

  p.health(2_500, 'app-3', 'up');
  t.match(p.member('app-3'), { servingSince: 2_500, ramp: false }, 'first check of a new backend: no ramp');
});

t.test('config order follows the new list', async (t) => {
  const p = pool('app-1 | spare-1 spare-2');
  p.reload(1, 'app-1 | spare-2 spare-1');
  t.strictSame(p.health(2, 'app-1', 'down').commands, [{ type: 'promoted', warm: 'spare-2', covers: 'app-1' }]);
});

t.test('a removed hot orphans its warm', async (t) => {
  const p = pool('app-1 app-2 | spare-1', MANUAL);
  p.health(1_000, 'app-2', 'down');
  const tr = p.reload(2_000, 'app-1 | spare-1');
  t.strictSame(tr.commands, [{ type: 'released', warm: 'spare-1', covered: 'app-2', reason: 'orphaned' }]);
  t.match(p.member('spare-1'), { promotion: null, phase: 'standby', servingSince: null });
  t.strictSame(serving(p.state), ['app-1']);
});

t.test('a removed uncovered hot ends the degraded state', async (t) => {
  const p = pool('app-1 app-2 | spare-1');
  p.health(1, 'app-1', 'down');
  p.health(2, 'app-2', 'down');
  t.strictSame(p.state.uncovered, ['app-2']);
  t.strictSame(p.reload(3, 'app-1 | spare-1').commands, [{ type: 'restored' }]);
});

t.test('a removed warm: its hot is covered again by the next warm', async (t) => {
  const p = pool('app-1 app-2 | spare-1 spare-2');
  p.health(1_000, 'app-2', 'down');
  const tr = p.reload(2_000, 'app-1 app-2 | spare-2');
  t.strictSame(tr.commands, [{ type: 'promoted', warm: 'spare-2', covers: 'app-2' }], 'no released for a removed warm');
  t.strictSame(pairs(p.state), { 'spare-2': 'app-2' });
  t.match(p.member('spare-2'), { servingSince: 2_000, ramp: true });
});

t.test('a removed warm with no replacement degrades', async (t) => {
  const p = pool('app-1 | spare-1');
  p.health(1_000, 'app-1', 'down');
  t.strictSame(p.reload(2_000, 'app-1 |').commands, [{ type: 'degraded', uncovered: ['app-1'] }]);
});

t.test('role change: a covering warm turned hot keeps serving, as a hot', async (t) => {
  const p = pool('app-1 app-2 | spare-1 spare-2');
  p.health(1_000, 'app-2', 'down');
  const tr = p.reload(2_000, 'app-1 app-2 spare-1 | spare-2');
  t.strictSame(tr.commands, [{ type: 'promoted', warm: 'spare-2', covers: 'app-2' }]);
  t.strictSame(p.member('spare-1'), {
    name: 'spare-1', role: 'hot', health: 'up', admin: 'enabled', promotion: null, phase: 'standby', servingSince: 1_000, ramp: true,
  }, 'promotion and phase lost; it served throughout, so servingSince is kept');
  t.strictSame(serving(p.state), ['app-1', 'spare-1', 'spare-2']);
});

t.test('role change: a covered hot turned warm orphans its warm', async (t) => {
  const p = pool('app-1 app-2 | spare-1');
  p.health(1_000, 'app-2', 'down');
  const tr = p.reload(2_000, 'app-1 | spare-1 app-2');
  t.strictSame(tr.commands, [{ type: 'released', warm: 'spare-1', covered: 'app-2', reason: 'orphaned' }]);
  t.match(p.member('app-2'), { role: 'warm', health: 'down', promotion: null });
});

t.test('role change: a serving hot turned warm stops serving and waits in standby', async (t) => {
  const p = pool('app-1 app-2 |');
  t.strictSame(p.reload(1_000, 'app-1 | app-2').commands, []);
  t.strictSame(p.member('app-2'), {
    name: 'app-2', role: 'warm', health: 'up', admin: 'enabled', promotion: null, phase: 'standby', servingSince: null, ramp: false,
  });
  t.strictSame(serving(p.state), ['app-1']);
  t.strictSame(p.health(2_000, 'app-1', 'down').commands, [{ type: 'promoted', warm: 'app-2', covers: 'app-1' }]);
});

t.test('role change: admin state is kept; a draining warm turned hot is covered', async (t) => {
  const p = pool('app-1 | spare-1');
  p.send(1_000, { type: 'admin', backend: 'spare-1', admin: 'draining' });
  t.strictSame(p.reload(2_000, 'spare-1 | app-1').commands, [{ type: 'promoted', warm: 'app-1', covers: 'spare-1' }]);
  t.match(p.member('spare-1'), { role: 'hot', admin: 'draining', servingSince: null });
  t.match(p.member('app-1'), { role: 'warm', phase: 'serving', servingSince: 2_000, ramp: true });
  p.send(3_000, { type: 'admin', backend: 'spare-1', admin: 'enabled' });
  t.match(p.member('spare-1'), { servingSince: 3_000, ramp: true }, 'a hot enabled while up ramps');
});

t.test('reconfigure never modifies its input and rejects duplicate names', async (t) => {
  const p = pool('app-1 app-2 | spare-1');
  p.health(1, 'app-2', 'down');
  const before = p.state;
  const snapshot = structuredClone(before);
  reconfigure(before, layout('app-1 | spare-1'), 2, AUTO);
  t.strictSame(before, snapshot);
  t.throws(() => reconfigure(before, layout('app-1 | app-1'), 2, AUTO), new RangeError('duplicate backend name "app-1"'));
});

t.test('reconfigure to manual failback keeps a pair whose hold was running', async (t) => {
  const p = pool('app-1 | spare-1');
  p.health(1_000, 'app-1', 'down');
  t.equal(p.health(2_000, 'app-1', 'up').wakeAt, 32_000);
  const tr = p.reload(3_000, 'app-1 | spare-1', MANUAL);
  t.equal(tr.wakeAt, null);
  t.strictSame(p.send(40_000, { type: 'tick' }).commands, []);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-1' });
});

t.test('renewed: a new backend under an old name starts fresh; its warm keeps covering the name', async (t) => {
  const p = pool('app-1 app-2 | spare-1');
  p.health(1_000, 'app-2', 'down');
  const tr = reconfigure(p.state, layout('app-1 app-2 | spare-1'), 2_000, AUTO, new Set(['app-2']));
  assertInvariants(tr.state);
  t.strictSame(tr.commands, [], 'no release while the new app-2 is unknown: capacity is kept');
  t.match(memberOf(tr.state, 'app-2'), { health: 'unknown', admin: 'enabled', servingSince: null });
  t.strictSame(pairs(tr.state), { 'spare-1': 'app-2' });
  const up = reduce(tr.state, { type: 'health', backend: 'app-2', health: 'up' }, 2_500, AUTO);
  t.match(memberOf(up.state, 'app-2'), { servingSince: 2_500, ramp: false }, 'first check of the new backend: no ramp');
  t.equal(up.wakeAt, 32_500, 'the warm is released after the failback hold, as after a recovery');
});

t.test('renewed: a covering warm replaced by a new backend; the next warm covers', async (t) => {
  const p = pool('app-1 | spare-1 spare-2');
  p.health(1_000, 'app-1', 'down');
  const tr = reconfigure(p.state, layout('app-1 | spare-1 spare-2'), 2_000, AUTO, new Set(['spare-1']));
  assertInvariants(tr.state);
  t.strictSame(tr.commands, [{ type: 'promoted', warm: 'spare-2', covers: 'app-1' }], 'no released for the old spare-1: it drains');
  t.match(memberOf(tr.state, 'spare-1'), { health: 'unknown', promotion: null, phase: 'standby' });
});

t.test('renewed with a role change: fresh in its new role', async (t) => {
  const p = pool('app-1 app-2 |');
  const tr = reconfigure(p.state, layout('app-1 | app-2'), 1_000, AUTO, new Set(['app-2']));
  t.match(memberOf(tr.state, 'app-2'), { role: 'warm', health: 'unknown', servingSince: null });
  t.strictSame(serving(tr.state), ['app-1']);
});
