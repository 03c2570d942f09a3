/**
 * Fixtures for the failover reducer tests: a pool written as a one-line layout, a driver that
 * threads the state through events at explicit times (the injected clock), and compact views
 * of a state for assertions.
 */
import { initialState, isServing, reconfigure, reduce } from '../../src/core/failover.js';
import type {
  FailoverEvent,
  FailoverPolicy,
  MemberState,
  PoolState,
  Role,
  Transition,
} from '../../src/core/failover-types.js';

export const AUTO: FailoverPolicy = Object.freeze({ failback: 'auto', failbackHoldMs: 30_000, warmup: false });
export const MANUAL: FailoverPolicy = Object.freeze({ ...AUTO, failback: 'manual' });
export const WARMUP: FailoverPolicy = Object.freeze({ ...AUTO, warmup: true });

/** `'app-1 app-2 | spare-1'` → hots before the bar, warms after it, in config order. */
export function layout(text: string): { name: string; role: Role }[] {
  const [hots = '', warms = ''] = text.split('|');
  const names = (part: string) => part.trim().split(/\s+/).filter(Boolean);
  return [
    ...names(hots).map((name) => ({ name, role: 'hot' as const })),
    ...names(warms).map((name) => ({ name, role: 'warm' as const })),
  ];
}

export interface Driver {
  readonly state: PoolState;
  readonly last: Transition;
  send(now: number, event: FailoverEvent): Transition;
  health(now: number, backend: string, health: 'up' | 'down'): Transition;
  reload(now: number, text: string, policy?: FailoverPolicy): Transition;
  member(name: string): MemberState;
}

/** A pool of `text` under `policy`; with `startUp` every member passes its first check at t=0. */
export function pool(text: string, policy: FailoverPolicy = AUTO, startUp = true): Driver {
  let state = initialState(layout(text));
  let last: Transition = { state, commands: [], wakeAt: null, refusal: null };
  const driver: Driver = {
    get state() {
      return state;
    },
    get last() {
      return last;
    },
    send(now, event) {
      last = reduce(state, event, now, policy);
      state = assertInvariants(last.state);
      return last;
    },
    health(now, backend, health) {
      return driver.send(now, { type: 'health', backend, health });
    },
    reload(now, next, nextPolicy = policy) {
      policy = nextPolicy;
      last = reconfigure(state, layout(next), now, policy);
      state = assertInvariants(last.state);
      return last;
    },
    member(name) {
      return memberOf(state, name);
    },
  };
  if (startUp) for (const m of state.members) driver.health(0, m.name, 'up');
  return driver;
}

/**
 * What must hold after every transition; the driver checks it so that every scenario test
 * also tests these. Throws (failing the test) with the first broken rule.
 */
export function assertInvariants(state: PoolState): PoolState {
  const broken = (why: string): never => {
    throw new Error(`invariant broken: ${why}\n${JSON.stringify(state, null, 1)}`);
  };
  const coveredBy = new Map<string, string>();
  for (const m of state.members) {
    if ((m.servingSince !== null) !== isServing(m)) broken(`${m.name}: servingSince must be set exactly while serving`);
    if (m.ramp && m.servingSince === null) broken(`${m.name}: ramp without servingSince`);
    if (m.role === 'hot' && (m.promotion !== null || m.phase !== 'standby')) broken(`${m.name}: a hot is never promoted`);
    if ((m.promotion === null) !== (m.phase === 'standby')) broken(`${m.name}: promoted exactly when not standby`);
    if (m.promotion !== null && (m.health !== 'up' || m.admin !== 'enabled')) broken(`${m.name}: promoted but cannot serve`);
    if (m.promotion?.kind === 'covers') {
      const hot = m.promotion.hot;
      if (coveredBy.has(hot)) broken(`${hot} covered twice`);
      coveredBy.set(hot, m.name);
      if (state.members.find((h) => h.name === hot)?.role !== 'hot') broken(`${m.name} covers ${hot}, which is not a hot`);
    }
  }
  const needCover = state.members.filter((m) => m.role === 'hot' && (m.health === 'down' || m.admin !== 'enabled'));
  const expected = needCover.filter((m) => !coveredBy.has(m.name)).map((m) => m.name);
  if (JSON.stringify(expected) !== JSON.stringify(state.uncovered)) broken(`uncovered should be ${JSON.stringify(expected)}`);
  const freeWarm = state.members.some((m) => m.role === 'warm' && m.promotion === null && m.health === 'up' && m.admin === 'enabled');
  if (expected.length > 0 && freeWarm) broken('a hot is uncovered while a warm is free');
  return state;
}

export function memberOf(state: PoolState, name: string): MemberState {
  const found = state.members.find((m) => m.name === name);
  if (found === undefined) throw new Error(`no member ${name} in test state`);
  return found;
}

/** Promoted warms → what they cover (`'operator'` for an operator promotion). */
export function pairs(state: PoolState): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of state.members) {
    if (m.promotion !== null) out[m.name] = m.promotion.kind === 'covers' ? m.promotion.hot : 'operator';
  }
  return out;
}

/** Names of the serving members, in config order. */
export function serving(state: PoolState): string[] {
  return state.members.filter(isServing).map((m) => m.name);
}
