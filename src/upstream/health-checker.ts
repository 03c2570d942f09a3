/**
 * Runs active checks for the backends of one pool: a startup round before listeners open,
 * then one timer per backend with jitter so checks across backends (and proxies) do not
 * align. Results go to the pool runtime, which feeds the rise/fall counters.
 */
import type { HealthCheckConfig } from '../config/schema.js';
import type { UpstreamBackend } from './backend.js';
import type { Clock, Scheduled } from './clock.js';
import { probe, type ProbeResult } from './probes.js';

export type CheckObserver = (backend: UpstreamBackend, result: ProbeResult) => void;

/** ±5 % of the interval: enough to spread checks, too little to matter for detection time. */
const JITTER = 0.05;

export class HealthChecker {
  #check: HealthCheckConfig;
  readonly #observe: CheckObserver;
  readonly #timers = new Map<UpstreamBackend, Scheduled>();
  readonly #clock: Clock;
  /** Backends whose probe is in flight: a removed backend's late result is dropped. */
  readonly #active = new Set<UpstreamBackend>();
  #stopped = false;

  constructor(check: HealthCheckConfig, observe: CheckObserver, clock: Clock) {
    this.#check = check;
    this.#clock = clock;
    this.#observe = observe;
  }

  /**
   * One check of each backend now (the startup round), results in the order of `backends`;
   * resolves when all have answered or timed out. The caller observes them.
   */
  probeAll(backends: readonly UpstreamBackend[]): Promise<ProbeResult[]> {
    return Promise.all(backends.map((b) => probe(b, this.#check)));
  }

  /** Starts periodic checks of `backend` (idempotent). */
  watch(backend: UpstreamBackend, firstDelayMs = this.#nextDelay()): void {
    if (this.#stopped || this.#timers.has(backend)) return;
    this.#active.add(backend);
    this.#schedule(backend, firstDelayMs);
  }

  unwatch(backend: UpstreamBackend): void {
    const timer = this.#timers.get(backend);
    timer?.cancel();
    this.#timers.delete(backend);
    this.#active.delete(backend);
  }

  /** New thresholds and intervals apply from each backend's next check. */
  reconfigure(check: HealthCheckConfig): void {
    this.#check = check;
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
    this.#active.clear();
  }

  #nextDelay(): number {
    const interval = this.#check.interval;
    return Math.max(1, Math.round(interval * (1 - JITTER + Math.random() * 2 * JITTER)));
  }

  #schedule(backend: UpstreamBackend, delayMs: number): void {
    const timer = this.#clock.schedule(delayMs, () => {
      this.#timers.delete(backend);
      void this.#runOnce(backend).then(() => {
        if (!this.#stopped && this.#active.has(backend)) this.#schedule(backend, this.#nextDelay());
      });
    });
    this.#timers.set(backend, timer);
  }

  /** A result is dropped if the backend was unwatched (removed by a reload) while its probe ran. */
  async #runOnce(backend: UpstreamBackend): Promise<void> {
    const result = await probe(backend, this.#check);
    if (this.#stopped || !this.#active.has(backend)) return;
    this.#observe(backend, result);
  }
}
