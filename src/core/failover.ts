/**
 * The failover reducer (SPEC §3): (state, event, now, policy) → (state, commands, wakeAt).
 *
 * Pure: no timers, no sockets, no clock. The shell dispatches events (health flips, admin
 * actions, warm-ups finished, deadlines reached), carries out the commands and calls back with
 * a `tick` at `wakeAt`. States are plain data, returned frozen; the input is never modified.
 *
 * Shape: every event makes its own small change on a draft copy of the members, then `settle`
 * brings the pool back to what the rules demand — release the pairs that no longer hold, cover
 * the hots that need it, recompute who is degraded — and reports the differences as commands.
 * Because settle derives everything from the members, a reload (`reconfigure`) is just another
 * draft handed to it.
 */
import {
  type FailoverCommand,
  type FailoverEvent,
  type FailoverPolicy,
  type Health,
  type MemberState,
  type PoolState,
  type Promotion,
  type ReleaseReason,
  type Role,
  type Transition,
} from './failover-types.js';
import { FailoverRefusal } from '../errors.js';

type Draft = { -readonly [K in keyof MemberState]: MemberState[K] };
type MemberSpec = { readonly name: string; readonly role: Role };

/** Every member unknown, enabled, standby and not serving; nothing is covered yet. */
export function initialState(members: readonly MemberSpec[]): PoolState {
  assertUniqueNames(members);
  return freezeState(members.map((m) => fresh(m.name, m.role)), []);
}

/**
 * Whether `m` takes live traffic. A hot backend serves by role while it is up and enabled; a
 * warm one only while promoted and past its warm-up (and, like any backend, up and enabled).
 */
export function isServing(m: MemberState): boolean {
  if (m.health !== 'up' || m.admin !== 'enabled') return false;
  return m.role === 'hot' || (m.promotion !== null && m.phase === 'serving');
}

/**
 * Apply one event. An operator event (`promote`, `demote`) that makes no sense is refused as a
 * value: the transition carries the `refusal` and changes nothing (the admin API answers 409
 * with it, and runs the reducer once). A backend name that is not in the pool throws a
 * `RangeError`: that is a bug of the caller, not a decision.
 */
export function reduce(state: PoolState, event: FailoverEvent, now: number, policy: FailoverPolicy): Transition {
  try {
    return apply(state, event, now, policy);
  } catch (err) {
    if (!(err instanceof FailoverRefusal)) throw err;
    return Object.freeze({ state, commands: Object.freeze([]), wakeAt: null, refusal: Object.freeze({ code: err.code, message: err.message }) });
  }
}

function apply(state: PoolState, event: FailoverEvent, now: number, policy: FailoverPolicy): Transition {
  const draft = state.members.map((m): Draft => ({ ...m }));
  const commands: FailoverCommand[] = [];
  switch (event.type) {
    case 'health':
      member(draft, event.backend).health = event.health;
      break;
    case 'admin':
      member(draft, event.backend).admin = event.admin;
      break;
    case 'warmed': {
      // A warm-up that finishes after its warm was released is stale: only a warm still
      // `warming` may start serving. The reducer cannot tell an old warm-up from the current
      // one if the warm was released and promoted again meanwhile: the shell cancels a
      // warm-up when it carries out the `released` of that warm.
      const warm = member(draft, event.backend);
      if (warm.phase === 'warming') warm.phase = 'serving';
      break;
    }
    case 'promote':
      promoteByOperator(member(draft, event.backend), policy, commands);
      break;
    case 'demote':
      demote(draft, member(draft, event.backend), commands);
      break;
    case 'tick':
      break;
  }
  return settle(state, draft, now, policy, commands);
}

/**
 * Reload: the pool's new member list, in config order. A member whose name is kept keeps its
 * state (health, admin, promotion, phase, servingSince, ramp). A member whose role changed keeps
 * what describes the backend (health, admin) and loses what described its old role (promotion,
 * phase); this emits no `released` for it: a warm turned hot keeps serving, as a hot. New
 * members start unknown and enabled. Removed members vanish: the shell drains them, so no
 * command is emitted for them, but a warm that covered a removed hot is released (`orphaned`)
 * and a hot whose removed warm covered it is covered again by settle.
 *
 * `renewed` names members that are new backends under an old name (the shell replaced the
 * backend because its address or role changed): they start fresh, like new members, and the
 * old one is drained like a removed one. A warm that covered a renewed hot keeps covering the
 * name: the pool keeps its capacity until the new backend has proved itself up and served for
 * the failback hold, exactly as after a recovery.
 */
export function reconfigure(
  state: PoolState,
  members: readonly MemberSpec[],
  now: number,
  policy: FailoverPolicy,
  renewed: ReadonlySet<string> = new Set(),
): Transition {
  assertUniqueNames(members);
  const old = new Map(state.members.map((m) => [m.name, m]));
  const draft = members.map(({ name, role }): Draft => {
    const kept = renewed.has(name) ? undefined : old.get(name);
    if (kept === undefined) return fresh(name, role);
    if (kept.role === role) return { ...kept };
    return { ...kept, role, promotion: null, phase: 'standby' };
  });
  return settle(state, draft, now, policy, []);
}

