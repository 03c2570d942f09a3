/**
 * The primary of `workers: N` (SPEC §9): the control plane, and nothing else. It loads and
 * reloads the config, runs the health checks and warm-ups, owns the one failover state machine
 * per pool (the same PoolRuntime a single process runs), serves the admin API, metrics and
 * events, and takes the signals. It never proxies: the workers (worker.ts) accept and forward.
 *
 * This file is the composition: the worker processes are supervisor.ts's (slot.ts: one worker
 * id), the decisions go out through fan-out.ts, and the host-wide view is host-view.ts's.
 * Every decision goes to the workers as one versioned snapshot (coalesced per tick);
 * passive evidence comes back at once and counters every 100 ms (protocol.ts). Listening sockets
 * are node:cluster round-robin handles held here, so a worker that dies loses no queued
 * connection; it is replaced under the same id, with backoff when it keeps dying.
 */
import type { AddressInfo } from 'node:net';
import type { ReloadPlan } from '../config/diff.js';
import type { Config, PoolConfig } from '../config/schema.js';
import { AdminServer } from '../control/admin.js';
import type { WorkerStatus } from '../control/admin-types.js';
import { EventLog, type EventType } from '../control/events.js';
import { ProxyAdminHost, type ListenerView } from '../control/host.js';
import { Metrics } from '../control/metrics.js';
import { TrafficHistory, type TrafficSeries } from '../control/traffic-history.js';
import { Reloader, type ReloadCounts, type ReloadResult, type ReloadTarget } from '../control/reload.js';
import { ProxyError, ReloadError, type ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';
import { systemClock } from '../upstream/clock.js';
import { DnsMembers } from '../upstream/dns-members.js';
import { PoolRuntime } from '../upstream/pool-runtime.js';
import { abandonPools, commitPools, planPools, preparePools, type PreparedPools } from '../upstream/pool-set-reload.js';
import { randomStickyKey } from '../upstream/sticky.js';
import { DecisionFanOut } from './fan-out.js';
import { listenerViews, parseAddress, refreshReports, sumInFlight, workerGauges, workerStatuses } from './host-view.js';
import type { BoundAddress, FromWorker } from './protocol.js';
import { Slot } from './slot.js';
import { WorkerSupervisor, type PrimaryState } from './supervisor.js';

export interface PrimaryOptions {
  readonly logger: Logger;
  readonly workers: number;
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly adminToken?: string | null;
  /** The worker entry script; default: dist/src/worker-main.js beside this build. */
  readonly workerEntry?: string;
  /**
   * Workers' stdout is piped into this primary's logger destination, line by line, instead of
   * shared (tests, whose stdout is their report). Default: workers write to the shared stdout.
   */
  readonly pipeWorkerOutput?: boolean;
}

/** At most one `spill` event per pool per this many ms, host-wide (pool-runtime.ts does the same per process). */
const SPILL_EVENT_INTERVAL_MS = 1_000;

interface PreparedReload {
  readonly config: Config;
  readonly plan: ReloadPlan;
  readonly gen: number;
  readonly pools: PreparedPools;
  readonly slots: readonly Slot[];
  readonly addresses: ReadonlyMap<string, string>;
  /** Ends the reload's turn on the pools' member lists (dns-members.ts `take`). */
  readonly release: () => void;
}

export class Primary implements ReloadTarget<PreparedReload> {
  #config: Config;
  readonly #logger: Logger;
  readonly #options: PrimaryOptions;
  readonly events: EventLog;
  readonly #metrics: Metrics;
  /** The dashboard's per-backend charts, from the workers' counts summed here. */
  readonly #traffic: TrafficHistory;
  readonly #reloader: Reloader<PreparedReload>;
  readonly #slots: Slot[];
  readonly #fanOut: DecisionFanOut;
  readonly #supervisor: WorkerSupervisor;
  #pools = new Map<string, PoolRuntime>();
  readonly #retiredPools = new Set<PoolRuntime>();
  /** Listener name → `host:port` as the workers bound it. */
  #addresses = new Map<string, string>();
  #admin: AdminServer | null = null;
  #state: PrimaryState = 'new';
  #gen = 1;
  /** Pool → when its last `spill` event was emitted (`performance.now()`). */
  readonly #lastSpill = new Map<string, number>();
  /**
   * DNS (SPEC §12) is looked up here only: a changed answer is checked here and its member
   * list sent to every worker before the snapshot that goes with it.
   */
  readonly #dns: DnsMembers;

  constructor(config: Config, options: PrimaryOptions) {
    this.#config = config;
    this.#options = options;
    this.#logger = options.logger.child({ component: 'primary' });
    this.events = new EventLog(options.logger);
    this.#reloader = new Reloader(this, this.events, options.env);
    this.#slots = Array.from({ length: options.workers }, (_, i) => new Slot(i + 1));
    this.#metrics = new Metrics(this.events, {
      pools: () => this.#pools.values(),
      // With the listener's config, so the series it routes to exist from the start.
      listeners: () => [...this.listeners.values()].map((l) => ({ name: l.name, openConnections: l.openConnections, config: this.#config.listeners.find((c) => c.name === l.name) })),
      workers: () => workerGauges(this.#slots),
    });
    this.#traffic = new TrafficHistory(() => this.#metrics.backendTotals());
    this.#fanOut = new DecisionFanOut({
      slots: this.#slots,
      pools: () => this.#pools,
      config: () => this.#config,
      gen: () => this.#gen,
      stopped: () => this.#state === 'stopped',
      // Drawn once per start and handed to every worker: sticky pools without secret_env share it.
      stickyKey: randomStickyKey().toString('base64'),
    });
    this.#supervisor = new WorkerSupervisor({
      slots: this.#slots,
      fanOut: this.#fanOut,
      events: this.events,
      logger: this.#logger,
      rootLogger: options.logger,
      ...(options.workerEntry === undefined ? {} : { workerEntry: options.workerEntry }),
      pipeWorkerOutput: options.pipeWorkerOutput === true,
      state: () => this.#state,
      gen: () => this.#gen,
      onMessage: (slot, message) => this.#onMessage(slot, message),
      onExit: () => sumInFlight(this.#pools, this.#slots),
    });
    this.#dns = new DnsMembers({
      events: this.events,
      logger: this.#logger,
      clock: systemClock,
      pools: () => this.#pools,
      config: () => this.#config,
      running: () => this.#state === 'running',
      onFollowed: (pool) => this.#fanOut.sendMembers(pool),
    });
  }

  /** A backend's request rate, errors and latency over the last minutes (for `/status`). */
  traffic(pool: string, backend: string): TrafficSeries {
    return this.#traffic.of(pool, backend);
  }

  get config(): Config {
    return this.#config;
  }

  get pools(): ReadonlyMap<string, PoolRuntime> {
    return this.#pools;
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** `GET /readyz`: every worker listening and the first round of checks done, and not shutting down. */
  get ready(): boolean {
    return this.#state === 'running';
  }

  /** SIGUSR1: every worker opens the log file again (the primary's own sink is main.ts's). */
  reopenLogs(): void {
    for (const slot of this.#slots) slot.send({ t: 'reopen' });
  }

  get version(): number {
    return this.#reloader.version;
  }

  get lastReload(): ReloadResult | null {
    return this.#reloader.last;
  }

  get reloads(): ReloadCounts {
    return this.#reloader.counts;
  }

  /** The listeners as the workers bound them; connections summed over the workers. */
  get listeners(): ReadonlyMap<string, ListenerView> {
    return listenerViews(this.#config, this.#slots, this.#addresses);
  }

  workers(): WorkerStatus[] {
    return workerStatuses(this.#slots);
  }

  /** The pids of the running workers (tests and the bench). */
  get workerPids(): number[] {
    return this.#slots.flatMap((s) => (s.worker?.process.pid === undefined ? [] : [s.worker.process.pid]));
  }

  address(listener: string): AddressInfo {
    const address = parseAddress(this.#addresses.get(listener) ?? null);
    if (address === null) throw new Error(`listener ${listener} is not listening`);
    return address;
  }

  adminAddress(): AddressInfo {
    const address = this.#admin?.address();
    if (address === null || address === undefined) throw new Error('the admin listener is not listening');
    return address;
  }

  /**
   * The health round, then the workers, each listening on every listener; then the admin API.
   * A worker that cannot listen fails the start with its one line (LISTEN_FAILED).
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error('proxy already started');
    this.#state = 'starting';
    // An unreachable resolver does not stop the start: the pools begin with what is known.
    await this.#dns.resolveNew(this.#config);
    this.#dns.configure(this.#config);
    for (const [name, config] of Object.entries(this.#config.pools)) this.#pools.set(name, this.#newPool(name, this.#dns.expand(name, config)));
    // The workers boot (load their code) while the first round of checks runs; each gets its
    // config and the first snapshot once the round is done.
    const firstRound = Promise.all([...this.#pools.values()].map((p) => p.start()));
    this.#supervisor.setup();
    try {
      // Every worker listens before the listeners are announced: a SIGHUP that arrives after
      // `listening` then finds the proxy running (as with one process), not still starting.
      // One worker that cannot start fails the start at once (the others are stopped below).
      const outcome = await this.#supervisor.spawnAll(firstRound);
      // A shutdown that began meanwhile owns the rest (as with one process: start just ends).
      if (this.#state !== 'starting') return;
      if (typeof outcome === 'string') throw new ProxyError('LISTEN_FAILED', outcome);
      const first = outcome[0];
      if (first !== null && first !== undefined && 'addresses' in first) this.#addresses = new Map(first.addresses.map((a) => [a.listener, a.address]));
      for (const l of this.#config.listeners) {
        this.events.emit('listening', { listener: l.name, protocol: l.protocol, tls: l.tls !== undefined, address: this.#addresses.get(l.name) });
      }
      await this.#startAdmin();
    } catch (err) {
      this.#state = 'stopping';
      await this.#supervisor.stop(0);
      this.#stopPools();
      this.#traffic.stop();
      this.#metrics.close();
      await this.#admin?.close();
      this.#state = 'stopped';
      throw err;
    }
    if (this.#state === 'starting') this.#state = 'running';
  }

  async #startAdmin(): Promise<void> {
    const admin = this.#config.admin;
    if (admin === undefined) return;
    this.#admin = new AdminServer({
      listen: admin.listen,
      token: this.#options.adminToken ?? null,
      host: new ProxyAdminHost(this, () => performance.now()),
      events: this.events,
      metrics: {
        contentType: this.#metrics.contentType,
        render: async () => {
          await this.refresh();
          return this.#metrics.render();
        },
      },
      logger: this.#logger,
    });
    const address = await this.#admin.listen();
    this.#traffic.start();
    this.events.emit('listening', { admin: true, protocol: 'http', tls: false, address: `${address.address}:${address.port}` });
  }

  reload(): Promise<ReloadResult> {
    return this.#reloader.reload();
  }

  /** Asks every running worker for its counters and in-flight counts now; resolves when all answered (or 200 ms). */
  refresh(): Promise<void> {
    return refreshReports(this.#slots);
  }

  /**
   * Resolves once every running worker has applied the newest snapshot (or `timeoutMs` passed):
   * for tests and drills that act right after a decision. Workers apply within milliseconds.
   */
  settled(timeoutMs = 2_000): Promise<void> {
    return this.#fanOut.settled(timeoutMs);
  }

  /**
   * Reload, step 2: the new pools checked and the kept ones prepared, as one process does; then
   * every worker binds what the new config adds. One worker that cannot fails the reload for all.
   */
  async prepare(next: Config, plan: ReloadPlan): Promise<PreparedReload> {
    const release = await this.#dns.take();
    try {
      // Names the new config adds are looked up now; known ones keep their answers (and backends).
      await this.#dns.resolveNew(next);
      return await this.#prepare(next, plan, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  async #prepare(next: Config, plan: ReloadPlan, release: () => void): Promise<PreparedReload> {
    const planned = planPools(this.#pools, next, plan, (name, config) => this.#dns.expand(name, config), (name, config) => this.#newPool(name, config));
    const gen = this.#gen + 1;
    const slots = this.#slots.filter((s) => s.state === 'running');
    // Every pool as it will run: added and updated ones with the answers known now, the others as they are.
    const replies = await this.#fanOut.prepare(slots, gen, this.#fanOut.configFor(next, planned.configs));
    const failed = replies.filter((r) => r !== null && !r.ok);
    const prepared: PreparedReload = {
      config: next,
      plan,
      gen,
      pools: await preparePools(planned),
      slots,
      addresses: new Map(replies.flatMap((r) => (r?.ok === true ? r.addresses : [])).map((a: BoundAddress) => [a.listener, a.address])),
      release,
    };
    if (failed.length > 0) {
      this.abort(prepared);
      const first = failed[0];
      throw new ReloadError((first?.code ?? 'RELOAD_FAILED') as ErrorCode, [...new Set(failed.flatMap((r) => r?.errors ?? []))]);
    }
    return prepared;
  }

  abort(prepared: PreparedReload): void {
    for (const slot of prepared.slots) slot.send({ t: 'abort', gen: prepared.gen });
    abandonPools(prepared.pools);
    prepared.release();
  }

  /** The swap: pools first, then every worker commits the same generation with the snapshot it makes. */
  commit(prepared: PreparedReload): void {
    const { config, plan } = prepared;
    this.#pools = commitPools(prepared.pools, plan, this.#pools, this.#retiredPools);
    const old = this.#config;
    this.#config = config;
    this.#gen = prepared.gen;
    this.#fanOut.commit(prepared.slots, prepared.gen);
    // A worker that started meanwhile runs the old generation: it is replaced by one on the new.
    for (const slot of this.#slots) if (slot.state === 'starting' || (slot.state === 'running' && slot.gen !== this.#gen)) slot.worker?.process.kill('SIGKILL');
    const names = new Set(config.listeners.map((l) => l.name));
    for (const name of [...this.#addresses.keys()]) if (!names.has(name)) this.#addresses.delete(name);
    for (const [name, address] of prepared.addresses) {
      this.#addresses.set(name, address);
      const l = config.listeners.find((c) => c.name === name);
      this.events.emit('listening', { listener: name, protocol: l?.protocol, tls: l?.tls !== undefined, address });
    }
    if (old.log.level !== config.log.level) this.#options.logger.level = config.log.level;
    this.#dns.configure(config);
    prepared.release();
  }

  /**
   * SIGTERM / SIGINT (SPEC §6, §9): every worker drains as one process does (within
   * shutdown_timeout), then the checks stop and the admin API closes.
   */
  async shutdown(): Promise<void> {
    if (this.#state === 'new') this.#state = 'stopped';
    if (this.#state !== 'running' && this.#state !== 'starting') return;
    this.#state = 'stopping';
    const timeoutMs = this.#config.shutdown_timeout;
    // Past shutdown_timeout each worker closes what is left itself; this bound is for a stuck one.
    const live = (slot: Slot): boolean => slot.worker !== null && !slot.worker.isDead();
    const refusing = this.#slots.map((slot) => (live(slot) ? slot.next('draining', timeoutMs + 5_000) : null));
    const outcomes = this.#slots.map((slot) => (live(slot) ? slot.next('stopped', timeoutMs + 5_000) : null));
    const stopped = this.#supervisor.stop(timeoutMs + 5_000);
    // `draining` means new connections are refused (as with one process): the listening sockets
    // are the primary's, and it keeps accepting for a worker until that worker has closed its
    // listeners. Announced at once, it let a loaded machine's workers still take connections.
    await Promise.all(refusing);
    this.events.emit('shutdown', { phase: 'draining', timeout_ms: timeoutMs, workers: this.#slots.length });
    await stopped;
    const drained = (await Promise.all(outcomes)).every((m) => m === null || m.outcome === 'drained');
    this.#stopPools();
    this.#traffic.stop();
    // Its event subscription and event-loop sampler end here, as a single process's do.
    this.#metrics.close();
    await this.#admin?.close();
    this.#state = 'stopped';
    this.events.emit('shutdown', { phase: 'stopped', outcome: drained ? 'drained' : 'timeout' });
  }

  /** A second signal: every worker ends now. */
  kill(): void {
    this.#supervisor.kill();
  }

  #stopPools(): void {
    this.#dns.stop();
    for (const pool of [...this.#pools.values(), ...this.#retiredPools]) {
      pool.stop();
      pool.closeConnections('shutdown');
    }
  }

  /** A message from the process currently behind `slot`. */
  #onMessage(slot: Slot, message: FromWorker): void {
    switch (message.t) {
      case 'evidence': {
        this.#pools.get(message.pool)?.reportPassive(message.backend, message.key, message.ok, message.detail);
        // After the snapshot this failure may have caused (queued first), so the worker stops
        // avoiding the backend only once it knows whether it is down.
        const { pool, backend } = message;
        if (!message.ok) queueMicrotask(() => slot.send({ t: 'verdict', pool, backend }));
        return;
      }
      case 'stats':
        this.#metrics.addWorkerCounts(message.stats.counts);
        slot.stats = message.stats;
        sumInFlight(this.#pools, this.#slots);
        slot.waiting.get('stats')?.(message);
        return;
      case 'applied':
        this.#fanOut.applied(slot, message.seq);
        return;
      case 'event': {
        // `spill` is a state, not a per-request log: at most one per pool per second for the
        // host, as with one process (each worker limits its own; this limits them together).
        if (message.type === 'spill') {
          const pool = String(message.details.pool);
          const now = performance.now();
          if (now - (this.#lastSpill.get(pool) ?? -Infinity) < SPILL_EVENT_INTERVAL_MS) return;
          this.#lastSpill.set(pool, now);
        }
        this.events.emit(message.type as EventType, { ...message.details, worker: slot.id });
        return;
      }
      default:
        slot.waiting.get(message.t)?.(message);
    }
  }

  #newPool(name: string, config: PoolConfig): PoolRuntime {
    return new PoolRuntime(name, config, {
      events: this.events,
      logger: this.#options.logger,
      clock: systemClock,
      onCheck: (b, ok) => this.#metrics.check(b, ok),
      onTransition: () => this.#fanOut.queuePublish(),
      onStreak: (pool, backend, open) => {
        for (const slot of this.#slots) slot.send({ t: 'streak', pool, backend, open });
      },
    });
  }
}
