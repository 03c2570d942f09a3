/**
 * A pool's decision state: who serves, who stands by, and which backend takes the next request.
 * Pure: time is passed in, and the backend objects are the shell's own (they carry sockets and
 * agents the core never touches); the core reads and writes only the {@link PoolMember} fields.
 *
 * The failover reducer owns roles, health and promotions; after every transition this class
 * rebuilds two small arrays — serving backends and standby warms — so that a pick walks only
 * what may take traffic (the immutable-selector model of pingora's LoadBalancer::update).
 */
import { Balancer, hasRoom, type Balanced } from './balancer.js';
import { initialState, isServing, reconfigure, reduce } from './failover.js';
import type { FailoverEvent, FailoverPolicy, MemberState, PoolState, Role, Transition } from './failover-types.js';
import { effectiveWeight } from './slow-start.js';

/**
 * The fields of a backend that the core reads and writes. The load facts — `inFlight`,
 * `credit`, `lastPick` — are written only by the core (select, acquire, release); the shell
 * reads them for status and metrics.
 */
export interface PoolMember extends Balanced {
  readonly name: string;
  readonly role: Role;
  weight: number;
  /** 0 = unlimited. */
  maxConns: number;
  /** HTTP requests in progress plus open tunnels. */
  inFlight: number;
  /** Copied from the failover state after each transition (slow start). */
  servingSince: number | null;
  ramp: boolean;
}

export interface PoolSettings {
  readonly policy: FailoverPolicy;
  readonly slowStartMs: number;
  readonly spill: boolean;
}

export type Selection<B> =
  | { readonly backend: B; readonly via: 'serving' | 'spill' | 'standby' }
  | { readonly backend: null; readonly reason: 'none_serving' | 'all_full' | 'none_untried' };

/**
 * Where a sticky session goes (SPEC §10): `backend` = there, the cookie stays; `busy` = balanced
 * as usual this once, the cookie stays (its backend, or the warm covering it, is full or still
 * warming up); `lost` = balanced afresh and the cookie replaced (the backend is gone, or down
 * with no warm covering it).
 */
export type Affinity<B> =
  | { readonly kind: 'backend'; readonly backend: B }
  | { readonly kind: 'busy' }
  | { readonly kind: 'lost' };

const BUSY = { kind: 'busy' } as const;
const LOST = { kind: 'lost' } as const;

const NOTHING: readonly never[] = [];

export class Pool<B extends PoolMember> {
  readonly name: string;
  #settings: PoolSettings;
  #members: readonly B[];
  #byName: Map<string, B>;
  #state: PoolState;
  #serving: B[] = [];
  /** Warms that are up, enabled and not promoted: spill and last-resort retries go here. */
  #standby: B[] = [];
  readonly #balancer = new Balancer();
  readonly #weightOf = (b: B): number => this.effectiveWeight(b, this.#now);
  #now = 0;

  constructor(name: string, members: readonly B[], settings: PoolSettings) {
    this.name = name;
    this.#settings = settings;
    this.#members = members;
    this.#byName = new Map(members.map((m) => [m.name, m]));
    this.#state = initialState(members.map((m) => ({ name: m.name, role: m.role })));
    this.#rebuild();
  }

  get state(): PoolState {
    return this.#state;
  }

  get settings(): PoolSettings {
    return this.#settings;
  }

  get members(): readonly B[] {
    return this.#members;
  }

  /** Currently serving backends (a fresh array is not made; do not mutate). */
  get serving(): readonly B[] {
    return this.#serving;
  }

  get standby(): readonly B[] {
    return this.#standby;
  }

  member(name: string): B | undefined {
    return this.#byName.get(name);
  }

  memberState(name: string): MemberState | undefined {
    return this.#state.members.find((m) => m.name === name);
  }

