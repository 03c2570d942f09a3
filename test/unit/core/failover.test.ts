import t from 'tap';
import { initialState, isServing, reduce } from '../../../src/core/failover.js';
import type { FailoverCommand, MemberState, PoolState } from '../../../src/core/failover-types.js';
import type { RefusalCode } from '../../../src/errors.js';
import { AUTO, MANUAL, WARMUP, assertInvariants, layout, memberOf, pairs, pool, serving } from '../../helpers/failover-pool.js';

t.test('initialState: every member unknown, enabled, standby, not serving', async (t) => {
  const state = initialState(layout('app-1 | spare-1'));
  t.strictSame(state, {
    members: [
      { name: 'app-1', role: 'hot', health: 'unknown', admin: 'enabled', promotion: null, phase: 'standby', servingSince: null, ramp: false },
      { name: 'spare-1', role: 'warm', health: 'unknown', admin: 'enabled', promotion: null, phase: 'standby', servingSince: null, ramp: false },
    ],
    uncovered: [],
  });
  t.ok(Object.isFrozen(state) && Object.isFrozen(state.members) && Object.isFrozen(state.members[0]));
  t.throws(() => initialState(layout('app-1 app-1')), RangeError);
});

t.test('isServing', async (t) => {
  const base: MemberState = {
    name: 'x', role: 'hot', health: 'up', admin: 'enabled', promotion: null, phase: 'standby', servingSince: null, ramp: false,
  };
  const rows: [string, Partial<MemberState>, boolean][] = [
    ['hot up enabled', {}, true],
    ['hot unknown', { health: 'unknown' }, false],
    ['hot down', { health: 'down' }, false],
    ['hot draining', { admin: 'draining' }, false],
    ['hot disabled', { admin: 'disabled' }, false],
    ['warm standby', { role: 'warm' }, false],
    ['warm warming', { role: 'warm', promotion: { kind: 'operator' }, phase: 'warming' }, false],
    ['warm serving', { role: 'warm', promotion: { kind: 'covers', hot: 'a' }, phase: 'serving' }, true],
    ['warm serving but down', { role: 'warm', promotion: { kind: 'operator' }, phase: 'serving', health: 'down' }, false],
  ];
  for (const [name, patch, expected] of rows) t.equal(isServing({ ...base, ...patch }), expected, name);
});

t.test('startup round: a backend that passes its first check serves at once, at full weight', async (t) => {
  const p = pool('app-1 app-2 | spare-1', AUTO, false);
  t.strictSame(p.health(0, 'app-1', 'up').commands, []);
  t.strictSame(p.member('app-1'), {
    name: 'app-1', role: 'hot', health: 'up', admin: 'enabled', promotion: null, phase: 'standby', servingSince: 0, ramp: false,
  });
  p.health(0, 'spare-1', 'up');
  t.strictSame(p.member('spare-1').servingSince, null, 'a standby warm does not serve');
  // app-2 fails its first check: covered by the warm that is already up; the warm ramps.
  t.strictSame(p.health(0, 'app-2', 'down').commands, [{ type: 'promoted', warm: 'spare-1', covers: 'app-2' }]);
  t.strictSame(serving(p.state), ['app-1', 'spare-1']);
  t.equal(p.member('spare-1').ramp, true);
});

t.test('startup round: a warm whose first check passes while it is needed covers without ramp', async (t) => {
  const p = pool('app-1 | spare-1', AUTO, false);
  t.strictSame(p.health(0, 'app-1', 'down').commands, [{ type: 'degraded', uncovered: ['app-1'] }]);
  t.strictSame(p.health(0, 'spare-1', 'up').commands, [
    { type: 'promoted', warm: 'spare-1', covers: 'app-1' },
    { type: 'restored' },
  ]);
  t.match(p.member('spare-1'), { servingSince: 0, ramp: false });
});

