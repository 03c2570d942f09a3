/**
 * A pool at run time: the pure core Pool plus everything with side effects — the backends'
 * agents, the health checker, the failback timer, warm-ups and events. It carries out the
 * failover reducer's commands and is what the HTTP forwarder and TCP listener talk to.
 *
 * With workers (SPEC §9) the same class runs on both sides of one design. In the primary it is the
 * brain: checks, the reducer, warm-ups, events; every transition is published ({@link
 * PoolRuntimeDeps.onTransition}) and passive evidence arrives from the workers ({@link
 * PoolRuntime.reportPassive}). In a worker (`deps.brain` set) it decides nothing: it balances over
 * the state the primary published ({@link PoolRuntime.adopt}), reports passive evidence and
 * closes its own tunnels. With one process both sides are this one object.
 *
 * A reload reconfigures it in two steps: `prepareReload` builds and checks the backends the
 * new config adds (nothing changes yet, and it can be thrown away), `reconfigure` swaps the
 * new member list in synchronously. Backends that leave drain (retirement.ts).
 */
import type { BackendConfig, PoolConfig } from '../config/schema.js';
import type { FailoverEvent, FailoverPolicy, PoolState, Transition } from '../core/failover-types.js';
import { Pool, type PoolSettings, type Selection } from '../core/pool.js';
import type { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';
import { UpstreamBackend, evidenceJson } from './backend.js';
import type { Clock, Scheduled } from './clock.js';
import type { EventSink, TunnelPool } from './contracts.js';
import { HealthChecker } from './health-checker.js';
import { probe, type ProbeResult } from './probes.js';
import { Retirement } from './retirement.js';
import { warmUp } from './warmup.js';
import { StickyTokens } from './sticky.js';
import type { Affinity } from '../core/pool.js';

export interface PoolRuntimeDeps {
  readonly events: EventSink;
  readonly logger: Logger;
  /** Time and timers (clock.ts): the failover clock, checks, warm-ups, drains, wake-ups; injectable for tests. */
  readonly clock: Clock;
  /** Every active check result (metrics). */
  readonly onCheck?: (backend: UpstreamBackend, ok: boolean) => void;
  /**
   * The sticky-session key of a pool: the value of `secret_env`, or (none named) the key the
   * process drew at start, the same for every pool, reload and worker.
   */
  readonly stickyKey?: (secretEnv: string | undefined) => Buffer;
  /** Primary side: after every transition (the primary publishes a snapshot). */
  readonly onTransition?: (pool: PoolRuntime) => void;
  /** Primary side: a host-wide passive-failure streak on a backend opened or closed. */
  readonly onStreak?: (pool: string, backend: string, open: boolean) => void;
  /** Worker side: the primary's brain; set, this pool checks and decides nothing itself. */
  readonly brain?: RemoteBrain;
}

/** A worker's line to the primary (SPEC §9): where its passive evidence goes, at once. */
export interface RemoteBrain {
  report(pool: string, backend: string, key: string, ok: boolean, detail: string): void;
}

/** How long a worker avoids a backend that refused a connection, at most, before the primary's verdict. */
export const AVOID_REFUSED_MS = 1_000;

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
  #wakeTimer: Scheduled | null = null;
  readonly #drainTimers = new Set<Scheduled>();
  /** Backends that left the pool in a reload and still carry work. */
  readonly #retirement: Retirement;
  /** Per warm, a generation bumped on release: a warm-up of an earlier promotion never makes it serve. */
  readonly #warmups = new Map<string, number>();
  #lastSpillEvent = -Infinity;
  #stopped = false;
  /** Sticky-session tokens of the current members (null: the pool is not sticky). */
  sticky: StickyTokens | null = null;
  /** Worker side: backends that refused a connection, avoided until the next snapshot (or 1 s). */
  readonly #avoided = new Set<UpstreamBackend>();
  connectTimeoutMs = 0;
  responseTimeoutMs = 0;
  retries = 0;
  maxReplayBody = 0;
  retryAfterSeconds = 0;
  tunnelIdleTimeoutMs = 0;
  /** The pool's time (deps.clock), read by its tunnels. */
  readonly clock: Clock;

  constructor(name: string, config: PoolConfig, deps: PoolRuntimeDeps) {
    this.name = name;
    this.#config = config;
    this.#deps = deps;
    this.clock = deps.clock;
    this.#logger = deps.logger.child({ component: 'pool', pool: name });
    this.#pool = new Pool(name, config.backends.map((b) => this.#build(b, config)), poolSettings(config));
    this.#retirement = new Retirement(deps.clock);
    this.#checker = new HealthChecker(config.health_check, (b, r) => this.#onCheck(b, r), deps.clock);
    this.#applySettings(config);
    this.#buildSticky(config);
  }

  /** PROXY protocol towards the backends (read by the forwarders and the probes). */
  sendProxyProtocol: 'off' | 'v1' | 'v2' = 'off';

  #buildSticky(config: PoolConfig): void {
    this.sendProxyProtocol = config.send_proxy_protocol;
    for (const b of this.#pool.members) b.sendProxyProtocol = config.send_proxy_protocol;
    const sticky = config.sticky;
    const key = sticky === undefined ? undefined : this.#deps.stickyKey?.(sticky.secret_env);
    this.sticky = sticky === undefined || key === undefined ? null : new StickyTokens(key, sticky.cookie, this.name, this.#pool.members);
  }

  /** Where a session pinned by `token` goes (core/pool.ts `affinity`); a token of no member is lost. */
  affinity(token: string): Affinity<UpstreamBackend> {
    const name = this.sticky?.backendOf(token);
    if (name === undefined || this.#stopped) return { kind: 'lost' };
    return this.#pool.affinity(name);
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
    // A worker checks nothing: the primary's first round decides, and its snapshot follows.
    if (this.#deps.brain !== undefined) return Promise.resolve([]);
    return this.#checker.probeAll(this.#pool.members);
  }

  /** Applies the startup round's results and starts the periodic checks. */
  begin(results: readonly ProbeResult[]): void {
    if (this.#stopped || this.#deps.brain !== undefined) return;
    this.#observeFirst(this.#pool.members.map((backend, i) => ({ backend, result: results[i] as ProbeResult })));
    for (const b of this.#pool.members) this.#checker.watch(b);
  }

  /**
   * Reload, step 1: builds the backends of `config` that are not running already (new names,
   * or a new address or role under an old name) and checks each once with the new check, so
   * that they can serve from the moment the reload is applied. Changes nothing.
   */
  async prepareReload(config: PoolConfig): Promise<PoolReload> {
    const added = this.#added(config);
    const results = this.#deps.brain !== undefined ? added.map(() => NOT_CHECKED) : await Promise.all(added.map((b) => probe(b, config.health_check)));
    return { config, fresh: added.map((backend, i) => ({ backend, result: results[i] as ProbeResult })) };
  }

  /**
   * Worker side: the member list the primary resolved (a DNS answer changed), swapped in at
   * once. Nothing is checked here: the primary's snapshot that follows says who serves.
   */
  follow(config: PoolConfig): void {
    this.reconfigure({ config, fresh: this.#added(config).map((backend) => ({ backend, result: NOT_CHECKED })) });
  }

  /** The backends of `config` not running already (a new name, or a new address or role under an old one), built. */
  #added(config: PoolConfig): UpstreamBackend[] {
    return config.backends.filter((b) => !(this.#pool.member(b.name)?.matches(b) ?? false)).map((b) => this.#build(b, config));
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
      this.#avoided.delete(b);
      this.#retirement.retire(b, config.drain_timeout);
    }
    const transition = this.#pool.reconfigure(members, poolSettings(config), this.#deps.clock.now());
    this.#buildSticky(config);
    // A worker's own reduction only bridges the moment until the primary's snapshot arrives.
    if (this.#deps.brain !== undefined) return;
    this.#execute(transition);
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

  /** Serving capacity now, 0–1 (core/pool.ts `capacity`). */
  capacity(): number {
    return this.#pool.capacity(this.#deps.clock.now());
  }

  /** Backends that left the pool and still carry work. */
  get draining(): number {
    return this.#retirement.size;
  }

  select(exclude: readonly UpstreamBackend[], retry: boolean): Selection<UpstreamBackend> {
    // A stopped pool (removed by a reload) takes nothing new, not even a retry of its own requests.
    if (this.#stopped) return { backend: null, reason: 'none_serving' };
    const now = this.#deps.clock.now();
    if (this.#avoided.size > 0) {
      for (const b of this.#avoided) if (b.avoidUntil <= now) this.#avoided.delete(b);
      // Avoiding is a preference: when it leaves nothing, the refused backends are tried anyway.
      if (this.#avoided.size > 0) {
        const chosen = this.#pool.select(now, [...exclude, ...this.#avoided], retry);
        if (chosen.backend !== null) return chosen;
      }
    }
    return this.#pool.select(now, exclude, retry);
  }

  acquire(backend: UpstreamBackend): void {
    this.#pool.acquire(backend);
  }

  release(backend: UpstreamBackend): void {
    this.#pool.release(backend);
    this.#retirement.released(backend);
  }

  upstreamFailed(backend: UpstreamBackend, error: ProxyError): void {
    // A backend that left the pool has no health here any more: its failures decide nothing.
    if (!error.passive || !this.#isMember(backend)) return;
    const detail = `${error.code}: ${error.message}`;
    const brain = this.#deps.brain;
    if (brain === undefined) {
      this.#passiveFailure(backend, detail);
      return;
    }
    brain.report(this.name, backend.name, backend.key, false, detail);
    if (error.code === 'UPSTREAM_CONNECT_FAILED') {
      backend.avoidUntil = this.#deps.clock.now() + AVOID_REFUSED_MS;
      this.#avoided.add(backend);
    }
  }

  upstreamSucceeded(backend: UpstreamBackend): void {
    const brain = this.#deps.brain;
    if (brain === undefined) this.#passiveSuccess(backend);
    else if (backend.streakOpen) {
      // Only while the primary counts a streak: never one IPC message per request.
      backend.streakOpen = false;
      brain.report(this.name, backend.name, backend.key, true, '');
    }
  }

  /**
   * Primary side: passive evidence a worker reported. Failures of the whole host add up in the
   * order they arrive here; a success from any worker ends the streak. A report about a backend
   * that is no longer this one (removed, or renewed by a reload) is dropped.
   */
  reportPassive(name: string, key: string, ok: boolean, detail: string): void {
    const backend = this.#pool.member(name);
    if (backend === undefined || backend.key !== key || !this.#isMember(backend)) return;
    if (ok) this.#passiveSuccess(backend);
    else this.#passiveFailure(backend, detail);
  }

  #passiveFailure(backend: UpstreamBackend, detail: string): void {
    backend.recordEvidence({ at: this.#deps.clock.wallNow(), source: 'passive', ok: false, detail });
    const opened = backend.passive.streak === 0;
    if (backend.passive.failure()) {
      this.#deps.onStreak?.(this.name, backend.name, false);
      if (backend.health.forceDown() === 'changed') this.#healthChanged(backend, 'down', 'passive');
    } else if (opened && backend.passive.streak > 0) this.#deps.onStreak?.(this.name, backend.name, true);
  }

  #passiveSuccess(backend: UpstreamBackend): void {
    if (backend.passive.streak === 0) return;
    backend.passive.success();
    this.#deps.onStreak?.(this.name, backend.name, false);
  }

  /**
   * Worker side: the primary has counted this worker's failure report on `name`. Had it marked
   * the backend down, that snapshot arrived first; so avoiding it ends here, and the host keeps
   * counting its failures as one process would.
   */
  verdict(name: string): void {
    const backend = this.#pool.member(name);
    if (backend !== undefined) this.#avoided.delete(backend);
  }

  /** Worker side: the primary opened or closed a passive streak on `name`. */
  streak(name: string, open: boolean): void {
    const backend = this.#pool.member(name);
    if (backend !== undefined) backend.streakOpen = open;
  }

  /**
   * Worker side: the primary's state for this pool (SPEC §9), swapped in at once. `shiftMs`
   * turns the primary's clock into this process's (serving times drive slow start). A backend
   * the primary found down has its tunnels here closed; a released warm's drain here starts.
   */
  adopt(state: PoolState, shiftMs: number): void {
    const before = new Map(this.#pool.state.members.map((m) => [m.name, m]));
    const shifted: PoolState = Object.freeze({
      ...state,
      members: Object.freeze(state.members.map((m) => (m.servingSince === null ? m : Object.freeze({ ...m, servingSince: m.servingSince + shiftMs })))),
    });
    this.#pool.adopt(shifted);
    this.#avoided.clear();
    for (const m of shifted.members) {
      const old = before.get(m.name);
      const backend = this.#pool.member(m.name);
      if (old === undefined || backend === undefined) continue;
      if (old.health === 'up' && m.health === 'down') for (const tunnel of [...backend.tunnels]) tunnel.close('backend down');
      if (old.promotion !== null && m.promotion === null) this.#drainTunnels(m.name);
    }
  }

  noteRetry(failed: UpstreamBackend, error: ProxyError): void {
    // A log line, not a ring-buffer event: a failure storm must not push promotions out of /events.
    this.#logger.info({ pool: this.name, backend: failed.name, error: error.code }, 'retry');
  }

  noteSpill(backend: UpstreamBackend): void {
    const now = this.#deps.clock.now();
    if (now - this.#lastSpillEvent < SPILL_EVENT_INTERVAL_MS) return;
    this.#lastSpillEvent = now;
    this.#deps.events.emit('spill', { pool: this.name, backend: backend.name });
  }

  /**
   * Feeds an event to the failover reducer and carries out its commands. `accepted` runs before
   * them when the reducer did not refuse the event (the admin API records its audit event there,
   * ahead of the promotions it causes); a refused event carries nothing out.
   */
  dispatch(event: FailoverEvent, accepted?: () => void): Transition {
    const transition = this.#pool.dispatch(event, this.#deps.clock.now());
    if (transition.refusal !== null) return transition;
    accepted?.();
    this.#execute(transition);
    return transition;
  }

  stop(): void {
    this.#stopped = true;
    this.#checker.stop();
    this.#wakeTimer?.cancel();
    this.#wakeTimer = null;
    for (const timer of this.#drainTimers) timer.cancel();
    this.#drainTimers.clear();
  }

  /** Closes every pooled upstream connection and tunnel, draining backends' too (after stop, at exit). */
  closeConnections(reason: string): void {
    for (const b of this.#pool.members) b.closeAll(reason);
    this.#retirement.closeAll(reason);
  }

  #build(config: BackendConfig, pool: PoolConfig): UpstreamBackend {
    const backend = new UpstreamBackend(this.name, config, pool.health_check, pool.passive.consecutive_failures);
    backend.sendProxyProtocol = pool.send_proxy_protocol;
    return backend;
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
    backend.recordEvidence({ at: this.#deps.clock.wallNow(), source: 'check', ok: result.ok, detail: result.detail });
    this.#deps.onCheck?.(backend, result.ok);
    if (backend.health.observe(result.ok) === 'changed') {
      this.#healthChanged(backend, backend.health.health === 'up' ? 'up' : 'down', 'check');
    }
  }

  #healthChanged(backend: UpstreamBackend, health: 'up' | 'down', source: 'check' | 'passive' | 'warmup'): void {
    backend.downSince = health === 'down' ? this.#deps.clock.wallNow() : null;
    if (health === 'up') {
      backend.passive.success();
      this.#deps.events.emit('backend_up', { pool: this.name, backend: backend.name, role: backend.role });
    } else {
      this.#deps.events.emit('backend_down', {
        pool: this.name,
        backend: backend.name,
        role: backend.role,
        source,
        evidence: backend.evidence.map(evidenceJson),
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
    this.#deps.onTransition?.(this);
  }

  #scheduleWake(wakeAt: number | null): void {
    this.#wakeTimer?.cancel();
    this.#wakeTimer = null;
    if (wakeAt === null || this.#stopped) return;
    const delay = Math.max(0, wakeAt - this.#deps.clock.now());
    this.#wakeTimer = this.#deps.clock.schedule(delay, () => {
      this.#wakeTimer = null;
      this.dispatch({ type: 'tick' });
    });
  }

  /** A released warm keeps its tunnels for up to drain_timeout, unless it is promoted again. */
  #drainTunnels(name: string): void {
    const backend = this.#pool.member(name);
    if (backend === undefined || backend.tunnels.size === 0) return;
    const timer = this.#deps.clock.schedule(this.#config.drain_timeout, () => {
      this.#drainTimers.delete(timer);
      if (this.#pool.memberState(name)?.promotion !== null) return;
      for (const tunnel of [...backend.tunnels]) tunnel.close('drain timeout');
    });
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
    const outcome = await warmUp(backend, warmup, this.#config.health_check.timeout, current, this.#deps.clock);
    if (outcome === 'stale') return;
    if (outcome === 'warmed') {
      this.dispatch({ type: 'warmed', backend: name });
      return;
    }
    backend.recordEvidence({ at: this.#deps.clock.wallNow(), source: 'warmup', ok: false, detail: outcome.failed });
    if (backend.health.forceDown() === 'changed') this.#healthChanged(backend, 'down', 'warmup');
  }
}

/** What a worker puts where a check result would be: it checks nothing (the primary does). */
const NOT_CHECKED: ProbeResult = { ok: false, detail: 'not checked in a worker', durationMs: 0 };

/** Seconds until a recovering backend could serve again: `rise` checks at `interval`. */
function retryAfter(config: PoolConfig): number {
  return Math.max(1, Math.ceil((config.health_check.interval * config.health_check.rise) / 1000));
}