  effectiveWeight(b: B, now: number): number {
    return effectiveWeight(b.weight, b, now, this.#settings.slowStartMs);
  }

  /**
   * The backend for a new request or connection.
   * - `exclude`: backends already tried for this request (retries never repeat one).
   * - `retry`: when no untried serving backend is left, an up standby warm may take it (SPEC §4).
   * With spill on, when every serving backend is full a standby warm with room takes it.
   */
  select(now: number, exclude: readonly B[] = NOTHING, retry = false): Selection<B> {
    this.#now = now;
    const serving = this.#serving;
    const chosen = this.#balancer.pick(serving, this.#weightOf, exclude);
    if (chosen !== null) return this.#picked(chosen, 'serving');

    const untriedServing = exclude.length === 0 ? serving.length : serving.filter((b) => !exclude.includes(b)).length;
    if (untriedServing > 0) {
      // Serving backends are left but all are full.
      if (this.#settings.spill) {
        const spill = this.#balancer.pickStandby(this.#standby, exclude);
        if (spill !== null) return this.#picked(spill, 'spill');
      }
      return { backend: null, reason: 'all_full' };
    }
    if (retry) {
      const standby = this.#balancer.pickStandby(this.#standby, exclude);
      if (standby !== null) return this.#picked(standby, 'standby');
    }
    return { backend: null, reason: serving.length === 0 ? 'none_serving' : 'none_untried' };
  }

  /**
   * The backend for a session pinned to `name`. A warm covering `name` takes its sessions for as
   * long as the pair lasts — also while the recovered hot backend waits out failback_hold — so a
   * session moves once at failover and once at failback (when the warm is released), never
   * back and forth. Otherwise the named backend while it serves.
   */
  affinity(name: string): Affinity<B> {
    const b = this.#byName.get(name);
    if (b === undefined) return LOST;
    for (const m of this.#state.members) {
      const promotion = m.promotion;
      if (promotion === null || promotion.kind !== 'covers' || promotion.hot !== name) continue;
      const cover = this.#byName.get(m.name);
      // A cover still warming up keeps the session for later: balanced this once, cookie kept.
      if (cover === undefined || !this.#serving.includes(cover)) return BUSY;
      return hasRoom(cover) ? { kind: 'backend', backend: cover } : BUSY;
    }
    if (!this.#serving.includes(b)) return LOST;
    return hasRoom(b) ? { kind: 'backend', backend: b } : BUSY;
  }

  #picked(b: B, via: 'serving' | 'spill' | 'standby'): Selection<B> {
    return { backend: b, via };
  }

  /** `b` takes a request or tunnel (right after `select`, or for a retry on the same backend). */
  acquire(b: B): void {
    b.inFlight++;
  }

  /** `b` finished one. Also for a backend that has left the pool and drains. */
  release(b: B): void {
    if (b.inFlight > 0) b.inFlight--;
  }

  /**
   * Serving capacity: the serving backends' effective weights over the configured hot weight,
   * at most 1. A ramping backend counts with its ramped weight: a pool whose warm has just been
   * promoted is not at full capacity yet. 0 for a pool without hot backends or weight.
   */
  capacity(now: number): number {
    let hot = 0;
    for (const m of this.#members) if (m.role === 'hot') hot += m.weight;
    if (hot === 0) return 0;
    let serving = 0;
    for (const b of this.#serving) serving += this.effectiveWeight(b, now);
    return Math.min(1, serving / hot);
  }

  /** Whether a standby warm could take spill traffic right now (for 503 reasons and metrics). */
  standbyHasRoom(): boolean {
    return this.#standby.some(hasRoom);
  }

  /** Feeds the failover reducer; the caller carries out the returned commands. */
  dispatch(event: FailoverEvent, now: number): Transition {
    return this.#apply(reduce(this.#state, event, now, this.#settings.policy));
  }

  /**
   * Reload: the new member list (config order). A member that is the same object as before
   * keeps its load and state (the shell keeps a backend whose name, address and role are
   * unchanged). A different object under an old name is a new backend replacing the old one:
   * it starts fresh (see `reconfigure` in failover.ts).
   */
  reconfigure(members: readonly B[], settings: PoolSettings, now: number): Transition {
    const renewed = new Set<string>();
    for (const m of members) {
      const old = this.#byName.get(m.name);
      if (old !== undefined && old !== m) renewed.add(m.name);
    }
    this.#settings = settings;
    this.#members = members;
    this.#byName = new Map(members.map((m) => [m.name, m]));
    return this.#apply(
      reconfigure(this.#state, members.map((m) => ({ name: m.name, role: m.role })), now, settings.policy, renewed),
    );
  }

  /**
   * Takes a state decided elsewhere — the primary's failover reducer, carried to a worker as a
   * snapshot (SPEC §9) — in place of this pool's own: a worker balances by it and decides nothing.
   */
  adopt(state: PoolState): void {
    this.#state = state;
    this.#rebuild();
  }

  #apply(transition: Transition): Transition {
    this.#state = transition.state;
    this.#rebuild();
    return transition;
  }

  #rebuild(): void {
    const serving: B[] = [];
    const standby: B[] = [];
    const joining: B[] = [];
    for (const m of this.#state.members) {
      const b = this.#byName.get(m.name);
      if (b === undefined) continue;
      if (m.servingSince !== null && b.servingSince !== m.servingSince) joining.push(b);
      b.servingSince = m.servingSince;
      b.ramp = m.ramp;
      if (isServing(m)) serving.push(b);
      else if (m.role === 'warm' && m.health === 'up' && m.admin === 'enabled' && m.promotion === null) standby.push(b);
    }
    this.#serving = serving;
    this.#standby = standby;
    // Backends that start serving take the next request (balancer.ts).
    if (joining.length > 0) this.#balancer.admit(joining, serving);
  }
}
