/**
 * Prometheus metrics (SPEC §8), every one declared in {@link METRICS} (envoy's
 * ALL_HEALTH_CHECKER_STATS idea): name, type, help and labels in one table that the registry is
 * built from and the README is checked against.
 *
 * Three ways values arrive:
 * - per request, through the forwarder's `onDone` hook ({@link Metrics.request}): the hot path,
 *   so label children are bound once per label combination and kept in nested maps — no label
 *   objects or key strings are built per request;
 * - per event, from the EventLog (promotions, releases, reloads) and per health check, from the
 *   pool runtime's `onCheck` hook;
 * - at scrape time, read from the pools and listeners (in-flight, up, serving, connections), so
 *   the request path never touches a gauge.
 *
 * Labels are limited to listener, pool, backend, role and the status class, plus `result` on
 * checks and reloads: all bounded by the config, never a path, host or client.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ExchangeRecord } from '../forward/http.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { isDnsName } from '../config/dns-names.js';
import { LOOKUP_FAILURES } from '../upstream/discovery.js';
import type { EventLog, ProxyEvent } from './events.js';
import type { TunnelRecord } from '../forward/tunnel.js';
import { hotwarmVersion } from '../version.js';
import { ProcessSampler } from './process-stats.js';
import type { BackendTotals } from './traffic-history.js';

/** Every metric hotwarm exports. */
export const METRICS = [
  { name: 'hotwarm_requests_total', type: 'counter', labels: ['listener', 'pool', 'backend', 'code'], help: 'HTTP requests answered, by status class (code: 1xx-5xx; a connection closed instead of answered counts as 5xx; backend is empty when none was chosen).' },
  { name: 'hotwarm_request_duration_seconds', type: 'histogram', labels: ['listener', 'pool', 'code'], help: 'Time from the request head to the end of the exchange, in seconds.' },
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
  { name: 'hotwarm_build_info', type: 'gauge', labels: ['version'], help: 'Always 1; the version label says which hotwarm runs.' },
  { name: 'hotwarm_config_version', type: 'gauge', labels: [], help: 'Config version: 1 at start, +1 per applied reload.' },
  { name: 'hotwarm_last_reload_success_timestamp_seconds', type: 'gauge', labels: [], help: 'When the config was last applied (seconds since the epoch): the start time before any reload.' },
  { name: 'hotwarm_process_cpu_seconds_total', type: 'counter', labels: [], help: 'CPU time (user + system) of the proxy process, in seconds.' },
  { name: 'hotwarm_process_resident_memory_bytes', type: 'gauge', labels: [], help: 'Resident memory of the proxy process, in bytes.' },
  { name: 'hotwarm_process_open_fds', type: 'gauge', labels: [], help: 'Open file descriptors of the proxy process (Linux).' },
  { name: 'hotwarm_event_loop_lag_seconds', type: 'gauge', labels: [], help: 'Mean event-loop delay since the previous scrape, in seconds.' },
  { name: 'hotwarm_listener_bytes_total', type: 'counter', labels: ['listener', 'direction'], help: 'Traffic bytes through the listener (in: from clients, out: to clients); HTTP counts bodies, tunnels every byte.' },
  { name: 'hotwarm_backend_bytes_total', type: 'counter', labels: ['pool', 'backend', 'direction'], help: 'Traffic bytes exchanged with the backend (in: from clients to it, out: from it to clients); health checks are not counted.' },
  { name: 'hotwarm_discovery_failures_total', type: 'counter', labels: ['pool', 'result'], help: 'DNS lookups for discover entries and names in address that gave no answer, by result (nxdomain, empty, timeout, servfail, refused, error).' },
] as const;

type Spec = (typeof METRICS)[number];
type NameOf<T extends Spec['type']> = Extract<Spec, { type: T }>['name'];