t.test('a hot that is merely unknown is not covered', async (t) => {
  const p = pool('app-1 app-2 | spare-1', AUTO, false);
  p.health(0, 'spare-1', 'up');
  const tr = p.health(0, 'app-1', 'up');
  t.strictSame(tr.commands, []);
  t.strictSame(pairs(p.state), {});
  t.strictSame(p.state.uncovered, [], 'app-2 (unknown) is neither covered nor degraded');
});

t.test('one-for-one: each failed hot takes the next warm in config order', async (t) => {
  const p = pool('app-1 app-2 app-3 | spare-1 spare-2 spare-3');

  const first = p.health(1_000, 'app-2', 'down');
  t.strictSame(first.commands, [{ type: 'promoted', warm: 'spare-1', covers: 'app-2' }]);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-2' });
  t.strictSame(serving(p.state), ['app-1', 'app-3', 'spare-1']);
  t.match(p.member('spare-1'), { phase: 'serving', servingSince: 1_000, ramp: true });
  t.match(p.member('spare-2'), { phase: 'standby', promotion: null, servingSince: null }, 'second warm untouched');
  t.match(p.member('app-2'), { servingSince: null, ramp: false });
  t.equal(first.wakeAt, null);

  const second = p.health(2_000, 'app-1', 'down');
  t.strictSame(second.commands, [{ type: 'promoted', warm: 'spare-2', covers: 'app-1' }]);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-2', 'spare-2': 'app-1' });
  t.strictSame(serving(p.state), ['app-3', 'spare-1', 'spare-2']);
});

t.test('an existing pair is not reshuffled when an earlier hot fails', async (t) => {
  const p = pool('app-1 app-2 | spare-1');
  p.health(0, 'app-2', 'down');
  // app-2 holds spare-1; app-1 failing later gets nothing, even though it comes first.
  t.strictSame(p.health(1, 'app-1', 'down').commands, [{ type: 'degraded', uncovered: ['app-1'] }]);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-2' }, 'an existing pair is not reshuffled');
});

t.test('a covering warm that fails is released and replaced in the same transition', async (t) => {
  const p = pool('app-1 app-2 | spare-1 spare-2 spare-3');
  p.health(1_000, 'app-2', 'down');
  const tr = p.health(2_000, 'spare-1', 'down');
  t.strictSame(tr.commands, [
    { type: 'released', warm: 'spare-1', covered: 'app-2', reason: 'failed' },
    { type: 'promoted', warm: 'spare-2', covers: 'app-2' },
  ]);
  t.match(p.member('spare-1'), { promotion: null, phase: 'standby', servingSince: null });
  t.match(p.member('spare-2'), { servingSince: 2_000, ramp: true });
  t.strictSame(pairs(p.state), { 'spare-2': 'app-2' });
});

t.test('a covering warm drained or disabled by an operator is released as failed and replaced', async (t) => {
  for (const admin of ['draining', 'disabled'] as const) {
    const p = pool('app-1 | spare-1 spare-2');
    p.health(1_000, 'app-1', 'down');
    t.strictSame(p.send(2_000, { type: 'admin', backend: 'spare-1', admin }).commands, [
      { type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'failed' },
      { type: 'promoted', warm: 'spare-2', covers: 'app-1' },
    ], admin);
  }
});

