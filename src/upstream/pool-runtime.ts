/**
 * A pool at run time: the pure core Pool plus everything with side effects — the backends'
 * agents, the health checker, the failback timer, warm-ups and events. It carries out the
 * failover reducer's commands and is what the HTTP forwarder and TCP listener talk to.
 *
 * A reload reconfigures it in two steps: `prepareReload` builds and checks the backends the
 * new config adds (nothing changes yet, and it can be thrown away), `reconfigure` swaps the
 * new member list in synchronously. Backends that leave drain (retirement.ts).
 */
import type { BackendConfig, PoolConfig } from '../config/schema.js';
import type { FailoverEvent, FailoverPolicy, Transition } from '../core/failover-types.js';
import { Pool, type PoolSettings, type Selection } from '../core/pool.js';
import type { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { UpstreamBackend } from './backend.js';
import type { EventSink, TunnelPool } from './contracts.js';
import { HealthChecker } from './health-checker.js';
import { probe, type ProbeResult } from './probes.js';
import { Retirement } from './retirement.js';
import { warmUp } from './warmup.js';

export interface PoolRuntimeDeps {
  readonly events: EventSink;
  readonly logger: Logger;
  /** Monotonic milliseconds (the failover clock). */
  readonly now: () => number;
  /** Every active check result (metrics). */
  readonly onCheck?: (backend: UpstreamBackend, ok: boolean) => void;
}

/** At most one `spill` event per pool per this many ms: spill is a state, not a per-request log. */
const SPILL_EVENT_INTERVAL_MS = 1_000;

export function poolSettings(config: PoolConfig): PoolSettings {
  const policy: FailoverPolicy = {
    failback: config.failover.failback,
    failbackHoldMs: config.failover.failback_hold,
    warmup: config.failover.warmup !== undefined,
  };
  return { policy, slowStartMs: config.failover.slow_start, spill: config.failover.spill };
}

/** A reload of one pool, prepared: the new config and the backends it adds, each checked once. */
export interface PoolReload {
  readonly config: PoolConfig;
  readonly fresh: readonly { readonly backend: UpstreamBackend; readonly result: ProbeResult }[];
}

export class PoolRuntime implements TunnelPool {
  readonly name: string;
  #config: PoolConfig;
  readonly #deps: PoolRuntimeDeps;
  readonly #pool: Pool<UpstreamBackend>;
  readonly #checker: HealthChecker;
  readonly #logger: Logger;
  #wakeTimer: NodeJS.Timeout | null = null;
  readonly #drainTimers = new Set<NodeJS.Timeout>();
  /** Backends that left the pool in a reload and still carry work. */
  readonly #retirement = new Retirement();
  /** Per warm, a generation bumped on release: a warm-up of an earlier promotion never makes it serve. */
  readonly #warmups = new Map<string, number>();
  #lastSpillEvent = -Infinity;
  #stopped = false;
  connectTimeoutMs = 0;
  responseTimeoutMs = 0;
  retries = 0;
  maxReplayBody = 0;
  retryAfterSeconds = 0;
  tunnelIdleTimeoutMs = 0;

  constructor(name: string, config: PoolConfig, deps: PoolRuntimeDeps) {
    this.name = name;
    this.#config = config;
    this.#deps = deps;
    this.#logger = deps.logger.child({ component: 'pool', pool: name });
    this.#pool = new Pool(name, config.backends.map((b) => this.#build(b, config)), poolSettings(config));
    this.#checker = new HealthChecker(config.health_check, (b, r) => this.#onCheck(b, r));
    this.#applySettings(config);
  }

  /** What the forwarder reads per attempt: a reload's new timeouts apply to the next attempt. */
  #applySettings(config: PoolConfig): void {
    this.connectTimeoutMs = config.connect_timeout;
    this.responseTimeoutMs = config.response_timeout;
    this.retries = config.retries;
    this.maxReplayBody = config.max_replay_body;
    this.retryAfterSeconds = retryAfter(config);
    this.tunnelIdleTimeoutMs = config.tunnel_idle_timeout;
  }

  get config(): PoolConfig {
    return this.#config;
  }

  get core(): Pool<UpstreamBackend> {
    return this.#pool;
  }

  get backends(): readonly UpstreamBackend[] {
    return this.#pool.members;
  }

  /** The startup round (SPEC §4): every backend checked once, then periodic checks begin. */
  async start(): Promise<void> {
    this.begin(await this.firstRound());
  }

  /** The startup round's checks, in member order; nothing is observed yet (a reload may still discard the pool). */
  firstRound(): Promise<ProbeResult[]> {
    return this.#checker.probeAll(this.#pool.members);
  }

  /** Applies the startup round's results and starts the periodic checks. */
  begin(results: readonly ProbeResult[]): void {
    if (this.#stopped) return;
    this.#observeFirst(this.#pool.members.map((backend, i) => ({ backend, result: results[i] as ProbeResult })));
    for (const b of this.#pool.members) this.#checker.watch(b);
  }

  /**
   * Reload, step 1: builds the backends of `config` that are not running already (new names,
   * or a new address or role under an old name) and checks each once with the new check, so
   * that they can serve from the moment the reload is applied. Changes nothing.
   */
  async prepareReload(config: PoolConfig): Promise<PoolReload> {
    const added = config.backends.filter((b) => !(this.#pool.member(b.name)?.matches(b) ?? false)).map((b) => this.#build(b, config));
    const results = await Promise.all(added.map((b) => probe(b, config.health_check)));
    return { config, fresh: added.map((backend, i) => ({ backend, result: results[i] as ProbeResult })) };
  }

  /** A prepared reload that will not be applied. */
  discard(reload: PoolReload): void {
    for (const { backend } of reload.fresh) backend.closeAll('reload rolled back');
  }

  /**
   * Reload, step 2, synchronous. Kept backends are the same objects: health, in-flight counts,
   * role, promotion pairs and slow-start progress stay; weights, limits and thresholds apply
   * at once. New backends take their step-1 check result. Backends that left stop being
   * checked and drain.
   */
  reconfigure(reload: PoolReload): void {
    const { config } = reload;
    const fresh = new Map(reload.fresh.map((f) => [f.backend.name, f.backend]));
    const members = config.backends.map((b) => {
      const created = fresh.get(b.name);
      if (created !== undefined) return created;
      // prepareReload built every backend that does not match a running one.
      const kept = this.#pool.member(b.name) as UpstreamBackend;
      kept.update(b, config.health_check, config.passive.consecutive_failures);
      return kept;
    });
    const staying = new Set(members);
    const leaving = this.#pool.members.filter((b) => !staying.has(b));
    this.#config = config;
    this.#applySettings(config);
    this.#checker.reconfigure(config.health_check);
    for (const b of leaving) {
      this.#checker.unwatch(b);
      this.#retirement.retire(b, config.drain_timeout);
    }
    this.#execute(this.#pool.reconfigure(members, poolSettings(config), this.#deps.now()));
    this.#observeFirst(reload.fresh);
    for (const { backend } of reload.fresh) this.#checker.watch(backend);
  }

  /**
   * Reload removed the whole pool: checks and timers stop and every backend drains like a
   * removed one (up to the pool's drain_timeout). Resolves once all are closed.
   */
  retire(): Promise<void> {
    this.stop();
    for (const b of this.#pool.members) this.#retirement.retire(b, this.#config.drain_timeout);
    return this.#retirement.drained();
  }

  /** Backends that left the pool and still carry work. */
  get draining(): number {
    return this.#retirement.size;
  }

  select(exclude: readonly UpstreamBackend[], retry: boolean): Selection<UpstreamBackend> {
    // A stopped pool (removed by a reload) takes nothing new, not even a retry of its own requests.
    if (this.#stopped) return { backend: null, reason: 'none_serving' };
    return this.#pool.select(this.#deps.now(), exclude, retry);
  }

  acquire(backend: UpstreamBackend): void {
    backend.inFlight++;
  }

  release(backend: UpstreamBackend): void {
    backend.inFlight--;
    this.#retirement.released(backend);
  }

  upstreamFailed(backend: UpstreamBackend, error: ProxyError): void {
    // A backend that left the pool has no health here any more: its failures decide nothing.
    if (!error.passive || !this.#isMember(backend)) return;
    backend.recordEvidence({ at: Date.now(), source: 'passive', ok: false, detail: `${error.code}: ${error.message}` });
    if (backend.passive.failure() && backend.health.forceDown() === 'changed') this.#healthChanged(backend, 'down', 'passive');
  }

  upstreamSucceeded(backend: UpstreamBackend): void {
    backend.passive.success();
  }

  noteRetry(failed: UpstreamBackend, error: ProxyError): void {
    // A log line, not a ring-buffer event: a failure storm must not push promotions out of /events.
    this.#logger.info({ pool: this.name, backend: failed.name, error: error.code }, 'retry');
  }

  noteSpill(backend: UpstreamBackend): void {
    const now = this.#deps.now();
    if (now - this.#lastSpillEvent < SPILL_EVENT_INTERVAL_MS) return;
    this.#lastSpillEvent = now;
    this.#deps.events.emit('spill', { pool: this.name, backend: backend.name });
  }

  /** Feeds an event to the failover reducer and carries out its commands. */
  dispatch(event: FailoverEvent): Transition {
    const transition = this.#pool.dispatch(event, this.#deps.now());
    this.#execute(transition);
    return transition;
  }

  stop(): void {
    this.#stopped = true;
    this.#checker.stop();
    if (this.#wakeTimer !== null) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = null;
    for (const timer of this.#drainTimers) clearTimeout(timer);
    this.#drainTimers.clear();
  }

  /** Closes every pooled upstream connection and tunnel, draining backends' too (after stop, at exit). */
  closeConnections(reason: string): void {
    for (const b of this.#pool.members) b.closeAll(reason);
    this.#retirement.closeAll(reason);
  }

  #build(config: BackendConfig, pool: PoolConfig): UpstreamBackend {
    return new UpstreamBackend(this.name, config, pool.health_check, pool.passive.consecutive_failures);
  }

  /** Whether `backend` is (still) this running pool's own: not drained away by a reload. */
  #isMember(backend: UpstreamBackend): boolean {
    return !this.#stopped && this.#pool.member(backend.name) === backend;
  }

  /**
   * First check results (startup round, or backends added by a reload). Warms' results are
   * applied first, so a hot found down is covered at once rather than reported degraded for
   * the instant before the warms' results arrive.
   */
  #observeFirst(checked: readonly { readonly backend: UpstreamBackend; readonly result: ProbeResult }[]): void {
    const warmsFirst = [...checked].sort((a, b) => (a.backend.role === b.backend.role ? 0 : a.backend.role === 'warm' ? -1 : 1));
    for (const { backend, result } of warmsFirst) this.#onCheck(backend, result);
  }

  #onCheck(backend: UpstreamBackend, result: ProbeResult): void {
    if (!this.#isMember(backend)) return;
    backend.recordEvidence({ at: Date.now(), source: 'check', ok: result.ok, detail: result.detail });
    this.#deps.onCheck?.(backend, result.ok);
    if (backend.health.observe(result.ok) === 'changed') {
      this.#healthChanged(backend, backend.health.health === 'up' ? 'up' : 'down', 'check');
    }
  }

  #healthChanged(backend: UpstreamBackend, health: 'up' | 'down', source: 'check' | 'passive' | 'warmup'): void {
    if (health === 'up') {
      backend.passive.success();
      this.#deps.events.emit('backend_up', { pool: this.name, backend: backend.name, role: backend.role });
    } else {
      this.#deps.events.emit('backend_down', {
        pool: this.name,
        backend: backend.name,
        role: backend.role,
        source,
        evidence: backend.evidence.slice(),
      });
      // A dead backend's tunnels cannot carry anything more: close them so clients notice now.
      for (const tunnel of [...backend.tunnels]) tunnel.close('backend down');
    }
    this.dispatch({ type: 'health', backend: backend.name, health });
  }

  #execute(transition: Transition): void {
    for (const command of transition.commands) {
      switch (command.type) {
        case 'promoted':
          this.#deps.events.emit('promoted', { pool: this.name, backend: command.warm, covers: command.covers });
          break;
        case 'warmup':
          void this.#warmUp(command.warm);
          break;
        case 'released': {
          // A warm-up still running for this warm belongs to the promotion just ended.
          this.#warmups.set(command.warm, (this.#warmups.get(command.warm) ?? 0) + 1);
          this.#deps.events.emit('released', { pool: this.name, backend: command.warm, covered: command.covered, reason: command.reason });
          this.#drainTunnels(command.warm);
          break;
        }
        case 'degraded':
          this.#deps.events.emit('degraded', { pool: this.name, uncovered: command.uncovered });
          break;
        case 'restored':
          this.#deps.events.emit('restored', { pool: this.name });
          break;
      }
    }
    this.#scheduleWake(transition.wakeAt);
  }

  #scheduleWake(wakeAt: number | null): void {
    if (this.#wakeTimer !== null) clearTimeout(this.#wakeTimer);
    this.#wakeTimer = null;
    if (wakeAt === null || this.#stopped) return;
    const delay = Math.max(0, wakeAt - this.#deps.now());
    this.#wakeTimer = setTimeout(() => {
      this.#wakeTimer = null;
      this.dispatch({ type: 'tick' });
    }, delay);
  }

  /** A released warm keeps its tunnels for up to drain_timeout, unless it is promoted again. */
  #drainTunnels(name: string): void {
    const backend = this.#pool.member(name);
    if (backend === undefined || backend.tunnels.size === 0) return;
    const timer = setTimeout(() => {
      this.#drainTimers.delete(timer);
      if (this.#pool.memberState(name)?.promotion !== null) return;
      for (const tunnel of [...backend.tunnels]) tunnel.close('drain timeout');
    }, this.#config.drain_timeout);
    this.#drainTimers.add(timer);
  }

  /** Warm-up (SPEC §3, warmup.ts): one success and the warm serves; none and it is marked down. */
  async #warmUp(name: string): Promise<void> {
    const backend = this.#pool.member(name);
    const warmup = this.#config.failover.warmup;
    if (backend === undefined || warmup === undefined) return;
    const generation = this.#warmups.get(name) ?? 0;
    const current = (): boolean =>
      !this.#stopped &&
      this.#pool.member(name) === backend &&
      (this.#warmups.get(name) ?? 0) === generation &&
      this.#pool.memberState(name)?.phase === 'warming';
    const outcome = await warmUp(backend, warmup, this.#config.health_check.timeout, current);
    if (outcome === 'stale') return;
    if (outcome === 'warmed') {
      this.dispatch({ type: 'warmed', backend: name });
      return;
    }
    backend.recordEvidence({ at: Date.now(), source: 'warmup', ok: false, detail: outcome.failed });
    if (backend.health.forceDown() === 'changed') this.#healthChanged(backend, 'down', 'warmup');
  }
}

/** Seconds until a recovering backend could serve again: `rise` checks at `interval`. */
function retryAfter(config: PoolConfig): number {
  return Math.max(1, Math.ceil((config.health_check.interval * config.health_check.rise) / 1000));
}
