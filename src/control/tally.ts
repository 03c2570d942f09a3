/**
 * Per-request counters kept in plain arrays (SPEC §8–9): requests by backend and status class,
 * the duration histogram, retries and 503s for no backend, per listener × pool.
 *
 * prom-client hashes label values on every call, even on a bound child (≈ 6 µs per request in
 * this project's profile). Here a request costs two map lookups (listener, pool), one more for
 * the backend, and a few array increments; nothing is formatted until a scrape. A worker takes
 * its deltas every ~100 ms ({@link RequestTally.take}) and the primary adds them up
 * ({@link RequestTally.add}), so `/metrics` is one view of the host; with one process the same
 * tally is rendered in place.
 */
import type { ExchangeRecord } from '../records.js';

/** Seconds: from a fast local hit to the default 30 s response timeout. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] as const;

/** Status classes in render order; status 0 (closed instead of answered) and anything odd is 5xx. */
const CODE_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;
/** Client protocols (SPEC §11): each series is kept per protocol × status class. */
const PROTOCOLS = ['http1', 'http2'] as const;
/** Slots per series: protocol-major, then status class ({@link keyIndex}). */
const CLASSES = CODE_CLASSES.length * PROTOCOLS.length;

/** `code="…",protocol="…"` of a slot. */
const KEY_LABELS = PROTOCOLS.flatMap((protocol) => CODE_CLASSES.map((code) => `code="${code}",protocol="${protocol}"`));

function keyIndex(r: ExchangeRecord): number {
  return (r.protocol === 'http2' ? CODE_CLASSES.length : 0) + classIndex(r.status);
}
/**
 * Per backend, after the {@link CLASSES} counts: the sum of durations (ms, for the dashboard's
 * latency), then traffic bytes in (from clients) and out (to clients).
 */
const DURATION_MS = CLASSES;
const BYTES_IN = CLASSES + 1;
const BYTES_OUT = CLASSES + 2;
const BACKEND_SLOTS = CLASSES + 3;
/** Buckets per class: the finite ones and +Inf. */
const SLOTS = DURATION_BUCKETS.length + 1;

function classIndex(status: number): number {
  const c = Math.floor(status / 100);
  return c >= 1 && c <= 5 ? c - 1 : 4;
}

function bucketIndex(seconds: number): number {
  for (let i = 0; i < DURATION_BUCKETS.length; i++) if (seconds <= (DURATION_BUCKETS[i] as number)) return i;
  return DURATION_BUCKETS.length;
}

function bump(array: Float64Array, index: number, by: number): void {
  array[index] = (array[index] as number) + by;
}

class Series {
  /** backend name ('' = none) → count per class, duration and bytes (BACKEND_SLOTS). */
  readonly requests = new Map<string, Float64Array>();
  /**
   * Known from the config: how many of its class slots are rendered with zeros from the start
   * (the HTTP/1 classes, and the HTTP/2 ones on a listener that offers h2); 0 = not known.
   */
  primedSlots = 0;
  /** Per class, per bucket (not cumulative; rendered cumulative). */
  readonly buckets = new Float64Array(CLASSES * SLOTS);
  readonly sums = new Float64Array(CLASSES);
  retries = 0;
  noBackend = 0;
  dirty = false;
}

/** One listener × pool's counts since the last take, as plain data (it crosses IPC). */
export interface SeriesDelta {
  readonly listener: string;
  readonly pool: string;
  readonly requests: readonly (readonly [string, readonly number[]])[];
  readonly buckets: readonly number[];
  readonly sums: readonly number[];
  readonly retries: number;
  readonly noBackend: number;
}

export class RequestTally {
  readonly #series = new Map<string, Map<string, Series>>();

  /** One finished request: the hot path. */
  request(r: ExchangeRecord): void {
    const series = this.#get(r.listener, r.pool);
    const cls = keyIndex(r);
    const requests = this.#backend(series, r.backend ?? '');
    bump(requests, cls, 1);
    bump(requests, DURATION_MS, r.durationMs);
    bump(requests, BYTES_IN, r.bytesIn ?? 0);
    bump(requests, BYTES_OUT, r.bytes);
    const seconds = r.durationMs / 1000;
    bump(series.buckets, cls * SLOTS + bucketIndex(seconds), 1);
    bump(series.sums, cls, seconds);
    if (r.retries > 0) series.retries += r.retries;
    if (r.error === 'NO_SERVING_BACKEND' || r.error === 'ALL_BACKENDS_FULL') series.noBackend++;
    series.dirty = true;
  }