t.test('degraded when no warm is left, restored when warms come up', async (t) => {
  const p = pool('app-1 app-2 app-3 | spare-1 spare-2');
  p.health(0, 'spare-2', 'down');
  p.health(1, 'app-1', 'down');
  t.strictSame(pairs(p.state), { 'spare-1': 'app-1' });

  t.strictSame(p.health(2, 'app-2', 'down').commands, [{ type: 'degraded', uncovered: ['app-2'] }]);
  t.strictSame(p.health(3, 'app-3', 'down').commands, [{ type: 'degraded', uncovered: ['app-2', 'app-3'] }]);
  t.strictSame(p.state.uncovered, ['app-2', 'app-3']);
  t.strictSame(serving(p.state), ['spare-1'], 'the pool serves with what it has');

  t.strictSame(p.send(4, { type: 'tick' }).commands, [], 'no repeated degraded while nothing changes');

  t.strictSame(p.health(5, 'spare-2', 'up').commands, [
    { type: 'promoted', warm: 'spare-2', covers: 'app-2' },
    { type: 'degraded', uncovered: ['app-3'] },
  ]);
  // app-3 recovers on its own: nothing is missing any more.
  t.strictSame(p.health(6, 'app-3', 'up').commands, [{ type: 'restored' }]);
  t.strictSame(p.state.uncovered, []);
});

t.test('auto failback waits for the hold, which restarts if the hot flaps', async (t) => {
  const p = pool('app-1 app-2 | spare-1');
  p.health(1_000, 'app-2', 'down');

  const back = p.health(5_000, 'app-2', 'up');
  t.strictSame(back.commands, [], 'no failback before the hold');
  t.equal(back.wakeAt, 35_000);
  t.match(p.member('app-2'), { servingSince: 5_000, ramp: true }, 'a hot back from down ramps');
  t.strictSame(serving(p.state), ['app-1', 'app-2', 'spare-1'], 'the warm serves alongside during the hold');

  // Flap: down then up again restarts the hold.
  t.equal(p.health(10_000, 'app-2', 'down').wakeAt, null);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-2' }, 'the pair is kept: no new promotion');
  t.equal(p.health(12_000, 'app-2', 'up').wakeAt, 42_000);

  const early = p.send(41_999, { type: 'tick' });
  t.strictSame(early.commands, []);
  t.equal(early.wakeAt, 42_000);

  const due = p.send(42_000, { type: 'tick' });
  t.strictSame(due.commands, [{ type: 'released', warm: 'spare-1', covered: 'app-2', reason: 'failback' }]);
  t.equal(due.wakeAt, null);
  t.match(p.member('spare-1'), { promotion: null, phase: 'standby', servingSince: null, ramp: false });
  t.strictSame(serving(p.state), ['app-1', 'app-2']);
});

t.test('auto failback: wakeAt is the earliest of several holds', async (t) => {
  const p = pool('app-1 app-2 | spare-1 spare-2');
  p.health(0, 'app-1', 'down');
  p.health(0, 'app-2', 'down');
  p.health(2_000, 'app-2', 'up');
  t.equal(p.health(3_000, 'app-1', 'up').wakeAt, 32_000);
  t.strictSame(p.send(32_000, { type: 'tick' }).commands, [{ type: 'released', warm: 'spare-2', covered: 'app-2', reason: 'failback' }]);
  t.equal(p.last.wakeAt, 33_000);
});

t.test('auto failback with hold 0 releases as soon as the hot serves', async (t) => {
  const p = pool('app-1 | spare-1', { ...AUTO, failbackHoldMs: 0 });
  p.health(1_000, 'app-1', 'down');
  const tr = p.health(2_000, 'app-1', 'up');
  t.strictSame(tr.commands, [{ type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'failback' }]);
  t.equal(tr.wakeAt, null);
  t.strictSame(pairs(p.state), {});
});

t.test('a warm freed by failback covers an uncovered hot at once', async (t) => {
  const p = pool('app-1 app-2 | spare-1', { ...AUTO, failbackHoldMs: 0 });
  p.health(1_000, 'app-1', 'down');
  t.strictSame(p.health(2_000, 'app-2', 'down').commands, [{ type: 'degraded', uncovered: ['app-2'] }]);
  t.strictSame(p.health(3_000, 'app-1', 'up').commands, [
    { type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'failback' },
    { type: 'promoted', warm: 'spare-1', covers: 'app-2' },
    { type: 'restored' },
  ]);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-2' });
  t.match(p.member('spare-1'), { servingSince: 3_000, ramp: true }, 'a new promotion ramps again');
});