/** Seconds: from a fast local hit to the default 30 s response timeout. */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Status classes by `floor(status / 100)`; status 0 (closed instead of answered) is 5xx. */
const CODE_CLASSES = ['5xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;

function classIndex(status: number): number {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c : 0;
}

/** A counter or histogram bound to fixed labels: what prom-client's `labels()` returns. */
interface CounterChild {
  inc(value?: number): void;
}
interface HistogramChild {
  observe(value: number): void;
}

/** Label children of one listener × pool. */
interface PoolSeries {
  readonly durations: readonly HistogramChild[];
  readonly retries: CounterChild;
  readonly noBackend: CounterChild;
  /** backend name ('' = none) → one child per status class. */
  readonly requests: Map<string, readonly CounterChild[]>;
  /** backend name → plain totals for the dashboard's traffic history. */
  readonly totals: Map<string, { requests: number; errors: number; durationMsSum: number }>;
}

/** The pools a listener sends to, from its config (for series present from the start). */
interface ListenerRouting {
  readonly pool?: string | undefined;
  readonly routes?: readonly { readonly pool: string }[] | undefined;
}

/** Where scrape-time values are read. */
export interface MetricsSource {
  pools(): Iterable<PoolRuntime>;
  listeners(): Iterable<{ readonly name: string; readonly openConnections: number; readonly config?: ListenerRouting }>;
}

interface BytesChildren {
  readonly in: CounterChild;
  readonly out: CounterChild;
}

export class Metrics {
  readonly #registry = new Registry();
  readonly #metrics = new Map<string, Counter | Gauge | Histogram>();
  readonly #source: MetricsSource;
  readonly #series = new Map<string, Map<string, PoolSeries>>();
  readonly #checks = new WeakMap<UpstreamBackend, { readonly ok: CounterChild; readonly fail: CounterChild }>();
  readonly #unsubscribe: () => void;
  readonly #process = new ProcessSampler();
  readonly #listenerBytes = new Map<string, BytesChildren>();
  /** pool → backend → bytes children. */
  readonly #backendBytes = new Map<string, Map<string, BytesChildren>>();
  #configVersion = 1;
  /** When the config was last applied (epoch ms): the start until a reload succeeds. */
  #appliedAt = Date.now();

  constructor(events: EventLog, source: MetricsSource) {
    this.#source = source;
    for (const spec of METRICS) {
      const config = { name: spec.name, help: spec.help, labelNames: [...spec.labels], registers: [this.#registry] };
      const metric =
        spec.type === 'counter' ? new Counter(config)
        : spec.type === 'gauge' ? new Gauge(config)
        : new Histogram({ ...config, buckets: DURATION_BUCKETS });
      this.#metrics.set(spec.name, metric);
    }
    this.#unsubscribe = events.subscribe((event) => this.#event(event));
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  /** One finished request (the `onDone` hook): cheap, no allocation once its labels were seen. */
  request(r: ExchangeRecord): void {
    const series = this.#poolSeries(r.listener, r.pool);
    const cls = classIndex(r.status);
    const backend = r.backend ?? '';
    let requests = series.requests.get(backend);
    if (requests === undefined) {
      const counter = this.#counter('hotwarm_requests_total');
      requests = CODE_CLASSES.map((code) => counter.labels(r.listener, r.pool, backend, code));
      series.requests.set(backend, requests);
      series.totals.set(backend, { requests: 0, errors: 0, durationMsSum: 0 });
    }
    const totals = series.totals.get(backend);
    if (totals !== undefined && backend !== '') {
      totals.requests++;
      if (cls === 0 || cls === 5) totals.errors++;
      totals.durationMsSum += r.durationMs;
    }
    (requests[cls] as CounterChild).inc();
    (series.durations[cls] as HistogramChild).observe(r.durationMs / 1000);
    if (r.retries > 0) series.retries.inc(r.retries);
    if (r.error === 'NO_SERVING_BACKEND' || r.error === 'ALL_BACKENDS_FULL') series.noBackend.inc();
    this.#bytes(r.listener, r.pool, r.backend, r.bytesIn ?? 0, r.bytes);
  }

  /** One closed tunnel (TCP connection or WebSocket): its bytes, both ways. */
  tunnel(r: TunnelRecord): void {
    this.#bytes(r.listener, r.pool, r.backend, r.bytesIn, r.bytesOut);
  }

  #bytes(listener: string, pool: string, backend: string | null, bytesIn: number, bytesOut: number): void {
    if (bytesIn === 0 && bytesOut === 0) return;
    let l = this.#listenerBytes.get(listener);
    if (l === undefined) {
      const counter = this.#counter('hotwarm_listener_bytes_total');
      l = { in: counter.labels(listener, 'in'), out: counter.labels(listener, 'out') };
      this.#listenerBytes.set(listener, l);
    }
    l.in.inc(bytesIn);
    l.out.inc(bytesOut);
    if (backend === null) return;
    let byBackend = this.#backendBytes.get(pool);
    if (byBackend === undefined) this.#backendBytes.set(pool, (byBackend = new Map()));
    let b = byBackend.get(backend);
    if (b === undefined) {
      const counter = this.#counter('hotwarm_backend_bytes_total');
      b = { in: counter.labels(pool, backend, 'in'), out: counter.labels(pool, backend, 'out') };
      byBackend.set(backend, b);
    }
    b.in.inc(bytesIn);
    b.out.inc(bytesOut);
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
    return this.#registry.metrics();
  }

  /**
   * Every series whose labels the config knows exists from the start, at 0, so an alert on it
   * sees a value before the first request, check or reload (adding 0 creates a series).
   */
  #prime(): void {
    const pools = new Map<string, PoolRuntime>();
    for (const pool of this.#source.pools()) pools.set(pool.name, pool);
    const requests = this.#counter('hotwarm_requests_total');
    const listenerBytes = this.#counter('hotwarm_listener_bytes_total');
    const backendBytes = this.#counter('hotwarm_backend_bytes_total');
    for (const l of this.#source.listeners()) {
      for (const direction of ['in', 'out']) listenerBytes.inc({ listener: l.name, direction }, 0);
      const routed = new Set<string>();
      if (l.config?.pool !== undefined) routed.add(l.config.pool);
      for (const route of l.config?.routes ?? []) routed.add(route.pool);
      for (const name of routed) {
        const pool = pools.get(name);
        if (pool === undefined) continue;
        this.#poolSeries(l.name, name);
        this.#counter('hotwarm_retries_total').inc({ listener: l.name, pool: name }, 0);
        this.#counter('hotwarm_no_backend_total').inc({ listener: l.name, pool: name }, 0);
        for (const code of CODE_CLASSES.slice(1)) {
          for (const b of pool.backends) requests.inc({ listener: l.name, pool: name, backend: b.name, code }, 0);
        }
      }
    }
    for (const pool of pools.values()) {
      for (const b of pool.backends) {
        const labels = { pool: pool.name, backend: b.name };
        this.#counter('hotwarm_promotions_total').inc(labels, 0);
        this.#counter('hotwarm_releases_total').inc(labels, 0);
        for (const result of ['ok', 'fail']) this.#counter('hotwarm_health_checks_total').inc({ ...labels, result }, 0);
        for (const direction of ['in', 'out']) backendBytes.inc({ ...labels, direction }, 0);
      }
    }
    for (const result of ['ok', 'failed']) this.#counter('hotwarm_reloads_total').inc({ result }, 0);
  }

  /** Each backend's request totals per listener (the dashboard's traffic history sums them). */
  *backendTotals(): Iterable<BackendTotals> {
    for (const byPool of this.#series.values()) {
      for (const [pool, series] of byPool) {
        for (const [backend, t] of series.totals) {
          if (backend !== '') yield { pool, backend, requests: t.requests, errors: t.errors, durationMsSum: t.durationMsSum };
        }
      }
    }
  }

  /** Stops listening to events and sampling the event loop. */
  close(): void {
    this.#unsubscribe();
    this.#process.close();
  }

  #poolSeries(listener: string, pool: string): PoolSeries {
    let byPool = this.#series.get(listener);
    if (byPool === undefined) {
      byPool = new Map();
      this.#series.set(listener, byPool);
    }
    let series = byPool.get(pool);
    if (series === undefined) {
      const durations = this.#histogram('hotwarm_request_duration_seconds');
      // Every observation of this listener × pool goes through this series: zeroing it now,
      // before the first, clobbers nothing and makes the histogram visible from the start.
      for (const code of CODE_CLASSES.slice(1)) durations.zero({ listener, pool, code });
      series = {
        durations: CODE_CLASSES.map((code) => durations.labels(listener, pool, code)),
        retries: this.#counter('hotwarm_retries_total').labels(listener, pool),
        noBackend: this.#counter('hotwarm_no_backend_total').labels(listener, pool),
        requests: new Map(),
        totals: new Map(),
      };
      byPool.set(pool, series);
    }
    return series;
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
  }

  #counter(name: NameOf<'counter'>): Counter {
    return this.#metrics.get(name) as Counter;
  }

  #gauge(name: NameOf<'gauge'>): Gauge {
    return this.#metrics.get(name) as Gauge;
  }

  #histogram(name: NameOf<'histogram'>): Histogram {
    return this.#metrics.get(name) as Histogram;
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

function usesDns(config: PoolRuntime['config']): boolean {
  return (config.discover?.length ?? 0) > 0 || config.backends.some((b) => isDnsName(b.address.host));
}