/**
 * Bring the draft in line with SPEC §3 and return the transition from `prev`.
 * `commands` already holds what the event itself did (operator promote / demote).
 */
function settle(
  prev: PoolState,
  draft: Draft[],
  now: number,
  policy: FailoverPolicy,
  commands: FailoverCommand[],
): Transition {
  // Health before this transition decides whether a member that starts serving ramps.
  const priorHealth = new Map(prev.members.map((m) => [m.name, m.health]));
  const byName = new Map(draft.map((m) => [m.name, m]));

  // 1. Serving bookkeeping for what the event changed. The failback hold below reads the
  //    hots' `servingSince`, so a hot that serves again must be stamped before it.
  for (const m of draft) stamp(m, now, priorHealth.get(m.name));

  // 2. Release the promotions that no longer hold. This comes before covering so that a hot
  //    whose warm failed is covered again in the same transition (cascade), and so that a
  //    warm released by failback is already available to a hot that needs it.
  for (const warm of draft) {
    const promotion = warm.promotion;
    if (promotion === null) continue;
    if (warm.health !== 'up' || warm.admin !== 'enabled') {
      release(warm, 'failed', commands);
      continue;
    }
    if (promotion.kind === 'operator') continue; // extra capacity: only a demote ends it
    const hot = byName.get(promotion.hot);
    if (hot === undefined || hot.role !== 'hot') {
      release(warm, 'orphaned', commands);
      continue;
    }
    // auto failback once the hot has served for the whole hold (hold 0: as soon as it serves);
    // manual failback: the pair stays until a demote or a reload removes it.
    if (policy.failback !== 'auto' || hot.servingSince === null) continue;
    if (now >= hot.servingSince + policy.failbackHoldMs) release(warm, 'failback', commands);
  }

  // 3. Cover every hot that is missing on purpose or by failure, in config order, with the
  //    first free warm in config order. A hot that is merely `unknown` (never checked) is not
  //    covered: nothing says it is missing, and its first check comes within one interval.
  const covered = new Set<string>();
  for (const m of draft) if (m.promotion?.kind === 'covers') covered.add(m.promotion.hot);
  //    With no free warm left, a warm still paired with a hot that serves again (failback hold
  //    running, or manual failback) moves to the new gap: its old hot needs no cover, and the
  //    pool keeps one backend per configured hot instead of reporting itself degraded.
  const uncovered: string[] = [];
  for (const hot of draft) {
    if (!needsCover(hot) || covered.has(hot.name)) continue;
    const warm = draft.find(isFreeWarm);
    if (warm !== undefined) {
      promote(warm, { kind: 'covers', hot: hot.name }, policy, commands);
      continue;
    }
    const spare = draft.find((m) => coversServingHot(m, byName));
    if (spare === undefined) {
      uncovered.push(hot.name);
      continue;
    }
    spare.promotion = { kind: 'covers', hot: hot.name };
    commands.push({ type: 'promoted', warm: spare.name, covers: hot.name });
  }

  // 4. Serving bookkeeping for the promotions and releases just made.
  for (const m of draft) stamp(m, now, priorHealth.get(m.name));
  const wakeAt = policy.failback === 'auto' ? nextFailback(draft, byName, policy.failbackHoldMs) : null;

  // 5. Degraded is reported when the set of uncovered hots changes, restored once it empties.
  if (!sameList(prev.uncovered, uncovered)) {
    commands.push(uncovered.length > 0 ? { type: 'degraded', uncovered: [...uncovered] } : { type: 'restored' });
  }

  return Object.freeze({
    state: freezeState(draft, uncovered),
    commands: Object.freeze(commands.map((c) => Object.freeze(c))),
    wakeAt,
    refusal: null,
  });
}

/**
 * Keep `servingSince` and `ramp` true to `isServing`: a member that starts serving is stamped
 * `now`; one that stops loses its stamp. It ramps (slow start) unless its health was `unknown`
 * before this transition: at startup every backend passes its first check together, so a
 * ramp would only hold them all back equally, and a backend added by a reload is treated like
 * one present at startup. A hot back from down, a hot re-enabled by an operator while up and
 * a promoted warm all ramp: they join a pool whose other members already carry the load.
 */
function stamp(m: Draft, now: number, priorHealth: Health | undefined): void {
  if (!isServing(m)) {
    m.servingSince = null;
    m.ramp = false;
  } else if (m.servingSince === null) {
    m.servingSince = now;
    m.ramp = (priorHealth ?? 'unknown') !== 'unknown';
  }
}

/** The earliest end of a running failback hold (a pair whose hot serves again), or null. */
function nextFailback(draft: readonly Draft[], byName: ReadonlyMap<string, Draft>, holdMs: number): number | null {
  let wakeAt: number | null = null;
  for (const warm of draft) {
    if (warm.promotion?.kind !== 'covers') continue;
    const since = byName.get(warm.promotion.hot)?.servingSince ?? null;
    if (since !== null && (wakeAt === null || since + holdMs < wakeAt)) wakeAt = since + holdMs;
  }
  return wakeAt;
}

