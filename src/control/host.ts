/**
 * The admin API's view of a running proxy ({@link AdminHost}): status snapshots built from the
 * pools' own state, and operator actions fed to the pools' failover reducers.
 */
import type { AddressInfo } from 'node:net';
import type { FailoverEvent, MemberState } from '../core/failover-types.js';
import { evidenceJson, type Evidence, type UpstreamBackend } from '../upstream/backend.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import type {
  AdminHost,
  BackendState,
  BackendStatus,
  ControlAction,
  ControlOutcome,
  EvidenceStatus,
  ListenerStatus,
  PoolStatus,
  ReloadResult,
  StatusSnapshot,
  WorkerStatus,
} from './admin-types.js';
import type { EventLog } from './events.js';
import type { TrafficSeries } from './traffic-history.js';

/** What a listener shows in `/status` (HTTP and TCP listeners alike). */
export interface ListenerView {
  readonly name: string;
  readonly config: { readonly protocol: string };
  readonly openConnections: number;
  address(): AddressInfo | null;
}

/** The parts of `Proxy` the host reads; `Proxy` satisfies it structurally. */
export interface ProxyView {
  readonly pools: ReadonlyMap<string, PoolRuntime>;
  readonly listeners: ReadonlyMap<string, ListenerView>;
  readonly events: EventLog;
  readonly version: number;
  readonly lastReload: ReloadResult | null;
  readonly ready: boolean;
  reload(): Promise<ReloadResult>;
  traffic(pool: string, backend: string): TrafficSeries;
  /** The worker processes (SPEC §9); with one process, that process. */
  workers(): readonly WorkerStatus[];
  /** With workers: asks each for its figures now (bounded wait). */
  refresh?(): Promise<void>;
}

export class ProxyAdminHost implements AdminHost {
  readonly #proxy: ProxyView;
  readonly #now: () => number;

  /** `now`: the proxy's monotonic failover clock (slow start and serving times are on it). */
  constructor(proxy: ProxyView, now: () => number) {
    this.#proxy = proxy;
    this.#now = now;
  }

  get version(): number {
    return this.#proxy.version;
  }

  get lastReload(): ReloadResult | null {
    return this.#proxy.lastReload;
  }

  get ready(): boolean {
    return this.#proxy.ready;
  }

  reload(): Promise<ReloadResult> {
    return this.#proxy.reload();
  }

  async refresh(): Promise<void> {
    await this.#proxy.refresh?.();
  }

  snapshot(): StatusSnapshot {
    const now = this.#now();
    return {
      pools: [...this.#proxy.pools.values()].map((pool) => poolStatus(pool, now, (b) => this.#proxy.traffic(pool.name, b))),
      listeners: [...this.#proxy.listeners.values()].map(listenerStatus),
      workers: this.#proxy.workers(),
    };
  }

  control(poolName: string, backendName: string, action: ControlAction, client: string): ControlOutcome {
    const pool = this.#proxy.pools.get(poolName);
    if (pool === undefined) return { ok: false, status: 404, error: `unknown pool "${poolName}"` };
    if (pool.core.member(backendName) === undefined) {
      return { ok: false, status: 404, error: `pool "${poolName}" has no backend "${backendName}"` };
    }
    // A refused action changes nothing and leaves no audit event; an accepted one is recorded
    // before the promotions it causes.
    const transition = pool.dispatch(failoverEvent(action, backendName), () => {
      this.#proxy.events.emit('admin', { pool: poolName, backend: backendName, action, client });
    });
    if (transition.refusal !== null) return { ok: false, status: 409, error: transition.refusal.message, code: transition.refusal.code };
    const backend = pool.core.member(backendName) as UpstreamBackend;
    return { ok: true, backend: backendStatus(pool, backend, this.#now()) };
  }
}

function failoverEvent(action: ControlAction, backend: string): FailoverEvent {
  switch (action) {
    case 'drain':
      return { type: 'admin', backend, admin: 'draining' };
    case 'enable':
      return { type: 'admin', backend, admin: 'enabled' };
    case 'disable':
      return { type: 'admin', backend, admin: 'disabled' };
    case 'promote':
      return { type: 'promote', backend };
    case 'demote':
      return { type: 'demote', backend };
  }
}

function poolStatus(pool: PoolRuntime, now: number, traffic: (backend: string) => TrafficSeries): PoolStatus {
  return {
    name: pool.name,
    backends: pool.backends.map((b) => ({ ...backendStatus(pool, b, now), traffic: traffic(b.name) })),
    uncovered: [...pool.core.state.uncovered],
    // Floor, so 100 means the whole configured capacity, not 99.6% rounded up.
    capacity_percent: Math.floor(pool.core.capacity(now) * 100 + 1e-9),
  };
}

/** One backend as `/status` and the control endpoints show it. */
export function backendStatus(pool: PoolRuntime, b: UpstreamBackend, now: number): BackendStatus {
  const core = pool.core;
  const m = core.memberState(b.name) as MemberState;
  const promotion = m.promotion;
  const coveredBy = core.state.members.find((w) => w.promotion?.kind === 'covers' && w.promotion.hot === b.name);
  const serving = m.servingSince !== null;
  let lastCheck: Evidence | undefined;
  for (const e of b.evidence) if (e.source === 'check') lastCheck = e;
  return {
    name: b.name,
    address: b.address,
    role: b.role,
    state: stateOf(m, serving),
    health: m.health,
    admin: m.admin,
    serving,
    in_flight: b.inFlight,
    max_conns: b.maxConns,
    weight: b.weight,
    // What the balancer would use now: 0 for a backend that can take nothing (down, draining, disabled).
    effective_weight: m.health === 'up' && m.admin === 'enabled' ? Math.round(core.effectiveWeight(b, now) * 100) / 100 : 0,
    covers: promotion?.kind === 'covers' ? promotion.hot : null,
    covered_by: coveredBy?.name ?? null,
    promotion: promotion?.kind ?? null,
    phase: b.role === 'warm' ? m.phase : null,
    serving_for_ms: m.servingSince === null ? null : Math.max(0, Math.round(now - m.servingSince)),
    down_since: m.health === 'down' && b.downSince !== null ? new Date(b.downSince).toISOString() : null,
    failback_hold_remaining_ms: holdRemaining(pool, m, coveredBy !== undefined, now),
    last_check: lastCheck === undefined ? null : evidenceStatus(lastCheck),
    evidence: b.evidence.map(evidenceStatus),
  };
}

/** The failback hold still to run on a hot backend that serves again while a warm covers it. */
function holdRemaining(pool: PoolRuntime, m: MemberState, covered: boolean, now: number): number | null {
  const policy = pool.core.settings.policy;
  if (!covered || m.role !== 'hot' || m.servingSince === null || policy.failback !== 'auto') return null;
  return Math.max(0, Math.round(m.servingSince + policy.failbackHoldMs - now));
}

function stateOf(m: MemberState, serving: boolean): BackendState {
  if (m.admin !== 'enabled') return m.admin;
  if (m.health !== 'up') return m.health;
  if (serving) return 'serving';
  return m.phase === 'warming' ? 'warming' : 'standby';
}

function evidenceStatus(e: Evidence): EvidenceStatus {
  return evidenceJson(e);
}

function listenerStatus(l: ListenerView): ListenerStatus {
  const a = l.address();
  const address = a === null ? null : a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  return { name: l.name, protocol: l.config.protocol, address, open_connections: l.openConnections };
}
