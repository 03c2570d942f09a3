/**
 * Composition root: builds pools, listeners and the forwarder from a frozen Config, starts
 * them in order (health round first, then listeners), reloads them (control/reload.ts drives,
 * this file prepares and swaps; the pools' side is upstream/pool-set-reload.ts's, which the
 * primary of workers runs too), and shuts them down gracefully. The listeners are
 * listener-set.ts's; what the data path leaves (counts, access log) is data-path-records.ts's.
 */
import type { AddressInfo } from 'node:net';
import type { ReloadPlan } from './config/diff.js';
import type { Config } from './config/schema.js';
import type { AdminServer } from './control/admin.js';
import type { Counts } from './control/counts.js';
import { EventLog } from './control/events.js';
import type { WorkerStatus } from './control/admin-types.js';
import type { Metrics } from './control/metrics.js';
import { TrafficHistory, type TrafficSeries } from './control/traffic-history.js';
import { Reloader, type ReloadCounts, type ReloadResult, type ReloadTarget } from './control/reload.js';
import { DataPathRecords } from './data-path-records.js';
import { HttpForwarder } from './forward/http.js';
import { WebSocketForwarder } from './forward/websocket.js';
import { ListenerSet } from './listener-set.js';
import type { Listener } from './listeners/listener.js';
import { AccessLog, type Logger } from './log.js';
import { systemClock, withNow, type Clock } from './upstream/clock.js';
import { DnsMembers } from './upstream/dns-members.js';
import { PoolRuntime, type RemoteBrain } from './upstream/pool-runtime.js';
import { abandonPools, commitPools, planPools, preparePools, type PreparedPools } from './upstream/pool-set-reload.js';
import { randomStickyKey } from './upstream/sticky.js';

export interface ProxyOptions {
  readonly logger: Logger;
  /** Monotonic clock in ms for failover timing, with real timers; injectable for tests. */
  readonly now?: () => number;
  /** Time and timers of pools, checks, warm-ups, drains, DNS and tunnels (upstream/clock.ts); overrides `now`. */
  readonly clock?: Clock;
  /** Where a reload looks up `admin.token_env` (default `process.env`) and sticky pools their `secret_env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** The admin API's bearer token (the value of `admin.token_env`, read by main.ts), or null. */
  readonly adminToken?: string | null;
  /**
   * The key of sticky pools without `secret_env`; default: drawn at start. A primary draws it
   * and hands it to every worker, so a cookie one worker issued is valid in all of them.
   */
  readonly stickyKey?: Buffer;
  /**
   * Set in a worker (SPEC §9): the data plane only. Pools decide nothing and report to this
   * brain (the primary), no admin listener is started, and access lines carry `worker`.
   */
  readonly worker?: { readonly id: number; readonly brain: RemoteBrain; readonly events: EventLog; readonly prime: (pools: ReadonlyMap<string, PoolRuntime>) => void };
}

export type { Listener } from './listeners/listener.js';

/** A reload, prepared: new pools checked, new addresses bound (held), nothing swapped yet. */
interface PreparedReload {
  readonly config: Config;
  readonly plan: ReloadPlan;
  readonly pools: PreparedPools;
  /** Listeners bound for added and rebound names, held until the swap. */
  readonly bound: ReadonlyMap<string, Listener>;
  /** Ends the reload's turn on the pools' member lists (dns-members.ts `take`). */
  readonly release: () => void;
}

type State = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