/** A hot that is not serving because it is down, draining or disabled. */
function needsCover(m: MemberState): boolean {
  return m.role === 'hot' && (m.health === 'down' || m.admin !== 'enabled');
}

/** A promoted warm whose covered hot serves again: it may be re-pointed without a new warm-up. */
function coversServingHot(m: MemberState, byName: ReadonlyMap<string, MemberState>): boolean {
  if (m.role !== 'warm' || m.promotion?.kind !== 'covers' || m.health !== 'up' || m.admin !== 'enabled') return false;
  const hot = byName.get(m.promotion.hot);
  return hot !== undefined && isServing(hot);
}

/** A warm that may be promoted: up, enabled, and not already promoted. */
function isFreeWarm(m: MemberState): boolean {
  return m.role === 'warm' && m.promotion === null && m.health === 'up' && m.admin === 'enabled';
}

/** Promotion goes through `warming` when a warm-up is configured; the shell answers `warmed`. */
function promote(warm: Draft, promotion: Promotion, policy: FailoverPolicy, commands: FailoverCommand[]): void {
  warm.promotion = promotion;
  warm.phase = policy.warmup ? 'warming' : 'serving';
  commands.push({ type: 'promoted', warm: warm.name, covers: promotion.kind === 'covers' ? promotion.hot : null });
  if (policy.warmup) commands.push({ type: 'warmup', warm: warm.name });
}

function release(warm: Draft, reason: ReleaseReason, commands: FailoverCommand[]): void {
  const covered = warm.promotion?.kind === 'covers' ? warm.promotion.hot : null;
  commands.push({ type: 'released', warm: warm.name, covered, reason });
  warm.promotion = null;
  warm.phase = 'standby';
  warm.servingSince = null;
  warm.ramp = false;
}

function promoteByOperator(warm: Draft, policy: FailoverPolicy, commands: FailoverCommand[]): void {
  if (warm.role === 'hot') {
    throw new FailoverRefusal('PROMOTE_HOT', `${warm.name} is a hot backend: hot backends serve by role and cannot be promoted`);
  }
  if (warm.promotion !== null) {
    const what = warm.promotion.kind === 'covers' ? `covers ${warm.promotion.hot}` : 'promoted by an operator';
    throw new FailoverRefusal('ALREADY_PROMOTED', `${warm.name} is already promoted (${what})`);
  }
  if (warm.health !== 'up') {
    const health = warm.health === 'down' ? 'down' : 'not checked yet';
    throw new FailoverRefusal('PROMOTE_NOT_UP', `${warm.name} is ${health}: only an up warm backend can be promoted`);
  }
  if (warm.admin !== 'enabled') {
    throw new FailoverRefusal('PROMOTE_NOT_ENABLED', `${warm.name} is ${warm.admin}: enable it before promoting it`);
  }
  promote(warm, { kind: 'operator' }, policy, commands);
}

/**
 * Demote ends an operator promotion, or a covering pair whose hot serves again (manual
 * failback, or auto failback before the hold ends). Demoting a warm whose hot is still missing
 * is refused rather than silently re-covered: the operator asked for less capacity than the
 * rules require, and should drain or disable the warm if that is really what they want.
 */
function demote(draft: readonly Draft[], warm: Draft, commands: FailoverCommand[]): void {
  if (warm.role === 'hot') {
    throw new FailoverRefusal('DEMOTE_HOT', `${warm.name} is a hot backend: hot backends serve by role and cannot be demoted`);
  }
  const promotion = warm.promotion;
  if (promotion === null) throw new FailoverRefusal('NOT_PROMOTED', `${warm.name} covers nothing: it is not promoted`);
  if (promotion.kind === 'covers') {
    const hot = draft.find((m) => m.name === promotion.hot);
    if (hot === undefined || !isServing(hot)) {
      throw new FailoverRefusal('DEMOTE_WOULD_UNCOVER', `${promotion.hot} is not serving; demoting ${warm.name} would leave it uncovered`);
    }
  }
  release(warm, 'demoted', commands);
}

function member(draft: readonly Draft[], name: string): Draft {
  const found = draft.find((m) => m.name === name);
  if (found === undefined) throw new RangeError(`unknown backend "${name}"`);
  return found;
}

function fresh(name: string, role: Role): Draft {
  return { name, role, health: 'unknown', admin: 'enabled', promotion: null, phase: 'standby', servingSince: null, ramp: false };
}

function assertUniqueNames(members: readonly MemberSpec[]): void {
  const seen = new Set<string>();
  for (const { name } of members) {
    if (seen.has(name)) throw new RangeError(`duplicate backend name "${name}"`);
    seen.add(name);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function freezeState(members: readonly Draft[], uncovered: readonly string[]): PoolState {
  return Object.freeze({
    members: Object.freeze(
      members.map((m) => Object.freeze({ ...m, promotion: m.promotion && Object.freeze({ ...m.promotion }) })),
    ),
    uncovered: Object.freeze([...uncovered]),
  });
}
