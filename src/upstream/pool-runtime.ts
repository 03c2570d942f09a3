/**
 * A pool at run time: the pure core Pool plus everything with side effects — the backends'
 * agents, the health checker, the failback timer, warm-ups and events. It carries out the
 * failover reducer's commands and is what the HTTP forwarder and TCP listener talk to.
 */
import http from 'node:http';
import type { PoolConfig } from '../config/schema.js';
import type { FailoverEvent, FailoverPolicy, Transition } from '../core/failover-types.js';
import { Pool, type PoolSettings, type Selection } from '../core/pool.js';
import type { EventLog } from '../control/events.js';
import type { ProxyError } from '../errors.js';
import type { ForwardPool } from '../forward/http.js';
import type { Logger } from '../log.js';
import { UpstreamBackend } from './backend.js';
import { HealthChecker } from './health-checker.js';
import type { ProbeResult } from './probes.js';

export interface PoolRuntimeDeps {
  readonly events: EventLog;
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

export class PoolRuntime implements ForwardPool {
  readonly name: string;
  #config: PoolConfig;
  readonly #deps: PoolRuntimeDeps;
  readonly #pool: Pool<UpstreamBackend>;
  readonly #checker: HealthChecker;
  readonly #logger: Logger;
  #wakeTimer: NodeJS.Timeout | null = null;
  readonly #drainTimers = new Set<NodeJS.Timeout>();
  /** Per warm, a generation bumped on release: a warm-up of an earlier promotion never makes it serve. */
  readonly #warmups = new Map<string, number>();
  #lastSpillEvent = -Infinity;
  #stopped = false;
  connectTimeoutMs: number;
  responseTimeoutMs: number;
  retries: number;
  maxReplayBody: number;
  retryAfterSeconds: number;
  tunnelIdleTimeoutMs: number;

  constructor(name: string, config: PoolConfig, deps: PoolRuntimeDeps) {
    this.name = name;
    this.#config = config;
    this.#deps = deps;
    this.#logger = deps.logger.child({ component: 'pool', pool: name });
    const backends = config.backends.map(
      (b) => new UpstreamBackend(name, b, config.health_check, config.passive.consecutive_failures),
    );
    this.#pool = new Pool(name, backends, poolSettings(config));
    this.#checker = new HealthChecker(config.health_check, (b, r) => this.#onCheck(b, r));
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

  /**
   * The startup round (SPEC §4): every backend checked once, then periodic checks begin.
   * Warms' results are applied first, so a hot found down is covered at once rather than
   * reported degraded for the instant before the warms' results arrive.
   */
  async start(): Promise<void> {
    const members = [...this.#pool.members].sort((a, b) => (a.role === b.role ? 0 : a.role === 'warm' ? -1 : 1));
    const results = await this.#checker.probeAll(members);
    if (this.#stopped) return;
    members.forEach((b, i) => this.#onCheck(b, results[i] as ProbeResult));
    for (const b of this.#pool.members) this.#checker.watch(b);
  }

  select(exclude: readonly UpstreamBackend[], retry: boolean): Selection<UpstreamBackend> {
    return this.#pool.select(this.#deps.now(), exclude, retry);
  }

  acquire(backend: UpstreamBackend): void {
    backend.inFlight++;
  }

  release(backend: UpstreamBackend): void {
    backend.inFlight--;
  }

  upstreamFailed(backend: UpstreamBackend, error: ProxyError): void {
    if (!error.passive) return;
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

  /** Closes every pooled upstream connection and tunnel (after stop, at exit). */
  closeConnections(reason: string): void {
    for (const b of this.#pool.members) b.closeAll(reason);
  }

  #onCheck(backend: UpstreamBackend, result: ProbeResult): void {
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

  /**
   * Warm-up (SPEC §3): the configured requests go to the promoted warm through its own agent —
   * so its pooled connections are open and its caches primed — before it takes live traffic.
   * One success is enough to serve; none means it is not fit to serve, and it is marked down.
   */
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
    let ok = 0;
    let lastDetail = '';
    for (let i = 0; i < warmup.requests; i++) {
      if (!current()) return;
      const detail = await warmupRequest(backend, warmup.path, this.#config.health_check.timeout);
      if (detail === null) ok++;
      else lastDetail = detail;
    }
    if (!current()) return;
    if (ok > 0) {
      this.dispatch({ type: 'warmed', backend: name });
      return;
    }
    backend.recordEvidence({ at: Date.now(), source: 'warmup', ok: false, detail: lastDetail });
    if (backend.health.forceDown() === 'changed') this.#healthChanged(backend, 'down', 'warmup');
  }
}

/** Resolves null on a non-5xx answer, else a short reason. */
function warmupRequest(backend: UpstreamBackend, path: string, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const req = http.request({
      host: backend.host,
      port: backend.port,
      path,
      agent: backend.agent,
      headers: { host: backend.address, 'user-agent': 'hotwarm-warmup' },
    });
    const timer = setTimeout(() => {
      req.destroy();
      resolve(`timeout after ${timeoutMs}ms`);
    }, timeoutMs);
    req.once('response', (res) => {
      res.on('error', () => undefined);
      res.resume();
      res.once('end', () => {
        clearTimeout(timer);
        const status = res.statusCode ?? 0;
        resolve(status < 500 ? null : String(status));
      });
    });
    req.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(err.code ?? err.message);
    });
    req.end();
  });
}

/** Seconds until a recovering backend could serve again: `rise` checks at `interval`. */
function retryAfter(config: PoolConfig): number {
  return Math.max(1, Math.ceil((config.health_check.interval * config.health_check.rise) / 1000));
}