t.test('a warm paired with a recovered hot moves to a hot that fails later', async (t) => {
  for (const policy of [AUTO, MANUAL]) {
    const p = pool('app-1 app-2 | spare-1', policy);
    p.health(1_000, 'app-1', 'down');
    p.health(2_000, 'app-1', 'up'); // hold running (auto) or manual: spare-1 stays paired with app-1
    const tr = p.health(3_000, 'app-2', 'down');
    t.strictSame(tr.commands, [{ type: 'promoted', warm: 'spare-1', covers: 'app-2' }], `${policy.failback}: re-pointed, not degraded`);
    t.strictSame(pairs(p.state), { 'spare-1': 'app-2' });
    t.strictSame(p.state.uncovered, []);
    t.match(p.member('spare-1'), { phase: 'serving', servingSince: 1_000 }, 'keeps serving without a new ramp');
    t.equal(tr.wakeAt, null, 'no failback deadline for the new gap while app-2 is down');
  }
});

t.test('manual failback: the warm stays until demoted', async (t) => {
  const p = pool('app-1 | spare-1', MANUAL);
  p.health(1_000, 'app-1', 'down');
  const back = p.health(2_000, 'app-1', 'up');
  t.strictSame(back.commands, []);
  t.equal(back.wakeAt, null, 'nothing to wait for');
  t.strictSame(p.send(10_000_000, { type: 'tick' }).commands, []);
  t.strictSame(serving(p.state), ['app-1', 'spare-1'], 'warm serves alongside the recovered hot');

  t.strictSame(p.send(10_000_001, { type: 'demote', backend: 'spare-1' }).commands, [
    { type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'demoted' },
  ]);
  t.strictSame(serving(p.state), ['app-1']);
});

t.test('manual failback: a hot that fails again is still covered by its warm', async (t) => {
  const p = pool('app-1 | spare-1 spare-2', MANUAL);
  p.health(1_000, 'app-1', 'down');
  p.health(2_000, 'app-1', 'up');
  t.strictSame(p.health(3_000, 'app-1', 'down').commands, []);
  t.strictSame(pairs(p.state), { 'spare-1': 'app-1' });
});

t.test('a draining or disabled hot is covered, and failed back after it is enabled', async (t) => {
  for (const admin of ['draining', 'disabled'] as const) {
    const p = pool('app-1 app-2 | spare-1');
    t.strictSame(p.send(1_000, { type: 'admin', backend: 'app-1', admin }).commands, [
      { type: 'promoted', warm: 'spare-1', covers: 'app-1' },
    ], `${admin}: covered`);
    t.match(p.member('app-1'), { servingSince: null });

    const enabled = p.send(2_000, { type: 'admin', backend: 'app-1', admin: 'enabled' });
    t.equal(enabled.wakeAt, 32_000, `${admin}: hold starts when re-enabled`);
    t.match(p.member('app-1'), { servingSince: 2_000, ramp: true }, `${admin}: re-enabled hot ramps`);
    t.strictSame(p.send(32_000, { type: 'tick' }).commands, [
      { type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'failback' },
    ]);
  }
});

t.test('a disabled hot that has never been checked is covered (it is missing on purpose)', async (t) => {
  const p = pool('app-1 | spare-1', AUTO, false);
  p.health(0, 'spare-1', 'up');
  t.strictSame(p.send(1, { type: 'admin', backend: 'app-1', admin: 'disabled' }).commands, [
    { type: 'promoted', warm: 'spare-1', covers: 'app-1' },
  ]);
});

