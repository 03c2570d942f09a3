/**
 * Prometheus metrics (SPEC §8), every one declared in {@link METRICS} (envoy's
 * ALL_HEALTH_CHECKER_STATS idea): name, type, help and labels in one table that the registry is
 * built from and the README is checked against.
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
import { RequestTally, type SeriesDelta } from './tally.js';

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
  { name: 'hotwarm_worker_in_flight', type: 'gauge', labels: ['worker'], help: 'HTTP requests in progress plus open tunnels on each worker.' },
  { name: 'hotwarm_worker_restarts_total', type: 'counter', labels: ['worker'], help: 'Times a worker process died and was replaced.' },
  { name: 'hotwarm_discovery_failures_total', type: 'counter', labels: ['pool', 'result'], help: 'DNS lookups for discover entries and names in address that gave no answer, by result (nxdomain, empty, timeout, servfail, refused, error).' },
] as const;

/** Rendered from the tally (tally.ts), not registered with prom-client. */
const TALLIED: ReadonlySet<string> = new Set(['hotwarm_requests_total', 'hotwarm_request_duration_seconds', 'hotwarm_retries_total', 'hotwarm_no_backend_total']);

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
  readonly inFlight: number;
  readonly restarts: number;
}

/** Where scrape-time values are read. */
export interface MetricsSource {
  pools(): Iterable<PoolRuntime>;
  listeners(): Iterable<{ readonly name: string; readonly openConnections: number }>;
  /** Worker processes (absent or empty with one process). */
  workers?(): Iterable<WorkerMetricsView>;
}

export class Metrics {
  readonly #registry = new Registry();
  readonly #metrics = new Map<string, Counter | Gauge | Histogram>();
  readonly #source: MetricsSource;
  readonly #tally = new RequestTally();
  readonly #checks = new WeakMap<UpstreamBackend, { readonly ok: CounterChild; readonly fail: CounterChild }>();
  readonly #unsubscribe: () => void;

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
    const registered = await this.#registry.metrics();
    return `${this.#tally.render(helpOf)}\n${registered}`;
  }

  /** Stops listening to events. */
  close(): void {
    this.#unsubscribe();
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
    for (const metric of [rss, workerInFlight, cpu, restarts]) metric.reset();
    for (const w of workers) {
      const labels = { worker: String(w.id) };
      rss.set(labels, w.rssBytes);
      workerInFlight.set(labels, w.inFlight);
      cpu.inc(labels, w.cpuSeconds);
      restarts.inc(labels, w.restarts);
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
