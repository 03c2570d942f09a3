/**
 * What the admin API shows and asks of the proxy. The API depends on {@link AdminHost} only, so
 * it can be tested and changed without knowing how the proxy is put together.
 */
import type { AdminState, Health, Role, WarmPhase } from '../core/failover-types.js';
import type { RefusalCode } from '../errors.js';
import type { ReloadResult } from './reload.js';
import type { TrafficSeries } from './traffic-history.js';

/** The result of a reload, as control/reload.ts defines it. */
export type { ReloadResult };

/** Runtime control actions: `POST /pools/{pool}/backends/{name}/{action}`. */
export const CONTROL_ACTIONS = ['drain', 'enable', 'disable', 'promote', 'demote'] as const;
export type ControlAction = (typeof CONTROL_ACTIONS)[number];

/** One health-check result or passive error, as kept by the backend. */
export interface EvidenceStatus {
  /** ISO time. */
  readonly at: string;
  readonly source: 'check' | 'passive' | 'warmup';
  readonly ok: boolean;
  readonly detail: string;
}

/**
 * One word for a person: what the backend is doing now. An admin state other than `enabled`
 * wins over health, then health, then serving / warming / standby.
 */
export type BackendState = 'serving' | 'warming' | 'standby' | 'down' | 'unknown' | 'draining' | 'disabled';

export interface BackendStatus {
  readonly name: string;
  /** `host:port`: the admin API is for operators, so it shows addresses (client errors never do). */
  readonly address: string;
  readonly role: Role;
  readonly state: BackendState;
  readonly health: Health;
  readonly admin: AdminState;
  readonly serving: boolean;
  /** HTTP requests in progress plus open tunnels. */
  readonly in_flight: number;
  /** 0 = unlimited. */
  readonly max_conns: number;
  readonly weight: number;
  /** The weight scaled by slow start, rounded to 2 decimals. */
  readonly effective_weight: number;
  /** Warm: the hot backend it stands in for. */
  readonly covers: string | null;
  /** Hot: the warm backend standing in for it. */
  readonly covered_by: string | null;
  /** Warm: why it is promoted (`covers` a hot, or an `operator` promoted it), else null. */
  readonly promotion: 'covers' | 'operator' | null;
  /**
   * Warm only (null on a hot backend): `standby` (not promoted; takes only spill and last-resort
   * retries), `warming` (promoted, receiving warm-up requests), `serving` (promoted, live traffic).
   */
  readonly phase: WarmPhase | null;
  /** How long it has served continuously, or null when it does not serve. */
  readonly serving_for_ms: number | null;
  /** When it was marked down (ISO 8601), or null when it is not down. */
  readonly down_since: string | null;
  /**
   * Hot, serving again while a warm still covers it (automatic failback): how much of the
   * failback hold is still to run before the warm is released; else null.
   */
  readonly failback_hold_remaining_ms: number | null;
  readonly last_check: EvidenceStatus | null;
  /** The latest check results and passive errors, oldest first. */
  readonly evidence: readonly EvidenceStatus[];
}

export interface PoolStatus {
  readonly name: string;
  /** In config order; with the last minutes of traffic (the dashboard's charts). */
  readonly backends: readonly (BackendStatus & { readonly traffic: TrafficSeries })[];
  /** Hot backends that are not serving and that no warm covers (degraded). */
  readonly uncovered: readonly string[];
  /**
   * Serving capacity, percent (0–100, whole): the serving backends' effective weights (slow
   * start included) over the configured hot backends' weights, capped at 100. A warm still
   * ramping in is not full capacity yet.
   */
  readonly capacity_percent: number;
}

export interface ListenerStatus {
  readonly name: string;
  readonly protocol: string;
  /** `host:port`, or null when not listening. */
  readonly address: string | null;
  readonly open_connections: number;
}

/** One worker process (SPEC §9); with one process, that process is worker 1. */
export interface WorkerStatus {
  /** 1..N, kept by a replacement. */
  readonly id: number;
  readonly pid: number | null;
  /** ISO time the current process started. */
  readonly up_since: string;
  readonly state: 'starting' | 'running' | 'stopping' | 'restarting';
  readonly rss_bytes: number;
  readonly in_flight: number;
  /** Requests and tunnels answered by this worker id, replacements included. */
  readonly requests: number;
  /** Times this worker id died and was replaced. */
  readonly restarts: number;
  /** How long the last snapshot took from the primary's publish to this worker's apply (ms), if any. */
  readonly last_apply_ms: number | null;
}

/** `GET /status` without the version fields, which the host reports on their own. */
export interface StatusSnapshot {
  readonly pools: readonly PoolStatus[];
  readonly listeners: readonly ListenerStatus[];
  readonly workers: readonly WorkerStatus[];
}

export type ControlOutcome =
  | { readonly ok: true; readonly backend: BackendStatus }
  /** 404: no such pool or backend; 409: the action makes no sense in the backend's state (`code` says which refusal). */
  | { readonly ok: false; readonly status: 404 | 409; readonly error: string; readonly code?: RefusalCode };

/** Everything the admin API needs of the proxy. */
export interface AdminHost {
  snapshot(): StatusSnapshot;
  /** Carries out an operator action; `client` is who asked (recorded in the `admin` event). */
  control(pool: string, backend: string, action: ControlAction, client: string): ControlOutcome;
  /** Same as SIGHUP: re-reads the config file. */
  reload(): Promise<ReloadResult>;
  /** Brings host-wide figures up to date before a read (workers report on request); optional. */
  refresh?(): Promise<void>;
  /** The running config version (1 at startup, +1 per applied reload). */
  readonly version: number;
  readonly lastReload: ReloadResult | null;
  /** Readiness (`GET /readyz`): listeners bound and the first round of checks done, not shutting down. */
  readonly ready: boolean;
}