t.test('warm-up: a promoted warm serves only after warmed', async (t) => {
  const p = pool('app-1 | spare-1 spare-2', WARMUP);
  t.strictSame(p.health(1_000, 'app-1', 'down').commands, [
    { type: 'promoted', warm: 'spare-1', covers: 'app-1' },
    { type: 'warmup', warm: 'spare-1' },
  ]);
  t.match(p.member('spare-1'), { phase: 'warming', servingSince: null });
  t.strictSame(serving(p.state), []);
  t.strictSame(p.state.uncovered, [], 'a warming warm counts as cover');

  t.strictSame(p.send(1_500, { type: 'warmed', backend: 'spare-1' }).commands, []);
  t.match(p.member('spare-1'), { phase: 'serving', servingSince: 1_500, ramp: true });
  t.strictSame(serving(p.state), ['spare-1']);

  t.strictSame(p.send(1_600, { type: 'warmed', backend: 'spare-1' }).commands, []);
  t.match(p.member('spare-1'), { phase: 'serving', servingSince: 1_500 }, 'a second warmed changes nothing');
});

t.test('warm-up: stale warmed events are ignored', async (t) => {
  const p = pool('app-1 | spare-1 spare-2', WARMUP);
  const before = p.state;
  t.strictSame(p.send(500, { type: 'warmed', backend: 'spare-2' }).commands, [], 'standby warm');
  t.strictSame(p.state, before);

  p.health(1_000, 'app-1', 'down');
  // spare-1 fails while warming: replaced by spare-2, which warms in turn.
  t.strictSame(p.health(1_100, 'spare-1', 'down').commands, [
    { type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'failed' },
    { type: 'promoted', warm: 'spare-2', covers: 'app-1' },
    { type: 'warmup', warm: 'spare-2' },
  ]);
  // spare-1's warm-up finishes late: it was released, so it must not start serving.
  t.strictSame(p.send(1_200, { type: 'warmed', backend: 'spare-1' }).commands, []);
  t.match(p.member('spare-1'), { phase: 'standby', promotion: null });
  t.strictSame(serving(p.state), []);
  t.strictSame(p.send(1_300, { type: 'warmed', backend: 'app-1' }).commands, [], 'a hot never warms');
});

t.test('warm-up: auto failback can end a promotion that never served', async (t) => {
  const p = pool('app-1 | spare-1', { ...WARMUP, failbackHoldMs: 0 });
  p.health(1_000, 'app-1', 'down');
  t.strictSame(p.health(1_100, 'app-1', 'up').commands, [
    { type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'failback' },
  ]);
  t.strictSame(p.send(1_200, { type: 'warmed', backend: 'spare-1' }).commands, []);
  t.equal(p.member('spare-1').phase, 'standby');
});

t.test('operator promote: extra capacity, through warm-up like any promotion', async (t) => {
  const p = pool('app-1 | spare-1 spare-2');
  t.strictSame(p.send(1_000, { type: 'promote', backend: 'spare-2' }).commands, [
    { type: 'promoted', warm: 'spare-2', covers: null },
  ]);
  t.strictSame(pairs(p.state), { 'spare-2': 'operator' });
  t.match(p.member('spare-2'), { phase: 'serving', servingSince: 1_000, ramp: true });

  const w = pool('app-1 | spare-1', WARMUP);
  t.strictSame(w.send(1_000, { type: 'promote', backend: 'spare-1' }).commands, [
    { type: 'promoted', warm: 'spare-1', covers: null },
    { type: 'warmup', warm: 'spare-1' },
  ]);
  t.equal(w.member('spare-1').phase, 'warming');
});

t.test('operator-promoted warm that fails is released and not replaced', async (t) => {
  const p = pool('app-1 | spare-1 spare-2');
  p.send(1_000, { type: 'promote', backend: 'spare-1' });
  t.strictSame(p.health(2_000, 'spare-1', 'down').commands, [
    { type: 'released', warm: 'spare-1', covered: null, reason: 'failed' },
  ]);
  t.strictSame(pairs(p.state), {});
  t.strictSame(p.state.uncovered, []);
});

