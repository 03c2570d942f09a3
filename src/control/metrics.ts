/**
 * Prometheus metrics (SPEC §8), every one declared in {@link METRICS} (envoy's
 * ALL_HEALTH_CHECKER_STATS idea): name, type, help and labels in one table that the registry is
 * built from and docs/metrics.md is checked against.
 *
 * Three ways values arrive:
 * - per request, through the forwarder's `onDone` hook ({@link Metrics.request}): the hot path,
 *   counted in plain arrays by tally.ts (no label hashing) and rendered at scrape time; with
 *   workers, each worker's tally deltas are added up here (SPEC §9: one view of the host);
 * - per event, from the EventLog (promotions, releases, reloads) and per health check, from the
 *   pool runtime's `onCheck` hook;
 * - at scrape time, read from the pools and listeners (in-flight, up, serving, connections), so
 *   the request path never touches a gauge.
 *
 * Labels are limited to listener, pool, backend, role, the status class and the client protocol
 * (`http1`, `http2`), plus `result` on
 * checks and reloads and `worker` (1..N) on per-worker process metrics: all bounded by the
 * config, never a path, host or client.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ExchangeRecord } from '../records.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { isDnsName } from '../config/dns-names.js';
import { LOOKUP_FAILURES } from '../upstream/discovery.js';
import type { EventLog, ProxyEvent } from './events.js';
import type { TunnelRecord } from '../forward/tunnel.js';
import { hotwarmVersion } from '../version.js';
import { ProcessSampler } from './process-stats.js';
import type { BackendTotals } from './traffic-history.js';
import { RequestTally, type SeriesDelta } from './tally.js';
import type { Counts } from './counts.js';

/** Every metric hotwarm exports. */
export const METRICS = [
  { name: 'hotwarm_requests_total', type: 'counter', labels: ['listener', 'pool', 'backend', 'code', 'protocol'], help: 'HTTP requests answered, by status class (code: 1xx-5xx; a connection closed instead of answered counts as 5xx; backend is empty when none was chosen).' },
  { name: 'hotwarm_request_duration_seconds', type: 'histogram', labels: ['listener', 'pool', 'code', 'protocol'], help: 'Time from the request head to the end of the exchange, in seconds (protocol: http1 or http2, what the client spoke).' },
  { name: 'hotwarm_retries_total', type: 'counter', labels: ['listener', 'pool'], help: 'Retries of requests on another backend.' },
  { name: 'hotwarm_no_backend_total', type: 'counter', labels: ['listener', 'pool'], help: 'Requests answered 503 because no backend could take them (none serving, or all full).' },
  { name: 'hotwarm_backend_in_flight', type: 'gauge', labels: ['pool', 'backend', 'role'], help: 'HTTP requests in progress plus open tunnels on the backend.' },
  { name: 'hotwarm_backend_up', type: 'gauge', labels: ['pool', 'backend', 'role'], help: '1 when the backend is up by its health checks, else 0.' },
  { name: 'hotwarm_pool_capacity_ratio', type: 'gauge', labels: ['pool'], help: 'Serving capacity: the serving backends\' effective weights (slow start included) over the configured hot weight, 0-1.' },
  { name: 'hotwarm_backend_serving', type: 'gauge', labels: ['pool', 'backend', 'role'], help: '1 when the backend takes live traffic (a hot backend, or a promoted warm), else 0.' },
  { name: 'hotwarm_promotions_total', type: 'counter', labels: ['pool', 'backend'], help: 'Warm backends promoted (backend: the warm).' },
  { name: 'hotwarm_releases_total', type: 'counter', labels: ['pool', 'backend'], help: 'Promoted warm backends released back to standby (backend: the warm).' },
  { name: 'hotwarm_health_checks_total', type: 'counter', labels: ['pool', 'backend', 'result'], help: 'Active health checks, by result (ok, fail).' },
  { name: 'hotwarm_reloads_total', type: 'counter', labels: ['result'], help: 'Configuration reloads, by result (ok, failed).' },
  { name: 'hotwarm_client_connections', type: 'gauge', labels: ['listener'], help: 'Open client connections per listener.' },
  { name: 'hotwarm_workers', type: 'gauge', labels: [], help: 'Worker processes running (1 when hotwarm runs as a single process).' },
  { name: 'hotwarm_worker_resident_memory_bytes', type: 'gauge', labels: ['worker'], help: 'Resident memory of each worker process, as it last reported.' },
  { name: 'hotwarm_worker_cpu_seconds_total', type: 'counter', labels: ['worker'], help: 'CPU time (user + system) of each worker process, as it last reported.' },
  { name: 'hotwarm_worker_event_loop_lag_seconds', type: 'gauge', labels: ['worker'], help: 'Mean event-loop delay of each worker over the second before its last report, in seconds.' },
  { name: 'hotwarm_worker_in_flight', type: 'gauge', labels: ['worker'], help: 'HTTP requests in progress plus open tunnels on each worker.' },
  { name: 'hotwarm_worker_restarts_total', type: 'counter', labels: ['worker'], help: 'Times a worker process died and was replaced.' },
  { name: 'hotwarm_build_info', type: 'gauge', labels: ['version'], help: 'Always 1; the version label says which hotwarm runs.' },
  { name: 'hotwarm_config_version', type: 'gauge', labels: [], help: 'Config version: 1 at start, +1 per applied reload.' },
  { name: 'hotwarm_last_reload_success_timestamp_seconds', type: 'gauge', labels: [], help: 'When the config was last applied (seconds since the epoch): the start time before any reload.' },
  { name: 'hotwarm_process_cpu_seconds_total', type: 'counter', labels: [], help: 'CPU time (user + system) of the proxy process (the primary, with workers), in seconds.' },
  { name: 'hotwarm_process_resident_memory_bytes', type: 'gauge', labels: [], help: 'Resident memory of the proxy process (the primary, with workers), in bytes.' },
  { name: 'hotwarm_process_open_fds', type: 'gauge', labels: [], help: 'Open file descriptors of the proxy process (the primary, with workers; Linux).' },
  { name: 'hotwarm_event_loop_lag_seconds', type: 'gauge', labels: [], help: 'Mean event-loop delay of the proxy process (the primary, with workers) since the previous scrape, in seconds.' },
  { name: 'hotwarm_listener_bytes_total', type: 'counter', labels: ['listener', 'direction'], help: 'Traffic bytes through the listener (in: from clients, out: to clients); HTTP counts bodies, tunnels every byte.' },
  { name: 'hotwarm_backend_bytes_total', type: 'counter', labels: ['pool', 'backend', 'direction'], help: 'Traffic bytes exchanged with the backend (in: from clients to it, out: from it to clients); health checks are not counted.' },
  { name: 'hotwarm_discovery_failures_total', type: 'counter', labels: ['pool', 'result'], help: 'DNS lookups for discover entries and names in address that gave no answer, by result (nxdomain, empty, timeout, servfail, refused, error).' },
] as const;

