/**
 * A worker process (SPEC §9): the data plane. It runs the same Proxy as a single process, with
 * pools that decide nothing (they balance over the primary's snapshots and report passive
 * evidence) and without the admin API. It listens through node:cluster, so the primary holds
 * each listening socket and hands connections round-robin: a worker that dies loses no
 * connection still queued.
 *
 * It never outlives the primary: the IPC channel closing (the primary died, even by SIGKILL)
 * ends it at once, and so does a change of parent process.
 */
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { diffConfig } from '../config/diff.js';
import type { Config } from '../config/schema.js';
import { EventLog } from '../control/events.js';
import { ProxyError } from '../errors.js';
import { createLogger, flushLogger, type Logger } from '../log.js';
import { LogSink } from '../log-sink.js';
import { Proxy } from '../proxy.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { STATS_INTERVAL_MS, type BoundAddress, type FromWorker, type Snapshot, type ToWorker } from './protocol.js';

/** How often a worker checks that its parent is still the primary that started it. */
const ORPHAN_CHECK_MS = 500;
/** Reports (every STATS_INTERVAL_MS) per read of the process figures: once a second. */
const PROCESS_EVERY = 10;

/** Events the primary emits itself, once for the host: a worker's own are not forwarded. */
const NOT_FORWARDED: ReadonlySet<string> = new Set(['listening', 'shutdown']);

function send(message: FromWorker): void {
  if (process.connected) process.send?.(message);
}

function freeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) freeze(v);
    Object.freeze(value);
  }
  return value;
}

function format(address: AddressInfo | null): string {
  if (address === null) return '';
  return address.family === 'IPv6' ? `[${address.address}]:${address.port}` : `${address.address}:${address.port}`;
}

class Worker {
  readonly #id: number;
  #proxy: Proxy | null = null;
  #logger: Logger | null = null;
  #seq = 0;
  #shift = 0;
  #prepared: { readonly gen: number; readonly value: Awaited<ReturnType<Proxy['prepare']>> } | null = null;
  #stopping = false;
  #sink: LogSink | null = null;
  /**
   * Process figures for `/status` and `/metrics` (RSS, CPU): read every {@link PROCESS_EVERY}th
   * report, not every 100 ms — each read is a few syscalls (`/proc/self/stat`, getrusage) that a
   * busy worker pays for nothing a scrape could tell apart.
   */
  #process = { rssBytes: 0, cpuSeconds: 0, loopLagSeconds: 0 };
  #reports = 0;
  /**
   * Event-loop lag, measured on the report timer itself (no timer of its own): how late each
   * 100 ms tick fires after the one before, summed over the ticks since the last process read.
   */
  #tickDue = 0;
  #lateMs = 0;
  #ticks = 0;

  constructor(id: number) {
    this.#id = id;
  }