t.test('an operator-promoted warm is not taken to cover a failed hot', async (t) => {
  const p = pool('app-1 | spare-1 spare-2');
  p.send(1_000, { type: 'promote', backend: 'spare-1' });
  t.strictSame(p.health(2_000, 'app-1', 'down').commands, [{ type: 'promoted', warm: 'spare-2', covers: 'app-1' }]);
  t.strictSame(pairs(p.state), { 'spare-1': 'operator', 'spare-2': 'app-1' });
});

t.test('operator demote', async (t) => {
  await t.test('ends an operator promotion', async (t) => {
    const p = pool('app-1 | spare-1');
    p.send(1_000, { type: 'promote', backend: 'spare-1' });
    const tr = p.send(2_000, { type: 'demote', backend: 'spare-1' });
    t.strictSame(tr.commands, [{ type: 'released', warm: 'spare-1', covered: null, reason: 'demoted' }]);
    t.match(p.member('spare-1'), { promotion: null, phase: 'standby', servingSince: null });
  });
  await t.test('ends auto cover before the hold once the hot serves', async (t) => {
    const p = pool('app-1 | spare-1');
    p.health(1_000, 'app-1', 'down');
    t.equal(p.health(2_000, 'app-1', 'up').wakeAt, 32_000);
    const tr = p.send(3_000, { type: 'demote', backend: 'spare-1' });
    t.strictSame(tr.commands, [{ type: 'released', warm: 'spare-1', covered: 'app-1', reason: 'demoted' }]);
    t.equal(tr.wakeAt, null, 'no hold left to wait for');
  });
});

t.test('operator refusals', async (t) => {
  const setup = () => {
    const p = pool('app-1 app-2 | spare-1 spare-2 spare-3 spare-4 spare-5 spare-6');
    p.health(0, 'app-2', 'down'); // spare-1 covers app-2
    p.send(0, { type: 'promote', backend: 'spare-2' });
    p.health(0, 'spare-3', 'down');
    p.send(0, { type: 'admin', backend: 'spare-4', admin: 'draining' });
    p.send(0, { type: 'admin', backend: 'spare-5', admin: 'disabled' });
    return p;
  };
  const rows: [string, 'promote' | 'demote', string, RefusalCode, RegExp][] = [
    ['promote a hot', 'promote', 'app-1', 'PROMOTE_HOT', /^app-1 is a hot backend: hot backends serve by role/],
    ['promote a covering warm', 'promote', 'spare-1', 'ALREADY_PROMOTED', /^spare-1 is already promoted \(covers app-2\)$/],
    ['promote an operator-promoted warm', 'promote', 'spare-2', 'ALREADY_PROMOTED', /^spare-2 is already promoted \(promoted by an operator\)$/],
    ['promote a down warm', 'promote', 'spare-3', 'PROMOTE_NOT_UP', /^spare-3 is down/],
    ['promote a draining warm', 'promote', 'spare-4', 'PROMOTE_NOT_ENABLED', /^spare-4 is draining/],
    ['promote a disabled warm', 'promote', 'spare-5', 'PROMOTE_NOT_ENABLED', /^spare-5 is disabled/],
    ['demote a hot', 'demote', 'app-1', 'DEMOTE_HOT', /^app-1 is a hot backend/],
    ['demote a standby warm', 'demote', 'spare-6', 'NOT_PROMOTED', /^spare-6 covers nothing/],
    ['demote a warm whose hot is down', 'demote', 'spare-1', 'DEMOTE_WOULD_UNCOVER', /^app-2 is not serving; demoting spare-1 would leave it uncovered$/],
  ];
  for (const [name, type, backend, code, message] of rows) {
    const p = setup();
    const before = p.state;
    t.match(p.send(1, { type, backend }), { refusal: { code, message }, commands: [] }, name);
    t.equal(p.state, before, `${name}: state unchanged`);
  }

  const fresh = pool('app-1 | spare-1', AUTO, false);
  t.match(fresh.send(0, { type: 'promote', backend: 'spare-1' }), { refusal: { code: 'PROMOTE_NOT_UP', message: /^spare-1 is not checked yet/ } });

  const disabledHot = pool('app-1 | spare-1');
  disabledHot.send(0, { type: 'admin', backend: 'app-1', admin: 'disabled' });
  t.match(disabledHot.send(1, { type: 'demote', backend: 'spare-1' }), {
    refusal: { code: 'DEMOTE_WOULD_UNCOVER', message: 'app-1 is not serving; demoting spare-1 would leave it uncovered' },
  });
});

