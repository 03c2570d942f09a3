/**
 * Types of the failover state machine (SPEC §3). Pure data: the reducer in failover.ts maps
 * (state, event, now, policy) → (state, commands, wakeAt); the shell carries the commands out.
 */
import type { Refusal } from '../errors.js';

export type Role = 'hot' | 'warm';
export type Health = 'unknown' | 'up' | 'down';
export type AdminState = 'enabled' | 'draining' | 'disabled';

/**
 * What a warm backend is doing:
 * - `standby`: not serving (may still take spill traffic and last-resort retries);
 * - `warming`: promoted, receiving warm-up requests, no live traffic yet;
 * - `serving`: promoted and taking live traffic.
 * Hot backends are always `standby` here; whether they serve is derived (see `isServing`).
 */
export type WarmPhase = 'standby' | 'warming' | 'serving';

/** Why a warm is promoted: to cover a missing hot backend, or by an operator (extra capacity). */
export type Promotion =
  | { readonly kind: 'covers'; readonly hot: string }
  | { readonly kind: 'operator' };

export interface MemberState {
  readonly name: string;
  readonly role: Role;
  readonly health: Health;
  readonly admin: AdminState;
  /** Warm only: set while promoted. */
  readonly promotion: Promotion | null;
  readonly phase: WarmPhase;
  /**
   * When the backend last started serving (ms, from the injected clock), or null when it is
   * not serving: non-null exactly when `isServing` is true. Drives the failback hold of a
   * covered hot backend and slow start.
   */
  readonly servingSince: number | null;
  /**
   * Whether slow start applies from `servingSince`. False for backends that were up from
   * the start (the startup round, or a first check after a reload adds them), and whenever
   * `servingSince` is null.
   */
  readonly ramp: boolean;
}

export interface PoolState {
  /** In config order: order decides which warm is promoted first. */
  readonly members: readonly MemberState[];
  /** Hot backends that are not serving and that no warm covers (degraded), in config order. */
  readonly uncovered: readonly string[];
}

export interface FailoverPolicy {
  readonly failback: 'auto' | 'manual';
  readonly failbackHoldMs: number;
  /** Whether promoted warms go through `warming` (a warm-up is configured) before serving. */
  readonly warmup: boolean;
}

export type FailoverEvent =
  /** A health transition decided by rise/fall (or passive detection). */
  | { readonly type: 'health'; readonly backend: string; readonly health: 'up' | 'down' }
  /** Operator or reload changed the admin state. */
  | { readonly type: 'admin'; readonly backend: string; readonly admin: AdminState }
  /** The shell finished the warm-up requests of a `warming` warm. */
  | { readonly type: 'warmed'; readonly backend: string }
  /** Operator promotes a standby warm as extra capacity. */
  | { readonly type: 'promote'; readonly backend: string }
  /** Operator demotes a warm: operator-promoted, or covering a hot that serves again. */
  | { readonly type: 'demote'; readonly backend: string }
  /** Time passed (a `wakeAt` deadline was reached). */
  | { readonly type: 'tick' };

export type FailoverCommand =
  /** `warm` now covers `hot` (or operator-promoted, hot = null). Log a `promoted` event. */
  | { readonly type: 'promoted'; readonly warm: string; readonly covers: string | null }
  /** Send the warm-up requests to `warm`, then dispatch `warmed`. */
  | { readonly type: 'warmup'; readonly warm: string }
  /** `warm` stops taking new work and drains back to standby. Log a `released` event. */
  | { readonly type: 'released'; readonly warm: string; readonly covered: string | null; readonly reason: ReleaseReason }
  /** Hot backends are missing with no warm left to cover them. Log a `degraded` event. */
  | { readonly type: 'degraded'; readonly uncovered: readonly string[] }
  /** Every missing hot backend is covered again (or none is missing). */
  | { readonly type: 'restored' };

export type ReleaseReason =
  /** auto failback: the covered hot backend served for failback_hold. */
  | 'failback'
  /** an operator demoted it. */
  | 'demoted'
  /** the warm went down or was drained/disabled: it cannot serve, a replacement is sought. */
  | 'failed'
  /** the covered backend left the pool (reload). */
  | 'orphaned';

export interface Transition {
  readonly state: PoolState;
  /**
   * In the order they happened: what the event itself did, then releases, then promotions
   * (each followed by its `warmup`), then at most one `degraded` / `restored`.
   */
  readonly commands: readonly FailoverCommand[];
  /** Earliest time at which a `tick` may change something (a failback hold ends), or null. */
  readonly wakeAt: number | null;
  /**
   * Why an operator action was refused (the admin API answers 409 with it), or null. A refused
   * event changes nothing: `state` is the input, no commands, and the shell carries nothing out.
   * The codes are listed in errors.ts (`REFUSAL_CODES`).
   */
  readonly refusal: Refusal | null;
}

