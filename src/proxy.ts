/**
 * Composition root: builds pools, listeners and the forwarder from a frozen Config, starts
 * them in order (health round first, then listeners), and shuts them down gracefully.
 */
import type { AddressInfo } from 'node:net';
import type { Config } from './config/schema.js';
import { AdminServer } from './control/admin.js';
import type { ReloadResult } from './control/admin-types.js';
import { EventLog } from './control/events.js';
import { ProxyAdminHost } from './control/host.js';
import { Metrics } from './control/metrics.js';
import { HttpForwarder, type ExchangeRecord } from './forward/http.js';
import type { TunnelRecord } from './forward/tunnel.js';
import { WebSocketForwarder } from './forward/websocket.js';
import { HttpListener } from './listeners/http.js';
import { TcpListener } from './listeners/tcp.js';
import { createAccessLogger, type Logger } from './log.js';
import { PoolRuntime } from './upstream/pool-runtime.js';

export interface ProxyOptions {
  readonly logger: Logger;
  /** Monotonic clock in ms for failover timing; injectable for tests. */
  readonly now?: () => number;
  /** The admin API's bearer token (the value of `admin.token_env`, read by main.ts), or null. */
  readonly adminToken?: string | null;
}

export type Listener = HttpListener | TcpListener;

export class Proxy {
  #config: Config;
  readonly #logger: Logger;
  readonly #access: Logger;
  readonly #now: () => number;
  readonly events: EventLog;
  readonly #forwarder: HttpForwarder;
  readonly #websockets: WebSocketForwarder;
  readonly #pools = new Map<string, PoolRuntime>();
  readonly #listeners = new Map<string, Listener>();
  readonly #metrics: Metrics;
  readonly #adminToken: string | null;
  #admin: AdminServer | null = null;
  #state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';