  /** A closed tunnel's bytes (a TCP connection or WebSocket: not a request). */
  tunnel(listener: string, pool: string, backend: string | null, bytesIn: number, bytesOut: number): void {
    const series = this.#get(listener, pool);
    const counts = this.#backend(series, backend ?? '');
    bump(counts, BYTES_IN, bytesIn);
    bump(counts, BYTES_OUT, bytesOut);
    series.dirty = true;
  }

  /**
   * A listener × pool and its backends known from the config: shown at 0 from the start. What a
   * listener speaks decides which: an `http` listener's requests for HTTP/1, and for HTTP/2 too
   * when it offers h2 (`h2`); a `tcp` listener has no requests, only its bytes.
   */
  prime(listener: string, pool: string, backends: Iterable<string>, speaks: 'tcp' | 'http' | 'h2' = 'http'): void {
    const series = this.#get(listener, pool);
    series.primedSlots = speaks === 'h2' ? CLASSES : speaks === 'http' ? CODE_CLASSES.length : 0;
    for (const backend of backends) this.#backend(series, backend);
  }

  /** Each backend's totals per listener (the dashboard's traffic history sums them). */
  *backendTotals(): Iterable<{ pool: string; backend: string; requests: number; errors: number; durationMsSum: number }> {
    for (const byPool of this.#series.values()) {
      for (const [pool, s] of byPool) {
        for (const [backend, c] of s.requests) {
          if (backend === '') continue;
          let requests = 0;
          for (let i = 0; i < CLASSES; i++) requests += c[i] as number;
          // 5xx of each protocol (the last class of each).
          let errors = 0;
          for (let p = 0; p < PROTOCOLS.length; p++) errors += c[(p + 1) * CODE_CLASSES.length - 1] as number;
          yield { pool, backend, requests, errors, durationMsSum: c[DURATION_MS] as number };
        }
      }
    }
  }

