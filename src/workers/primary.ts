/**
 * The primary of `workers: N` (SPEC §9): the control plane, and nothing else. It loads and
 * reloads the config, runs the health checks and warm-ups, owns the one failover state machine
 * per pool (the same PoolRuntime a single process runs), serves the admin API, metrics and
 * events, and takes the signals. It never proxies: the workers (worker.ts) accept and forward.
 *
 * Every decision goes to the workers as one versioned {@link Snapshot} (coalesced per tick);
 * passive evidence comes back at once and counters every 100 ms (protocol.ts). Listening sockets
 * are node:cluster round-robin handles held here, so a worker that dies loses no queued
 * connection; it is replaced under the same id, with backoff when it keeps dying.
 */
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
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
import { PoolRuntime, type PoolReload } from '../upstream/pool-runtime.js';
import type { ProbeResult } from '../upstream/probes.js';
import { randomStickyKey } from '../upstream/sticky.js';
import { pino } from 'pino';
import { resolvedConfig, resolvedPool, workerConfig, type BoundAddress, type FromWorker, type Snapshot, type ToWorker, type WorkerStats } from './protocol.js';

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

/** How long a worker may take from fork to listening before startup (or its replacement) gives up on it. */
const WORKER_START_TIMEOUT_MS = 30_000;
/** A worker's reply to a reload's prepare step: new listeners are bound, nothing checked. */
const WORKER_PREPARE_TIMEOUT_MS = 30_000;
/** At most one `spill` event per pool per this many ms, host-wide (pool-runtime.ts does the same per process). */
const SPILL_EVENT_INTERVAL_MS = 1_000;
/** How long a read of /metrics or /status waits for the workers' fresh figures. */
const REFRESH_TIMEOUT_MS = 200;
/** A worker that dies within this long of starting counts as dying again (backoff grows). */
const STABLE_AFTER_MS = 10_000;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 10_000;

type SlotState = WorkerStatus['state'];

/** One worker id (1..N) and the process currently behind it. */
class Slot {
  readonly id: number;
  worker: ClusterWorker | null = null;
  state: SlotState = 'starting';
  upSince = new Date();
  /** The config generation this process runs. */
  gen = 0;
  restarts = 0;
  /** Deaths in a row, each within STABLE_AFTER_MS of its start: the backoff exponent. */
  quickDeaths = 0;
  respawnTimer: NodeJS.Timeout | null = null;
  stats: WorkerStats | null = null;
  /** Requests of earlier processes under this id. */
  requestsBefore = 0;
  lastApplyMs: number | null = null;
  /** The newest snapshot this process said it applied. */
  appliedSeq = 0;
  /** Waiting for this process's next message of a kind. */
  readonly waiting = new Map<FromWorker['t'], (message: FromWorker | null) => void>();

  constructor(id: number) {
    this.id = id;
  }

  send(message: ToWorker): void {
    const worker = this.worker;
    if (worker !== null && worker.isConnected()) worker.send(message);
  }

  /** The next message of kind `t`, or null if the process exits or `timeoutMs` passes first. */
  next<T extends FromWorker['t']>(t: T, timeoutMs: number): Promise<Extract<FromWorker, { t: T }> | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (message: FromWorker | null): void => {
        clearTimeout(timer);
        this.waiting.delete(t);
        resolve(message as Extract<FromWorker, { t: T }> | null);
      };
      this.waiting.get(t)?.(null);
      this.waiting.set(t, done);
    });
  }

  get inFlight(): number {
    let total = 0;
    for (const [, , n] of this.stats?.inFlight ?? []) total += n;
    return total;
  }
}