  constructor(config: Config, options: ProxyOptions) {
    this.#config = config;
    this.#logger = options.logger;
    this.#now = options.now ?? (() => performance.now());
    this.#access = createAccessLogger(options.logger, config.log.access);
    this.events = new EventLog(options.logger);
    this.#forwarder = new HttpForwarder({ onDone: (record) => this.#onDone(record) });
    this.#websockets = new WebSocketForwarder({
      onDone: (record) => this.#onDone(record),
      onTunnel: (record) => this.#onTunnel(record),
    });
    this.#adminToken = options.adminToken ?? null;
    this.#metrics = new Metrics(this.events, { pools: () => this.#pools.values(), listeners: () => this.#listeners.values() });
  }

  get config(): Config {
    return this.#config;
  }

  get pools(): ReadonlyMap<string, PoolRuntime> {
    return this.#pools;
  }

  get listeners(): ReadonlyMap<string, Listener> {
    return this.#listeners;
  }

  /** Health round, then every listener bound; on a bind failure everything started is stopped and the error thrown. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error('proxy already started');
    this.#state = 'running';
    const deps = { events: this.events, logger: this.#logger, now: this.#now, onCheck: this.#metrics.check.bind(this.#metrics) };
    for (const [name, config] of Object.entries(this.#config.pools)) this.#pools.set(name, new PoolRuntime(name, config, deps));
    await Promise.all([...this.#pools.values()].map((p) => p.start()));
    try {
      for (const config of this.#config.listeners) {
        const listener: Listener =
          config.protocol === 'tcp'
            ? new TcpListener(config, this.#pools, { logger: this.#logger, onTunnel: (record) => this.#onTunnel(record) })
            : new HttpListener(config, this.#pools, {
                forwarder: this.#forwarder,
                upgrades: this.#websockets,
                logger: this.#logger,
                onDone: (record) => this.#onDone(record),
              });
        this.#listeners.set(config.name, listener);
        const address = await listener.listen();
        this.events.emit('listening', { listener: config.name, protocol: config.protocol, tls: config.tls !== undefined, address: `${address.address}:${address.port}` });
      }
      await this.#startAdmin();
    } catch (err) {
      await this.#closeEverything();
      this.#state = 'stopped';
      throw err;
    }
  }

  /** The bound address of a listener (useful with port 0). */
  address(listener: string): AddressInfo {
    const address = this.#listeners.get(listener)?.address();
    if (address === null || address === undefined) throw new Error(`listener ${listener} is not listening`);
    return address;
  }

  /** The bound address of the admin listener (useful with port 0). */
  adminAddress(): AddressInfo {
    const address = this.#admin?.address();
    if (address === null || address === undefined) throw new Error('the admin listener is not listening');
    return address;
  }

  /** After the traffic listeners: a bind failure fails startup like theirs (LISTEN_FAILED). */
  async #startAdmin(): Promise<void> {
    const admin = this.#config.admin;
    if (admin === undefined) return;
    this.#admin = new AdminServer({
      listen: admin.listen,
      token: this.#adminToken,
      host: new ProxyAdminHost(this, this.#now),
      events: this.events,
      metrics: this.#metrics,
      logger: this.#logger,
    });
    const address = await this.#admin.listen();
    this.events.emit('listening', { admin: true, protocol: 'http', tls: false, address: `${address.address}:${address.port}` });
  }

  // ---- MERGE: placeholders until the reload branch lands; replace this block with the real
  // `reload()`, `version` and `lastReload` (same signatures). The admin API (control/host.ts)
  // reads exactly these three. ----
  /** The running config version. */
  get version(): number {
    return 1;
  }

  /** The result of the last reload, or null before the first. */
  get lastReload(): ReloadResult | null {
    return null;
  }

  /** Same as SIGHUP: re-read the config file and apply it, all or nothing. */
  reload(): Promise<ReloadResult> {
    return Promise.resolve({ ok: false, version: 1, at: new Date().toISOString(), changes: [], errors: ['reload is not available in this build'] });
  }
  // ---- end MERGE ----

  /**
   * Graceful shutdown (SPEC §6): stop accepting, let in-flight requests finish with
   * `Connection: close`, close idle keep-alive connections at once, and everything still open
   * when `shutdown_timeout` passes.
   */
  async shutdown(): Promise<void> {
    if (this.#state !== 'running') return;
    this.#state = 'stopping';
    this.#forwarder.closing = true;
    this.#websockets.closing = true;
    const timeoutMs = this.#config.shutdown_timeout;
    this.events.emit('shutdown', { phase: 'draining', timeout_ms: timeoutMs });
    const drained = Promise.all([...this.#listeners.values()].map((l) => l.stopAccepting()));
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([drained.then(() => 'drained' as const), expired]);
    clearTimeout(timer);
    await this.#closeEverything();
    this.#state = 'stopped';
    this.events.emit('shutdown', { phase: 'stopped', outcome });
  }

  async #closeEverything(): Promise<void> {
    for (const pool of this.#pools.values()) pool.stop();
    for (const pool of this.#pools.values()) pool.closeConnections('shutdown');
    this.#websockets.closeAll();
    for (const listener of this.#listeners.values()) listener.closeAllConnections();
    await Promise.all([...this.#listeners.values()].map((l) => l.stopAccepting()));
    await this.#admin?.close();
  }

  #onDone(r: ExchangeRecord): void {
    this.#metrics.request(r);
    this.#access.info({
      listener: r.listener,
      pool: r.pool,
      backend: r.backend,
      method: r.method,
      path: r.path,
      status: r.status,
      duration_ms: Math.round(r.durationMs * 1000) / 1000,
      bytes: r.bytes,
      retries: r.retries,
      client: r.client,
      error: r.error ?? undefined,
      via: r.via === 'serving' ? undefined : r.via ?? undefined,
    });
  }

  /** One access-log line per tunnel (TCP connection or WebSocket), written when it closes. */
  #onTunnel(r: TunnelRecord): void {
    this.#access.info({
      listener: r.listener,
      pool: r.pool,
      backend: r.backend,
      tunnel: r.protocol,
      method: r.method ?? undefined,
      path: r.path ?? undefined,
      status: r.status ?? undefined,
      duration_ms: Math.round(r.durationMs * 1000) / 1000,
      bytes: r.bytesIn + r.bytesOut,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      retries: r.retries,
      client: r.client,
      reason: r.reason,
      error: r.error ?? undefined,
      via: r.via === 'serving' ? undefined : r.via ?? undefined,
    });
  }
}