/** Rendered from the tally (tally.ts), not registered with prom-client. */
const TALLIED: ReadonlySet<string> = new Set([
  'hotwarm_requests_total',
  'hotwarm_request_duration_seconds',
  'hotwarm_retries_total',
  'hotwarm_no_backend_total',
  'hotwarm_listener_bytes_total',
  'hotwarm_backend_bytes_total',
]);

/** The pools a listener sends to, from its config (for series present from the start). */
interface ListenerRouting {
  readonly pool?: string | undefined;
  readonly routes?: readonly { readonly pool: string }[] | undefined;
  readonly protocol?: string;
  readonly tls?: unknown;
  readonly http2?: boolean;
}

type Spec = (typeof METRICS)[number];
type NameOf<T extends Spec['type']> = Extract<Spec, { type: T }>['name'];

/** A counter bound to fixed labels: what prom-client's `labels()` returns. */
interface CounterChild {
  inc(value?: number): void;
}

/** One worker as the metrics show it (with one process there are none). */
export interface WorkerMetricsView {
  readonly id: number;
  readonly rssBytes: number;
  readonly cpuSeconds: number;
  readonly loopLagSeconds: number;
  readonly inFlight: number;
  readonly restarts: number;
}

/** Where scrape-time values are read. */
export interface MetricsSource {
  pools(): Iterable<PoolRuntime>;
  listeners(): Iterable<{ readonly name: string; readonly openConnections: number; readonly config?: object }>;
  /** Worker processes (absent or empty with one process). */
  workers?(): Iterable<WorkerMetricsView>;
}

export class Metrics implements Counts {
  readonly #registry = new Registry();
  readonly #metrics = new Map<string, Counter | Gauge | Histogram>();
  readonly #source: MetricsSource;
  readonly #tally = new RequestTally();
  readonly #checks = new WeakMap<UpstreamBackend, { readonly ok: CounterChild; readonly fail: CounterChild }>();
  readonly #unsubscribe: () => void;
  readonly #process = new ProcessSampler();
  #configVersion = 1;
  /** When the config was last applied (epoch ms): the start until a reload succeeds. */
  #appliedAt = Date.now();