interface PreparedReload {
  readonly config: Config;
  readonly plan: ReloadPlan;
  readonly gen: number;
  readonly added: readonly PoolRuntime[];
  readonly rounds: readonly (readonly ProbeResult[])[];
  readonly updated: readonly { readonly pool: PoolRuntime; readonly reload: PoolReload }[];
  readonly pools: ReadonlyMap<string, PoolRuntime>;
  readonly slots: readonly Slot[];
  readonly addresses: ReadonlyMap<string, string>;
  /** Ends the reload's turn on the pools' member lists (dns-members.ts `take`). */
  readonly release: () => void;
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

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
  #pools = new Map<string, PoolRuntime>();
  readonly #retiredPools = new Set<PoolRuntime>();
  /** Listener name → `host:port` as the workers bound it. */
  #addresses = new Map<string, string>();
  #admin: AdminServer | null = null;
  #state: State = 'new';
  #gen = 1;
  #seq = 0;
  /** Drawn once per start and handed to every worker: sticky pools without secret_env share it. */
  readonly #stickyKey = randomStickyKey().toString('base64');
  #publishQueued = false;
  /** Pool → when its last `spill` event was emitted (`performance.now()`). */
  readonly #lastSpill = new Map<string, number>();
  /** The seq of the newest snapshot sent to the running workers. */
  #lastSent = 0;
  /** seq → when it was published (`performance.now()`), for the apply latency in `/status`. */
  readonly #published = new Map<number, number>();
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
      workers: () =>
        this.#slots.map((s) => ({
          id: s.id,
          rssBytes: s.stats?.rssBytes ?? 0,
          cpuSeconds: s.stats?.cpuSeconds ?? 0,
          inFlight: s.inFlight,
          restarts: s.restarts,
        })),
    });
    this.#traffic = new TrafficHistory(() => this.#metrics.backendTotals());
    this.#dns = new DnsMembers({
      events: this.events,
      logger: this.#logger,
      clock: systemClock,
      pools: () => this.#pools,
      config: () => this.#config,
      running: () => this.#state === 'running',
      onFollowed: (pool) => this.#sendMembers(pool),
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
    const views = new Map<string, ListenerView>();
    for (const l of this.#config.listeners) {
      let open = 0;
      for (const s of this.#slots) for (const [name, n] of s.stats?.connections ?? []) if (name === l.name) open += n;
      const address = this.#addresses.get(l.name) ?? null;
      views.set(l.name, { name: l.name, config: l, openConnections: open, address: () => parseAddress(address) });
    }
    return views;
  }

  workers(): WorkerStatus[] {
    return this.#slots.map((s) => ({
      id: s.id,
      pid: s.worker?.process.pid ?? null,
      up_since: s.upSince.toISOString(),
      state: s.state,
      rss_bytes: s.stats?.rssBytes ?? 0,
      in_flight: s.inFlight,
      requests: s.requestsBefore + (s.stats?.requests ?? 0),
      restarts: s.restarts,
      last_apply_ms: s.lastApplyMs,
    }));
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
    cluster.setupPrimary({ exec: this.#options.workerEntry ?? defaultWorkerEntry(), args: [], execArgv: ['--max-semi-space-size=4'], silent: this.#options.pipeWorkerOutput === true });
    try {
      // Every worker listens before the listeners are announced: a SIGHUP that arrives after
      // `listening` then finds the proxy running (as with one process), not still starting.
      let failed: (error: string) => void = () => undefined;
      const firstFailure = new Promise<string>((resolve) => (failed = resolve));
      const spawns = this.#slots.map((slot) =>
        this.#spawn(slot, firstRound).then((result) => {
          if (result === null) failed(`worker ${slot.id} exited before it was listening`);
          else if ('error' in result) failed(result.error);
          return result;
        }),
      );
      // One worker that cannot start fails the start at once (the others are stopped below).
      const outcome = await Promise.race([Promise.all(spawns), firstFailure]);
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
      await this.#stopWorkers(0);
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
  async refresh(): Promise<void> {
    await Promise.all(
      this.#slots
        .filter((s) => s.state === 'running')
        .map((slot) => {
          const answer = slot.next('stats', REFRESH_TIMEOUT_MS);
          slot.send({ t: 'report' });
          return answer;
        }),
    );
  }

  /**
   * Resolves once every running worker has applied the newest snapshot (or `timeoutMs` passed):
   * for tests and drills that act right after a decision. Workers apply within milliseconds.
   */
  async settled(timeoutMs = 2_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    // A snapshot queued in this tick goes out first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#slots.some((s) => s.state === 'running' && s.appliedSeq < this.#lastSent) && performance.now() < deadline) {
      await new Promise<void>((resolve) => setTimeout(resolve, 2));
    }
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
    const expanded = (name: string): PoolConfig => this.#dns.expand(name, next.pools[name] as PoolConfig);
    const added = plan.pools.added.map((name) => this.#newPool(name, expanded(name)));
    const updated = plan.pools.updated.map(({ name }) => this.#pools.get(name) as PoolRuntime);
    const pools = new Map([...this.#pools].filter(([name]) => Object.hasOwn(next.pools, name)));
    for (const pool of added) pools.set(pool.name, pool);
    const gen = this.#gen + 1;
    const slots = this.#slots.filter((s) => s.state === 'running');
    // Every pool as it will run: added and updated ones with the answers known now, the others as they are.
    const lists = new Map([...pools].map(([name, pool]) => [name, pool.config]));
    const updates = updated.map((pool) => expanded(pool.name));
    updated.forEach((pool, i) => lists.set(pool.name, updates[i] as PoolConfig));
    const toWorkers = workerConfig(resolvedConfig(next, lists), this.#slots.length);
    const replies = await Promise.all(
      slots.map((slot) => {
        const reply = slot.next('prepared', WORKER_PREPARE_TIMEOUT_MS);
        slot.send({ t: 'prepare', gen, config: toWorkers });
        return reply;
      }),
    );
    const failed = replies.filter((r) => r !== null && !r.ok);
    const [rounds, reloads] = await Promise.all([
      Promise.all(added.map((pool) => pool.firstRound())),
      Promise.all(updated.map((pool, i) => pool.prepareReload(updates[i] as PoolConfig))),
    ]);
    const prepared: PreparedReload = {
      config: next,
      plan,
      gen,
      added,
      rounds,
      updated: updated.map((pool, i) => ({ pool, reload: reloads[i] as PoolReload })),
      pools,
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
    for (const { pool, reload } of prepared.updated) pool.discard(reload);
    for (const pool of prepared.added) {
      pool.stop();
      pool.closeConnections('reload rolled back');
    }
    prepared.release();
  }

  /** The swap: pools first, then every worker commits the same generation with the snapshot it makes. */
  commit(prepared: PreparedReload): void {
    const { config, plan } = prepared;
    prepared.added.forEach((pool, i) => pool.begin(prepared.rounds[i] ?? []));
    for (const { pool, reload } of prepared.updated) pool.reconfigure(reload);
    for (const name of plan.pools.removed) {
      const pool = this.#pools.get(name) as PoolRuntime;
      this.#retiredPools.add(pool);
      void pool.retire().then(() => this.#retiredPools.delete(pool));
    }
    this.#pools = new Map(prepared.pools);
    const old = this.#config;
    this.#config = config;
    this.#gen = prepared.gen;
    const snapshot = this.#snapshot();
    this.#lastSent = snapshot.seq;
    for (const slot of prepared.slots) {
      slot.send({ t: 'commit', gen: prepared.gen, snapshot });
      slot.gen = prepared.gen;
    }
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
    const stopped = this.#stopWorkers(timeoutMs + 5_000);
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
    for (const slot of this.#slots) {
      if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
      slot.worker?.process.kill('SIGKILL');
    }
  }

  #stopPools(): void {
    this.#dns.stop();
    for (const pool of [...this.#pools.values(), ...this.#retiredPools]) {
      pool.stop();
      pool.closeConnections('shutdown');
    }
  }

  /** Asks every worker to drain and waits for all to exit; past `graceMs` (0: at once) they are killed. */
  async #stopWorkers(graceMs: number): Promise<void> {
    const exits = this.#slots.map((slot) => {
      if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
      slot.respawnTimer = null;
      const worker = slot.worker;
      if (worker === null || worker.isDead()) return Promise.resolve();
      slot.state = 'stopping';
      return new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        if (graceMs === 0) worker.process.kill('SIGKILL');
        else slot.send({ t: 'shutdown' });
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.kill();
        resolve();
      }, Math.max(graceMs, 1));
    });
    await Promise.race([Promise.all(exits), graceMs === 0 ? new Promise<void>(() => undefined) : expired]);
    clearTimeout(timer);
    await Promise.all(exits);
  }

  /**
   * Forks the process behind `slot` and sends it the running config and snapshot. Resolves with
   * its bound addresses, its one-line failure, or null when it died first.
   */
  #spawn(slot: Slot, after: Promise<unknown> = Promise.resolve()): Promise<{ readonly addresses: readonly BoundAddress[] } | { readonly error: string } | null> {
    slot.respawnTimer = null;
    slot.state = 'starting';
    slot.upSince = new Date();
    slot.stats = null;
    const worker = cluster.fork({ HOTWARM_WORKER_ID: String(slot.id), HOTWARM_PRIMARY_PID: String(process.pid) });
    slot.worker = worker;
    if (this.#options.pipeWorkerOutput === true) this.#pipe(worker);
    slot.gen = this.#gen;
    worker.on('message', (message: FromWorker) => this.#onMessage(slot, worker, message));
    worker.on('exit', (code, signal) => this.#onExit(slot, worker, code, signal));
    // A failed fork (EAGAIN) is an exit too; the error itself must not crash the primary.
    worker.on('error', (err) => this.#logger.error({ err, worker: slot.id }, 'worker error'));
    const ready = slot.next('ready', WORKER_START_TIMEOUT_MS);
    const failed = slot.next('failed', WORKER_START_TIMEOUT_MS);
    // What the worker was given: a member list or a decision that changes before it is ready reaches it then.
    let sent: { readonly lists: ReadonlyMap<string, PoolConfig>; readonly seq: number } | null = null;
    void Promise.all([slot.next('hello', WORKER_START_TIMEOUT_MS), after]).then(([hello]) => {
      if (hello === null) return;
      const snapshot = this.#snapshot();
      sent = { lists: new Map([...this.#pools].map(([name, pool]) => [name, pool.config])), seq: snapshot.seq };
      slot.send({ t: 'init', id: slot.id, gen: this.#gen, config: this.#workerConfig(), snapshot, stickyKey: this.#stickyKey });
    });
    return Promise.race([ready, failed]).then((message) => {
      slot.waiting.get('ready')?.(null);
      slot.waiting.get('failed')?.(null);
      if (message === null) {
        if (!worker.isDead()) worker.process.kill('SIGKILL');
        return null;
      }
      if (message.t === 'failed') return { error: message.error };
      if (slot.worker === worker && this.#state !== 'stopping') {
        slot.state = 'running';
        // It runs the snapshot it was started with (a process before it under this id may have had newer ones).
        slot.appliedSeq = sent?.seq ?? 0;
        this.#catchUp(slot, sent);
      }
      this.#logger.info({ worker: slot.id, pid: worker.process.pid }, 'worker ready');
      return { addresses: message.addresses };
    });
  }

  /** A worker now ready: what changed since its init (snapshots go to running workers only) is sent now. */
  #catchUp(slot: Slot, sent: { readonly lists: ReadonlyMap<string, PoolConfig>; readonly seq: number } | null): void {
    if (sent === null) return;
    for (const pool of this.#pools.values()) {
      const given = sent.lists.get(pool.name);
      if (given !== undefined && given !== pool.config && slot.gen === this.#gen) this.#sendMembers(pool, slot);
    }
    if (this.#seq > sent.seq) slot.send({ t: 'snapshot', snapshot: this.#snapshot() });
  }

  /** A worker's output, whole lines at a time, into this primary's log destination. */
  #pipe(worker: ClusterWorker): void {
    const stream = (this.#options.logger as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym];
    let partial = '';
    worker.process.stdout?.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const end = text.lastIndexOf('\n') + 1;
      partial = text.slice(end);
      if (end > 0) stream?.write(text.slice(0, end));
    });
    worker.process.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  }

  #onMessage(slot: Slot, worker: ClusterWorker, message: FromWorker): void {
    if (slot.worker !== worker) return;
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
        this.#sumInFlight();
        slot.waiting.get('stats')?.(message);
        return;
      case 'applied': {
        slot.appliedSeq = Math.max(slot.appliedSeq, message.seq);
        const at = this.#published.get(message.seq);
        if (at !== undefined) slot.lastApplyMs = Math.round((performance.now() - at) * 1000) / 1000;
        return;
      }
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

  /** The host-wide in-flight count of every backend, as the workers last reported (`/status`, metrics). */
  #sumInFlight(): void {
    for (const pool of this.#pools.values()) for (const b of pool.backends) b.inFlight = 0;
    for (const slot of this.#slots) {
      for (const [poolName, name, n] of slot.stats?.inFlight ?? []) {
        const backend = this.#pools.get(poolName)?.backends.find((b) => b.name === name);
        if (backend !== undefined) backend.inFlight += n;
      }
    }
  }

  #onExit(slot: Slot, worker: ClusterWorker, code: number | null, signal: string | null): void {
    for (const resolve of [...slot.waiting.values()]) resolve(null);
    if (slot.worker !== worker) return;
    const lost = slot.inFlight;
    slot.requestsBefore += slot.stats?.requests ?? 0;
    slot.stats = null;
    slot.worker = null;
    this.#sumInFlight();
    if (this.#state === 'stopping' || this.#state === 'stopped' || slot.state === 'stopping') return;
    slot.restarts++;
    const lived = Date.now() - slot.upSince.getTime();
    slot.quickDeaths = lived < STABLE_AFTER_MS ? slot.quickDeaths + 1 : 0;
    const delay = slot.quickDeaths === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (slot.quickDeaths - 1));
    this.events.emit('worker_exit', { worker: slot.id, pid: worker.process.pid, code, signal, lost_requests: lost, restart_in_ms: delay }, 'error');
    if (this.#state !== 'running') return;
    slot.state = 'restarting';
    slot.respawnTimer = setTimeout(() => {
      void this.#spawn(slot).then((result) => {
        if (result !== null && 'error' in result) {
          this.#logger.error({ worker: slot.id, error: result.error }, 'worker could not start');
          slot.worker?.process.kill('SIGKILL');
        }
      });
    }, delay);
  }

  #newPool(name: string, config: PoolConfig): PoolRuntime {
    return new PoolRuntime(name, config, {
      events: this.events,
      logger: this.#options.logger,
      clock: systemClock,
      onCheck: (b, ok) => this.#metrics.check(b, ok),
      onTransition: () => this.#queuePublish(),
      onStreak: (pool, backend, open) => {
        for (const slot of this.#slots) slot.send({ t: 'streak', pool, backend, open });
      },
    });
  }

  /** The running config as a worker takes it: pools with the member lists resolved here, `max_conns` split. */
  #workerConfig(): Config {
    return workerConfig(resolvedConfig(this.#config, new Map([...this.#pools].map(([name, pool]) => [name, pool.config]))), this.#slots.length);
  }

  /**
   * A pool took a new member list from DNS: every worker gets it now, before the snapshot its
   * transition queued (a microtask), so no snapshot names a member a worker does not have.
   * A worker still starting took its list with its config when it was sent; one sent earlier is
   * brought up to date when it is ready ({@link #spawn}).
   */
  #sendMembers(pool: PoolRuntime, only?: Slot): void {
    const config = resolvedPool(workerConfig({ ...this.#config, pools: { [pool.name]: pool.config } }, this.#slots.length).pools[pool.name] as PoolConfig);
    for (const slot of only === undefined ? this.#slots : [only]) if (slot.state === 'running') slot.send({ t: 'members', pool: pool.name, config });
  }

  /** Transitions within one tick (a reload, a check round) go out as one snapshot. */
  #queuePublish(): void {
    if (this.#publishQueued) return;
    this.#publishQueued = true;
    queueMicrotask(() => {
      this.#publishQueued = false;
      if (this.#state === 'stopped') return;
      const snapshot = this.#snapshot();
      this.#lastSent = snapshot.seq;
      for (const slot of this.#slots) if (slot.state === 'running') slot.send({ t: 'snapshot', snapshot });
    });
  }

  #snapshot(): Snapshot {
    const seq = ++this.#seq;
    this.#published.set(seq, performance.now());
    // Only the latest few are needed for the apply latency.
    if (this.#published.size > 64) this.#published.delete(seq - 64);
    return { seq, origin: performance.timeOrigin, pools: [...this.#pools.values()].map((p) => ({ name: p.name, state: p.core.state })) };
  }
}

function parseAddress(address: string | null): AddressInfo | null {
  if (address === null || address === '') return null;
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return { address: host, port: Number(address.slice(colon + 1)), family: host.includes(':') ? 'IPv6' : 'IPv4' };
}

/** dist/src/worker-main.js: beside this file when built, or the build's when run from the sources (tests). */
function defaultWorkerEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const built = resolve(here, '..', 'worker-main.js');
  return existsSync(built) ? built : resolve(here, '..', '..', 'dist', 'src', 'worker-main.js');
}