  #backend(series: Series, backend: string): Float64Array {
    let counts = series.requests.get(backend);
    if (counts === undefined) {
      counts = new Float64Array(BACKEND_SLOTS);
      series.requests.set(backend, counts);
    }
    return counts;
  }

  /** What was counted since the last call, then zeroed here (a worker sends it to the primary). */
  take(): SeriesDelta[] {
    const out: SeriesDelta[] = [];
    for (const [listener, byPool] of this.#series) {
      for (const [pool, s] of byPool) {
        if (!s.dirty) continue;
        out.push({
          listener,
          pool,
          requests: [...s.requests].filter(([, counts]) => counts.some((n) => n > 0)).map(([backend, counts]) => [backend, Array.from(counts)] as const),
          buckets: Array.from(s.buckets),
          sums: Array.from(s.sums),
          retries: s.retries,
          noBackend: s.noBackend,
        });
        for (const counts of s.requests.values()) counts.fill(0);
        s.buckets.fill(0);
        s.sums.fill(0);
        s.retries = 0;
        s.noBackend = 0;
        s.dirty = false;
      }
    }
    return out;
  }

  /** Adds a worker's deltas (the primary). Malformed arrays are ignored slot by slot. */
  add(deltas: readonly SeriesDelta[]): void {
    for (const d of deltas) {
      const s = this.#get(d.listener, d.pool);
      for (const [backend, counts] of d.requests) {
        const own = this.#backend(s, backend);
        for (let i = 0; i < BACKEND_SLOTS; i++) bump(own, i, counts[i] ?? 0);
      }
      for (let i = 0; i < s.buckets.length; i++) bump(s.buckets, i, d.buckets[i] ?? 0);
      for (let i = 0; i < CLASSES; i++) bump(s.sums, i, d.sums[i] ?? 0);
      s.retries += d.retries;
      s.noBackend += d.noBackend;
    }
  }

  /** The Prometheus text of the four per-request metrics, `help` from the one metrics table. */
  render(help: (name: string) => string): string {
    const requests: string[] = [];
    const durations: string[] = [];
    const retries: string[] = [];
    const noBackend: string[] = [];
    const listenerBytes = new Map<string, [number, number]>();
    const backendBytes = new Map<string, [number, number]>();
    const add = (map: Map<string, [number, number]>, key: string, bytesIn: number, bytesOut: number): void => {
      const sum = map.get(key) ?? [0, 0];
      map.set(key, [sum[0] + bytesIn, sum[1] + bytesOut]);
    };
    for (const [listener, byPool] of this.#series) {
      for (const [pool, s] of byPool) {
        const lp = `listener="${listener}",pool="${pool}"`;
        for (const [backend, counts] of s.requests) {
          // A backend known from the config shows its classes from the start, at 0.
          const primed = backend !== '' ? s.primedSlots : 0;
          for (let c = 0; c < CLASSES; c++) if (c < primed || (counts[c] as number) > 0) requests.push(`hotwarm_requests_total{${lp},backend="${backend}",${KEY_LABELS[c]}} ${counts[c]}`);
          add(listenerBytes, `listener="${listener}"`, counts[BYTES_IN] as number, counts[BYTES_OUT] as number);
          if (backend !== '') add(backendBytes, `pool="${pool}",backend="${backend}"`, counts[BYTES_IN] as number, counts[BYTES_OUT] as number);
        }
        for (let c = 0; c < CLASSES; c++) {
          let cumulative = 0;
          for (let b = 0; b < SLOTS; b++) cumulative += s.buckets[c * SLOTS + b] as number;
          if (cumulative === 0 && c >= s.primedSlots) continue;
          const labels = `${lp},${KEY_LABELS[c]}`;
          let running = 0;
          for (let b = 0; b < SLOTS; b++) {
            running += s.buckets[c * SLOTS + b] as number;
            const le = b < DURATION_BUCKETS.length ? String(DURATION_BUCKETS[b]) : '+Inf';
            durations.push(`hotwarm_request_duration_seconds_bucket{le="${le}",${labels}} ${running}`);
          }
          durations.push(`hotwarm_request_duration_seconds_sum{${labels}} ${s.sums[c]}`);
          durations.push(`hotwarm_request_duration_seconds_count{${labels}} ${cumulative}`);
        }
        if (s.retries > 0 || s.primedSlots > 0) retries.push(`hotwarm_retries_total{${lp}} ${s.retries}`);
        if (s.noBackend > 0 || s.primedSlots > 0) noBackend.push(`hotwarm_no_backend_total{${lp}} ${s.noBackend}`);
      }
    }
    const block = (name: string, type: string, lines: string[]): string => `# HELP ${name} ${help(name)}\n# TYPE ${name} ${type}\n${lines.map((l) => `${l}\n`).join('')}`;
    return [
      block('hotwarm_requests_total', 'counter', requests),
      block('hotwarm_request_duration_seconds', 'histogram', durations),
      block('hotwarm_retries_total', 'counter', retries),
      block('hotwarm_no_backend_total', 'counter', noBackend),
      block('hotwarm_listener_bytes_total', 'counter', [...listenerBytes].flatMap(([l, [i, o]]) => [`hotwarm_listener_bytes_total{${l},direction="in"} ${i}`, `hotwarm_listener_bytes_total{${l},direction="out"} ${o}`])),
      block('hotwarm_backend_bytes_total', 'counter', [...backendBytes].flatMap(([b, [i, o]]) => [`hotwarm_backend_bytes_total{${b},direction="in"} ${i}`, `hotwarm_backend_bytes_total{${b},direction="out"} ${o}`])),
    ].join('\n');
  }

  #get(listener: string, pool: string): Series {
    let byPool = this.#series.get(listener);
    if (byPool === undefined) {
      byPool = new Map();
      this.#series.set(listener, byPool);
    }
    let series = byPool.get(pool);
    if (series === undefined) {
      series = new Series();
      byPool.set(pool, series);
    }
    return series;
  }
}