  async handle(message: ToWorker): Promise<void> {
    switch (message.t) {
      case 'init':
        await this.#init(message.config, message.snapshot, message.stickyKey);
        return;
      case 'snapshot':
        this.#apply(message.snapshot);
        return;
      case 'verdict':
        this.#proxy?.pools.get(message.pool)?.verdict(message.backend);
        return;
      case 'members':
        this.#proxy?.followMembers(message.pool, freeze(message.config));
        return;
      case 'streak':
        this.#proxy?.pools.get(message.pool)?.streak(message.backend, message.open);
        return;
      case 'prepare':
        await this.#prepare(message.gen, freeze(message.config));
        return;
      case 'commit':
        this.#commit(message.gen, message.snapshot);
        return;
      case 'abort':
        if (this.#prepared?.gen === message.gen) this.#proxy?.abort(this.#prepared.value);
        this.#prepared = null;
        return;
      case 'shutdown':
        await this.#shutdown();
        return;
      case 'report':
        this.#report();
        return;
      case 'reopen':
        this.#sink?.reopen();
        return;
    }
  }

  async #init(config: Config, snapshot: Snapshot, stickyKey: string): Promise<void> {
    freeze(config);
    // The primary's log, written whole lines at a time by every process (log-sink.ts).
    this.#sink = new LogSink({ format: config.log.format, file: config.log.file ?? null, shared: true });
    const logger = createLogger({ level: config.log.level, destination: this.#sink, fields: { worker: this.#id } });
    this.#logger = logger;
    // Events are the primary's (its ring buffer, log and stream): forwarded, not logged here.
    const events = new EventLog(pino({ level: 'silent' }));
    events.subscribe((event) => {
      // After the listeners' close, on the same channel: the primary reads it after cluster's own
      // close message, so by then it has stopped handing this worker connections.
      if (event.type === 'shutdown' && event.phase === 'draining') send({ t: 'draining' });
      if (event.type === 'shutdown' && event.phase === 'stopped') send({ t: 'stopped', outcome: event.outcome === 'timeout' ? 'timeout' : 'drained' });
      if (NOT_FORWARDED.has(event.type)) return;
      const { seq: _seq, time: _time, type, ...details } = event;
      send({ t: 'event', type, details });
    });
    const proxy = new Proxy(config, {
      logger,
      env: process.env,
      stickyKey: Buffer.from(stickyKey, 'base64'),
      worker: {
        id: this.#id,
        events,
        brain: { report: (pool, backend, key, ok, detail) => send({ t: 'evidence', pool, backend, key, ok, detail }) },
        prime: (pools) => this.#adopt(pools, snapshot),
      },
    });
    this.#proxy = proxy;
    process.on('uncaughtException', (err) => logger.error({ err }, 'uncaught exception'));
    process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
    try {
      await proxy.start();
    } catch (err) {
      send({ t: 'failed', error: err instanceof ProxyError || err instanceof Error ? err.message : String(err) });
      await flushLogger(logger);
      process.exit(1);
    }
    send({ t: 'ready', addresses: this.#addresses(config.listeners.map((l) => l.name)) });
    setInterval(() => this.#tick(), STATS_INTERVAL_MS).unref();
  }

  #addresses(names: readonly string[]): BoundAddress[] {
    const proxy = this.#proxy as Proxy;
    return names.flatMap((name) => {
      const listener = proxy.listeners.get(name);
      return listener === undefined ? [] : [{ listener: name, address: format(listener.address()) }];
    });
  }

  #apply(snapshot: Snapshot): void {
    // Stale: a newer one is in place already (messages are ordered, but a commit carries its own).
    if (snapshot.seq <= this.#seq || this.#proxy === null) return;
    this.#adopt(this.#proxy.pools, snapshot);
    send({ t: 'applied', seq: snapshot.seq });
  }

  #adopt(pools: ReadonlyMap<string, PoolRuntime>, snapshot: Snapshot): void {
    this.#seq = snapshot.seq;
    // Serving times are on the primary's clock; this process's performance.now() has its own origin.
    this.#shift = snapshot.origin - performance.timeOrigin;
    for (const { name, state } of snapshot.pools) pools.get(name)?.adopt(state, this.#shift);
  }

  async #prepare(gen: number, config: Config): Promise<void> {
    const proxy = this.#proxy;
    if (proxy === null || this.#stopping) {
      send({ t: 'prepared', gen, ok: false, code: 'RELOAD_FAILED', errors: ['worker is not running'], addresses: [] });
      return;
    }
    try {
      const plan = diffConfig(proxy.config, config);
      const value = await proxy.prepare(config, plan);
      this.#prepared = { gen, value };
      const bound = [...value.bound.keys()];
      send({ t: 'prepared', gen, ok: true, code: '', errors: [], addresses: bound.map((name) => ({ listener: name, address: format(value.bound.get(name)?.address() ?? null) })) });
    } catch (err) {
      const errors = err instanceof Error && 'errors' in err && Array.isArray(err.errors) ? (err.errors as string[]) : [err instanceof Error ? err.message : String(err)];
      const code = err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : 'RELOAD_FAILED';
      send({ t: 'prepared', gen, ok: false, code, errors, addresses: [] });
    }
  }

  #commit(gen: number, snapshot: Snapshot): void {
    const prepared = this.#prepared;
    this.#prepared = null;
    if (prepared === null || prepared.gen !== gen || this.#proxy === null) return;
    this.#proxy.commit(prepared.value);
    this.#apply(snapshot);
  }

  #tick(): void {
    const now = performance.now();
    if (this.#tickDue > 0) {
      this.#lateMs += Math.max(0, now - this.#tickDue);
      this.#ticks++;
    }
    this.#tickDue = now + STATS_INTERVAL_MS;
    this.#report();
  }

  #report(): void {
    const proxy = this.#proxy;
    if (proxy === null) return;
    const inFlight: [string, string, number][] = [];
    for (const pool of proxy.pools.values()) for (const b of pool.backends) if (b.inFlight > 0) inFlight.push([pool.name, b.name, b.inFlight]);
    if (this.#reports++ % PROCESS_EVERY === 0 || this.#stopping) {
      const cpu = process.cpuUsage();
      const loopLagSeconds = this.#ticks > 0 ? this.#lateMs / this.#ticks / 1000 : this.#process.loopLagSeconds;
      this.#lateMs = 0;
      this.#ticks = 0;
      this.#process = { rssBytes: process.memoryUsage.rss(), cpuSeconds: (cpu.user + cpu.system) / 1e6, loopLagSeconds };
    }
    send({
      t: 'stats',
      stats: {
        counts: proxy.takeCounts(),
        inFlight,
        connections: [...proxy.listeners.values()].map((l) => [l.name, l.openConnections] as const),
        requests: proxy.requests,
        rssBytes: this.#process.rssBytes,
        cpuSeconds: this.#process.cpuSeconds,
        loopLagSeconds: this.#process.loopLagSeconds,
      },
    });
  }

  async #shutdown(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    const proxy = this.#proxy;
    if (proxy !== null) {
      await proxy.shutdown().catch((err: unknown) => this.#logger?.error({ err }, 'shutdown failed'));
      this.#report();
    }
    if (this.#logger !== null) await flushLogger(this.#logger);
    process.exit(0);
  }
}

/** The worker process's entry (worker-main.ts). */
export function runWorker(): void {
  const id = Number(process.env.HOTWARM_WORKER_ID ?? '0');
  const worker = new Worker(id);
  // The primary is gone (even SIGKILLed: the kernel closes the channel): nothing may outlive it.
  // It may have gone while this module loaded, before the listener existed: hence the checks.
  process.on('disconnect', () => process.exit(1));
  const primary = Number(process.env.HOTWARM_PRIMARY_PID ?? process.ppid);
  const orphaned = (): boolean => !process.connected || process.ppid !== primary;
  if (orphaned()) process.exit(1);
  setInterval(() => {
    if (orphaned()) process.exit(1);
  }, ORPHAN_CHECK_MS).unref();
  // Signals are the primary's to take: a terminal's Ctrl-C reaches the whole process group.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
  process.on('message', (message: ToWorker) => {
    void worker.handle(message).catch((err: unknown) => {
      process.stderr.write(`hotwarm worker ${id}: ${err instanceof Error ? err.message : String(err)}\n`);
    });
  });
  send({ t: 'hello' });
}