t.test('unknown backend names throw a RangeError', async (t) => {
  const p = pool('app-1 | spare-1');
  const events = [
    { type: 'health', backend: 'nope', health: 'up' },
    { type: 'admin', backend: 'nope', admin: 'disabled' },
    { type: 'warmed', backend: 'nope' },
    { type: 'promote', backend: 'nope' },
    { type: 'demote', backend: 'nope' },
  ] as const;
  for (const event of events) t.throws(() => p.send(0, event), new RangeError('unknown backend "nope"'), event.type);
});

t.test('the reducer never modifies its input and returns frozen data', async (t) => {
  // A hand-built, unfrozen state: spare-1 covers app-1 (down).
  const input: PoolState = {
    members: [
      { name: 'app-1', role: 'hot', health: 'down', admin: 'enabled', promotion: null, phase: 'standby', servingSince: null, ramp: false },
      { name: 'spare-1', role: 'warm', health: 'up', admin: 'enabled', promotion: { kind: 'covers', hot: 'app-1' }, phase: 'serving', servingSince: 10, ramp: true },
      { name: 'spare-2', role: 'warm', health: 'up', admin: 'enabled', promotion: null, phase: 'standby', servingSince: null, ramp: false },
    ],
    uncovered: [],
  };
  const snapshot = structuredClone(input);
  const tr = reduce(input, { type: 'health', backend: 'spare-1', health: 'down' }, 20, AUTO);
  t.strictSame(input, snapshot, 'input untouched');
  t.strictSame(pairs(tr.state), { 'spare-2': 'app-1' });
  t.ok(Object.isFrozen(tr.state.members[1]), 'members frozen');
  t.ok(Object.isFrozen(tr.commands) && Object.isFrozen(tr.commands[0]), 'commands frozen');
  t.ok(Object.isFrozen(memberOf(tr.state, 'spare-2').promotion), 'promotion frozen');
});

t.test('warm-up: the only warm fails while warming, then recovers', async (t) => {
  const p = pool('app-1 | spare-1', WARMUP);
  const seen: FailoverCommand['type'][] = [];
  for (const c of [
    ...p.health(1, 'app-1', 'down').commands,
    ...p.health(2, 'spare-1', 'down').commands,
    ...p.health(3, 'spare-1', 'up').commands,
  ]) seen.push(c.type);
  t.strictSame(seen, ['promoted', 'warmup', 'released', 'degraded', 'promoted', 'warmup', 'restored']);
});

t.test('the invariant check the driver runs after every transition is not vacuous', async (t) => {
  const ok = pool('app-1 | spare-1').state;
  t.equal(assertInvariants(ok), ok);
  const hot = ok.members[0] as MemberState;
  const warm = ok.members[1] as MemberState;
  const broken: [string, PoolState, RegExp][] = [
    ['stamp while not serving', { ...ok, members: [{ ...hot, health: 'down' }, warm], uncovered: ['app-1'] }, /servingSince/],
    ['uncovered list wrong', { ...ok, uncovered: ['app-1'] }, /uncovered should be \[\]/],
    ['free warm left idle', { members: [{ ...hot, health: 'down', servingSince: null, ramp: false }, warm], uncovered: ['app-1'] }, /warm is free/],
  ];
  for (const [name, state, message] of broken) t.throws(() => assertInvariants(state), { message }, name);
});
