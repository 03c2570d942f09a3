/**
 * The last minutes of each backend's traffic, for the dashboard's charts: request rate, error
 * rate (5xx, and connections closed instead of answered) and mean latency, sampled every few
 * seconds from cumulative totals (so it is the same sum over listeners — and workers — that
 * `/metrics` shows). A fixed ring per backend: memory is bounded by the config.
 */

/** Cumulative counts of one backend on one listener (summed here over listeners). */
export interface BackendTotals {
  readonly pool: string;
  readonly backend: string;
  readonly requests: number;
  readonly errors: number;
  readonly durationMsSum: number;
}

/** What `/status` shows per backend: oldest first, one value per `interval_ms`. */
export interface TrafficSeries {
  readonly interval_ms: number;
  /** Requests per second over each interval. */
  readonly requests_per_s: readonly number[];
  /** Errors (5xx, or closed unanswered) per second over each interval. */
  readonly errors_per_s: readonly number[];
  /** Mean latency in ms over each interval; null where there were no requests. */
  readonly latency_ms: readonly (number | null)[];
}

interface Ring {
  last: { requests: number; errors: number; durationMsSum: number };
  readonly requests: number[];
  readonly errors: number[];
  readonly latency: (number | null)[];
}

export interface TrafficHistoryOptions {
  readonly intervalMs?: number;
  /** How many intervals are kept. */
  readonly samples?: number;
}

export class TrafficHistory {
  readonly #read: () => Iterable<BackendTotals>;
  readonly #intervalMs: number;
  readonly #samples: number;
  readonly #rings = new Map<string, Map<string, Ring>>();
  #timer: NodeJS.Timeout | null = null;

  constructor(read: () => Iterable<BackendTotals>, options: TrafficHistoryOptions = {}) {
    this.#read = read;
    this.#intervalMs = options.intervalMs ?? 2_000;
    this.#samples = options.samples ?? 120;
  }

  /** Samples every interval until {@link stop}; the timer never keeps the process up. */
  start(): void {
    if (this.#timer !== null) return;
    this.#timer = setInterval(() => this.sample(), this.#intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** Takes one sample: the change of each backend's totals since the previous one. */
  sample(): void {
    const sums = new Map<string, Map<string, { requests: number; errors: number; durationMsSum: number }>>();
    for (const t of this.#read()) {
      let byBackend = sums.get(t.pool);
      if (byBackend === undefined) sums.set(t.pool, (byBackend = new Map()));
      const sum = byBackend.get(t.backend) ?? { requests: 0, errors: 0, durationMsSum: 0 };
      byBackend.set(t.backend, { requests: sum.requests + t.requests, errors: sum.errors + t.errors, durationMsSum: sum.durationMsSum + t.durationMsSum });
    }
    const seconds = this.#intervalMs / 1000;
    for (const [pool, byBackend] of sums) {
      let rings = this.#rings.get(pool);
      if (rings === undefined) this.#rings.set(pool, (rings = new Map()));
      for (const [backend, now] of byBackend) {
        let ring = rings.get(backend);
        if (ring === undefined) {
          // First sight: the totals so far are the baseline (they may predate the first sample).
          ring = { last: { requests: 0, errors: 0, durationMsSum: 0 }, requests: [], errors: [], latency: [] };
          rings.set(backend, ring);
        }
        const requests = Math.max(0, now.requests - ring.last.requests);
        const errors = Math.max(0, now.errors - ring.last.errors);
        const duration = Math.max(0, now.durationMsSum - ring.last.durationMsSum);
        ring.last = now;
        push(ring.requests, round(requests / seconds), this.#samples);
        push(ring.errors, round(errors / seconds), this.#samples);
        push(ring.latency, requests > 0 ? round(duration / requests) : null, this.#samples);
      }
    }
  }

  /** The backend's series, or empty series when it has had no traffic yet. */
  of(pool: string, backend: string): TrafficSeries {
    const ring = this.#rings.get(pool)?.get(backend);
    return {
      interval_ms: this.#intervalMs,
      requests_per_s: ring ? ring.requests.slice() : [],
      errors_per_s: ring ? ring.errors.slice() : [],
      latency_ms: ring ? ring.latency.slice() : [],
    };
  }
}

function push<T>(array: T[], value: T, max: number): void {
  array.push(value);
  if (array.length > max) array.shift();
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