export class Proxy implements ReloadTarget<PreparedReload> {
  #config: Config;
  readonly #logger: Logger;
  readonly #access: AccessLog;
  readonly #now: () => number;
  readonly #clock: Clock;
  readonly events: EventLog;
  readonly #forwarder: HttpForwarder;
  readonly #websockets: WebSocketForwarder;
  readonly #reloader: Reloader<PreparedReload>;
  readonly #records: DataPathRecords;
  #exporter: Metrics | null = null;
  /** The dashboard's per-backend charts: sampled only while the admin listener runs. */
  readonly #traffic: TrafficHistory;
  readonly #adminToken: string | null;
  readonly #worker: ProxyOptions['worker'];
  #admin: AdminServer | null = null;
  readonly #startedAt = new Date().toISOString();
  #pools = new Map<string, PoolRuntime>();
  readonly #listeners: ListenerSet;
  /** Removed by a reload and still finishing their work; closed at shutdown if still there. */
  readonly #retiredPools = new Set<PoolRuntime>();
  #state: State = 'new';
  #starting: Promise<void> | null = null;
  /** Drawn once per start: sticky pools without secret_env share it (sessions re-balance after a restart). */
  readonly #randomStickyKey: Buffer;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #stickyKey = (secretEnv: string | undefined): Buffer => {
    const secret = secretEnv === undefined ? undefined : this.#env[secretEnv];
    // The loader refused a config whose secret_env is unset or empty; read again at each reload.
    return secret === undefined || secret === '' ? this.#randomStickyKey : Buffer.from(secret);
  };
  /** DNS answers for `discover` entries and DNS names in `address` (SPEC §12), and the turns reloads take with them. */
  readonly #dns: DnsMembers;

  constructor(config: Config, options: ProxyOptions) {
    this.#config = config;
    this.#logger = options.logger;
    this.#clock = options.clock ?? (options.now === undefined ? systemClock : withNow(options.now));
    this.#now = () => this.#clock.now();
    this.#worker = options.worker;
    this.#access = new AccessLog(options.logger, config.log.access, options.worker === undefined ? {} : { worker: options.worker.id });
    this.events = options.worker?.events ?? new EventLog(options.logger);
    this.#records = new DataPathRecords(this.#access);
    this.#forwarder = new HttpForwarder({ onDone: (record) => this.#records.exchange(record) });
    this.#websockets = new WebSocketForwarder({
      onDone: (record) => this.#records.exchange(record),
      onTunnel: (record) => this.#records.tunnel(record),
    });
    this.#listeners = new ListenerSet(
      {
        forwarder: this.#forwarder,
        upgrades: this.#websockets,
        logger: this.#logger,
        onDone: (record) => this.#records.exchange(record),
        onTunnel: (record) => this.#records.tunnel(record),
      },
      this.events,
    );
    this.#reloader = new Reloader(this, this.events, options.env);
    this.#env = options.env ?? {};
    this.#randomStickyKey = options.stickyKey ?? randomStickyKey();
    this.#adminToken = options.adminToken ?? null;
    this.#traffic = new TrafficHistory(() => this.#records.counts.backendTotals());
    this.#dns = new DnsMembers({ events: this.events, logger: this.#logger, clock: this.#clock, pools: () => this.#pools, config: () => this.#config, running: () => this.#state === 'running' });
  }

  get config(): Config {
    return this.#config;
  }

  get pools(): ReadonlyMap<string, PoolRuntime> {
    return this.#pools;
  }

  get listeners(): ReadonlyMap<string, Listener> {
    return this.#listeners.live;
  }

  /** Requests answered (for `/status` workers and a worker's report). */
  get requests(): number {
    return this.#records.requests;
  }

  get running(): boolean {
    return this.#state === 'running';
  }

  /** `GET /readyz`: every listener bound and the first round of checks done, and not shutting down. */
  get ready(): boolean {
    return this.#state === 'running';
  }

  /** Config version: 1 at start, +1 per applied reload. */
  get version(): number {
    return this.#reloader.version;
  }

  /** The last reload's result (null before the first), for `/status`. */
  get lastReload(): ReloadResult | null {
    return this.#reloader.last;
  }

  get reloads(): ReloadCounts {
    return this.#reloader.counts;
  }

  /** Admin listener, health round, then every listener bound; on a bind failure everything started is stopped and the error thrown. */
  start(): Promise<void> {
    if (this.#state !== 'new') throw new Error('proxy already started');
    this.#state = 'starting';
    this.#starting = this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    try {
      if (this.#worker === undefined) {
        const { Metrics } = await import('./control/metrics.js');
        // Read at scrape time through the fields: a reload replaces the pools map.
        this.#exporter = new Metrics(this.events, { pools: () => this.#pools.values(), listeners: () => this.#listeners.live.values() });
        this.#records.counts = this.#exporter;
      }
      // The admin listener opens first, so `/readyz` answers 503 while names resolve and the first round runs.
      await this.#startAdmin();
      // An unreachable resolver does not stop the start: the pools begin with what is known.
      await this.#resolveNew(this.#config);
      this.#configureDiscovery(this.#config);
      for (const [name, config] of Object.entries(this.#config.pools)) this.#pools.set(name, this.#newPool(name, this.#expand(name, config)));
      await Promise.all([...this.#pools.values()].map((p) => p.start()));
      this.#worker?.prime(this.#pools);
      for (const config of this.#config.listeners) {
        // A shutdown that began during startup closes what exists; bind nothing more.
        if (this.#state !== 'starting') return;
        await this.#listeners.start(config, this.#pools);
      }
    } catch (err) {
      await this.#closeEverything();
      this.#state = 'stopped';
      throw err;
    }
    if (this.#state === 'starting') this.#state = 'running';
  }

  /** The bound address of a listener (useful with port 0). */
  address(listener: string): AddressInfo {
    const address = this.#listeners.live.get(listener)?.address();
    if (address === null || address === undefined) throw new Error(`listener ${listener} is not listening`);
    return address;
  }

  /** The bound address of the admin listener (useful with port 0). */
  adminAddress(): AddressInfo {
    const address = this.#admin?.address();
    if (address === null || address === undefined) throw new Error('the admin listener is not listening');
    return address;
  }

  /**
   * Before the first round of checks: a bind failure fails startup like a listener's (LISTEN_FAILED).
   * The admin listener and its token are read at startup only; a reload reports admin
   * changes as needing a restart.
   */
  async #startAdmin(): Promise<void> {
    const admin = this.#config.admin;
    // A worker serves traffic only: the admin API is the primary's.
    if (admin === undefined || this.#exporter === null) return;
    // Loaded here: a worker (and a process without admin) never loads the API, dashboard or ws.
    const [{ AdminServer }, { ProxyAdminHost }] = await Promise.all([import('./control/admin.js'), import('./control/host.js')]);
    this.#admin = new AdminServer({
      listen: admin.listen,
      token: this.#adminToken,
      host: new ProxyAdminHost(this, this.#now),
      events: this.events,
      metrics: this.#exporter,
      logger: this.#logger,
    });
    const address = await this.#admin.listen();
    this.#traffic.start();
    this.events.emit('listening', { admin: true, protocol: 'http', tls: false, address: `${address.address}:${address.port}` });
  }

  /** Re-reads `config.file` and applies it all at once or not at all (SPEC §6); never rejects. */
  reload(): Promise<ReloadResult> {
    return this.#reloader.reload();
  }

  /**
   * Binds first — a bind failure is the likeliest reason to roll back, and it is known at once —
   * then checks the new pools and backends. Listeners bound here hold their requests until the
   * swap, so a request on a new address waits for these checks rather than meet half a reload.
   */
  async prepare(next: Config, plan: ReloadPlan): Promise<PreparedReload> {
    const release = await this.#dns.take();
    try {
      // Names the new config adds are looked up now; known ones keep their answers (and backends).
      await this.#resolveNew(next);
      return await this.#prepare(next, plan, release);
    } catch (err) {
      release();
      throw err;
    }
  }

  async #prepare(next: Config, plan: ReloadPlan, release: () => void): Promise<PreparedReload> {
    const planned = planPools(this.#pools, next, plan, (name, config) => this.#expand(name, config), (name, config) => this.#newPool(name, config));
    const bound = new Map<string, Listener>();
    try {
      await this.#listeners.bind(next, plan, planned.pools, bound);
    } catch (err) {
      this.#listeners.abandon(bound);
      abandonPools({ added: planned.added.map((pool) => ({ pool })), updated: [] });
      throw err;
    }
    return { config: next, plan, pools: await preparePools(planned), bound, release };
  }

  abort(prepared: PreparedReload): void {
    this.#listeners.abandon(prepared.bound);
    abandonPools(prepared.pools);
    prepared.release();
  }

  /** The swap: pools first (listeners route to them), then listeners, then top-level settings. */
  commit(prepared: PreparedReload): void {
    const { config, plan } = prepared;
    const old = this.#config;
    this.#pools = commitPools(prepared.pools, plan, this.#pools, this.#retiredPools);
    this.#listeners.commit(config, old, plan, prepared.bound, this.#pools);
    this.#config = config;
    if (old.log.level !== config.log.level) this.#logger.level = config.log.level;
    this.#access.enabled = config.log.access;
    this.#configureDiscovery(config);
    prepared.release();
  }

  /**
   * DNS lookups are the primary's (SPEC §9: one brain): a worker runs the member lists the
   * primary resolved, from its config and from `members` messages ({@link followMembers}).
   */
  #expand(name: string, config: Config['pools'][string]): Config['pools'][string] {
    return this.#worker === undefined ? this.#dns.expand(name, config) : config;
  }

  async #resolveNew(config: Config): Promise<void> {
    if (this.#worker === undefined) await this.#dns.resolveNew(config);
  }

  #configureDiscovery(config: Config): void {
    if (this.#worker === undefined) this.#dns.configure(config);
  }

  /**
   * Worker side: the primary resolved a new member list for pool `name` (a DNS answer
   * changed). It is swapped in at once, unchecked (the primary checked it; its snapshot,
   * which follows, says who serves); leaving members drain as after a reload.
   */
  followMembers(name: string, config: Config['pools'][string]): void {
    const pool = this.#pools.get(name);
    if (pool === undefined || this.#state !== 'running' || !Object.hasOwn(this.#config.pools, name)) return;
    pool.follow(config);
    this.#config = { ...this.#config, pools: { ...this.#config.pools, [name]: config } };
  }

  /** Writes out access-log lines still batched (they are at most 50 ms old); for an immediate exit. */
  flushAccessLog(): void {
    this.#access.flush();
  }

  /**
   * Graceful shutdown (SPEC §6): stop accepting, let in-flight requests finish with
   * `Connection: close`, close idle keep-alive connections at once, and everything still open
   * (tunnels included) when `shutdown_timeout` passes.
   */
  async shutdown(): Promise<void> {
    if (this.#state === 'new') this.#state = 'stopped';
    if (this.#state !== 'running' && this.#state !== 'starting') return;
    this.#state = 'stopping';
    await this.#starting?.catch(() => undefined);
    this.#forwarder.closing = true;
    this.#websockets.closing = true;
    const timeoutMs = this.#config.shutdown_timeout;
    const drained = this.#listeners.stopAccepting();
    // Announced once the listeners are closed: whoever reads `draining` (an operator, a worker's
    // primary) may count on new connections being refused from then on.
    this.events.emit('shutdown', { phase: 'draining', timeout_ms: timeoutMs });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([drained.then(() => 'drained' as const), expired]);
    clearTimeout(timer);
    await this.#closeEverything();
    this.#state = 'stopped';
    this.#access.flush();
    this.events.emit('shutdown', { phase: 'stopped', outcome });
  }

  async #closeEverything(): Promise<void> {
    this.#dns.stop();
    const pools = [...this.#pools.values(), ...this.#retiredPools];
    for (const pool of pools) pool.stop();
    for (const pool of pools) pool.closeConnections('shutdown');
    this.#websockets.closeAll();
    await this.#listeners.close();
    this.#traffic.stop();
    this.#records.counts.close();
    await this.#admin?.close();
  }

  #newPool(name: string, config: Config['pools'][string]): PoolRuntime {
    return new PoolRuntime(name, config, {
      events: this.events,
      logger: this.#logger,
      clock: this.#clock,
      onCheck: (b, r) => this.#records.counts.check(b, r),
      stickyKey: this.#stickyKey,
      ...(this.#worker === undefined ? {} : { brain: this.#worker.brain }),
    });
  }

  /** A backend's request rate, errors and latency over the last minutes (for `/status`). */
  traffic(pool: string, backend: string): TrafficSeries {
    return this.#traffic.of(pool, backend);
  }

  /** This process as worker 1 (`/status`): with one process there is no primary. */
  workers(): WorkerStatus[] {
    return [
      {
        id: 1,
        pid: process.pid,
        up_since: this.#startedAt,
        state: this.#state === 'stopping' ? 'stopping' : this.#state === 'running' ? 'running' : 'starting',
        rss_bytes: process.memoryUsage.rss(),
        in_flight: inFlightOf(this.#pools.values()),
        requests: this.#records.requests,
        restarts: 0,
        last_apply_ms: null,
      },
    ];
  }

  /** What this process counted since the last call (a worker reports it to the primary). */
  takeCounts(): ReturnType<Counts['takeCounts']> {
    return this.#records.counts.takeCounts();
  }
}

/** HTTP requests in progress plus open tunnels over every backend of `pools`. */
export function inFlightOf(pools: Iterable<PoolRuntime>): number {
  let total = 0;
  for (const pool of pools) for (const b of pool.backends) total += b.inFlight;
  return total;
}