  constructor(events: EventLog, source: MetricsSource) {
    this.#source = source;
    for (const spec of METRICS) {
      if (TALLIED.has(spec.name)) continue;
      const config = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [this.#registry] };
      const metric =
        spec.type === 'counter' ? new Counter(config)
        : spec.type === 'gauge' ? new Gauge(config)
        : new Histogram(config);
      this.#metrics.set(spec.name, metric);
    }
    this.#unsubscribe = events.subscribe((event) => this.#event(event));
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** One finished request (the `onDone` hook): a few array increments. */
  request(r: ExchangeRecord): void {
    this.#tally.request(r);
  }

  /** One closed tunnel (TCP connection or WebSocket): its bytes, both ways. */
  tunnel(r: TunnelRecord): void {
    this.#tally.tunnel(r.listener, r.pool, r.backend, r.bytesIn, r.bytesOut);
  }

  /** Each backend's request totals per listener (the dashboard's traffic history sums them). */
  backendTotals(): Iterable<BackendTotals> {
    return this.#tally.backendTotals();
  }

  /** A worker's counts since its last report (the primary adds up the host). */
  addWorkerCounts(deltas: readonly SeriesDelta[]): void {
    this.#tally.add(deltas);
  }

  /** What this process counted since the last call (a worker sends it to the primary). */
  takeCounts(): SeriesDelta[] {
    return this.#tally.take();
  }

  /** One active health check result (the pool runtime's `onCheck` hook). */
  check(backend: UpstreamBackend, ok: boolean): void {
    let children = this.#checks.get(backend);
    if (children === undefined) {
      const counter = this.#counter('hotwarm_health_checks_total');
      children = { ok: counter.labels(backend.pool, backend.name, 'ok'), fail: counter.labels(backend.pool, backend.name, 'fail') };
      this.#checks.set(backend, children);
    }
    (ok ? children.ok : children.fail).inc();
  }

  /** The Prometheus text exposition, with the scrape-time gauges read now. */
  async render(): Promise<string> {
    this.#collect();
    this.#prime();
    const stats = await this.#process.read();
    this.#gauge('hotwarm_build_info').set({ version: hotwarmVersion() }, 1);
    this.#gauge('hotwarm_config_version').set(this.#configVersion);
    this.#gauge('hotwarm_last_reload_success_timestamp_seconds').set(Math.round(this.#appliedAt) / 1000);
    const cpu = this.#counter('hotwarm_process_cpu_seconds_total');
    cpu.reset();
    cpu.inc(stats.cpuSeconds);
    this.#gauge('hotwarm_process_resident_memory_bytes').set(stats.residentBytes);
    if (stats.openFds !== null) this.#gauge('hotwarm_process_open_fds').set(stats.openFds);
    this.#gauge('hotwarm_event_loop_lag_seconds').set(stats.loopLagSeconds);
    const registered = await this.#registry.metrics();
    return `${this.#tally.render(helpOf)}\n${registered}`;
  }

  /** Stops listening to events and sampling the event loop. */
  close(): void {
    this.#unsubscribe();
    this.#process.close();
  }

  /**
   * Every series whose labels the config knows exists from the start, at 0, so an alert on it
   * sees a value before the first request, check or reload (adding 0 creates a series).
   */
  #prime(): void {
    const pools = new Map<string, PoolRuntime>();
    for (const pool of this.#source.pools()) pools.set(pool.name, pool);
    for (const l of this.#source.listeners()) {
      const routing = l.config as ListenerRouting | undefined;
      const routed = new Set<string>();
      if (routing?.pool !== undefined) routed.add(routing.pool);
      for (const route of routing?.routes ?? []) routed.add(route.pool);
      // HTTP/2 is known from the config too (a TLS http listener with `http2` offers it), and
      // that a tcp listener has no HTTP requests at all.
      const speaks =
        routing?.protocol === 'tcp' ? 'tcp'
        : routing?.protocol === 'http' && routing.tls !== undefined && routing.http2 === true ? 'h2'
        : 'http';
      for (const name of routed) {
        const pool = pools.get(name);
        if (pool !== undefined) this.#tally.prime(l.name, name, pool.backends.map((b) => b.name), speaks);
      }
    }
    for (const pool of pools.values()) {
      for (const b of pool.backends) {
        const labels = { pool: pool.name, backend: b.name };
        this.#counter('hotwarm_promotions_total').inc(labels, 0);
        this.#counter('hotwarm_releases_total').inc(labels, 0);
        for (const result of ['ok', 'fail']) this.#counter('hotwarm_health_checks_total').inc({ ...labels, result }, 0);
      }
    }
    for (const result of ['ok', 'failed']) this.#counter('hotwarm_reloads_total').inc({ result }, 0);
  }

  #event(event: ProxyEvent): void {
    switch (event.type) {
      case 'promoted':
        this.#counter('hotwarm_promotions_total').inc({ pool: String(event.pool), backend: String(event.backend) });
        break;
      case 'released':
        this.#counter('hotwarm_releases_total').inc({ pool: String(event.pool), backend: String(event.backend) });
        break;
      case 'reload':
        this.#counter('hotwarm_reloads_total').inc({ result: reloadSucceeded(event) ? 'ok' : 'failed' });
        if (reloadSucceeded(event)) {
          this.#appliedAt = Date.parse(event.time);
          if (typeof event.version === 'number') this.#configVersion = event.version;
        }
        break;
      case 'discovery_failed':
        this.#counter('hotwarm_discovery_failures_total').inc({ pool: String(event.pool), result: String(event.result) });
        break;
      default:
        break;
    }
  }

  /** Gauges are reset first, so backends and listeners removed by a reload disappear. */
  #collect(): void {
    const inFlight = this.#gauge('hotwarm_backend_in_flight');
    const up = this.#gauge('hotwarm_backend_up');
    const serving = this.#gauge('hotwarm_backend_serving');
    const connections = this.#gauge('hotwarm_client_connections');
    const capacity = this.#gauge('hotwarm_pool_capacity_ratio');
    for (const gauge of [inFlight, up, serving, connections, capacity]) gauge.reset();
    const discoveryFailures = this.#counter('hotwarm_discovery_failures_total');
    for (const pool of this.#source.pools()) {
      capacity.set({ pool: pool.name }, pool.capacity());
      // Pools that look names up show their failure counters from the start, at 0.
      if (usesDns(pool.config)) for (const result of LOOKUP_FAILURES) discoveryFailures.inc({ pool: pool.name, result }, 0);
      for (const b of pool.backends) {
        const labels = { pool: pool.name, backend: b.name, role: b.role };
        inFlight.set(labels, b.inFlight);
        up.set(labels, pool.core.memberState(b.name)?.health === 'up' ? 1 : 0);
        serving.set(labels, b.servingSince !== null ? 1 : 0);
      }
    }
    for (const l of this.#source.listeners()) connections.set({ listener: l.name }, l.openConnections);
    const workers = [...(this.#source.workers?.() ?? [])];
    this.#gauge('hotwarm_workers').set(Math.max(1, workers.length));
    const rss = this.#gauge('hotwarm_worker_resident_memory_bytes');
    const workerInFlight = this.#gauge('hotwarm_worker_in_flight');
    const cpu = this.#counter('hotwarm_worker_cpu_seconds_total');
    const restarts = this.#counter('hotwarm_worker_restarts_total');
    const lag = this.#gauge('hotwarm_worker_event_loop_lag_seconds');
    for (const metric of [rss, workerInFlight, cpu, restarts, lag]) metric.reset();
    for (const w of workers) {
      const labels = { worker: String(w.id) };
      rss.set(labels, w.rssBytes);
      workerInFlight.set(labels, w.inFlight);
      cpu.inc(labels, w.cpuSeconds);
      restarts.inc(labels, w.restarts);
      lag.set(labels, w.loopLagSeconds);
    }
  }

  #counter(name: NameOf<'counter'>): Counter {
    return this.#metrics.get(name) as Counter;
  }

  #gauge(name: NameOf<'gauge'>): Gauge {
    return this.#metrics.get(name) as Gauge;
  }

}

/**
 * A `reload` event reports success as `ok: true` (SPEC §8: "ok with the changes, or the
 * errors"); without an `ok` flag, a non-empty `errors` list means it failed.
 */
function reloadSucceeded(event: ProxyEvent): boolean {
  if (typeof event.ok === 'boolean') return event.ok;
  return !(Array.isArray(event.errors) && event.errors.length > 0);
}

function helpOf(name: string): string {
  return METRICS.find((m) => m.name === name)?.help ?? '';
}

function usesDns(config: PoolRuntime['config']): boolean {
  return (config.discover?.length ?? 0) > 0 || config.backends.some((b) => isDnsName(b.address.host));
}
