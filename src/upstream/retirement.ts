/**
 * Backends that left their pool in a reload (removed, replaced, or in a removed pool) and are
 * draining (SPEC §6). They take no new work — the pool no longer selects them — but the
 * requests and tunnels they carry go on: the forwarder holds the backend object and releases
 * it as usual. A backend is closed (tunnels, then its keep-alive agent) as soon as it carries
 * nothing, or when `drain_timeout` runs out, whichever comes first.
 */
import type { UpstreamBackend } from './backend.js';
import type { Clock, Scheduled } from './clock.js';

export class Retirement {
  readonly #draining = new Map<UpstreamBackend, Scheduled>();
  #waiters: (() => void)[] = [];
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get size(): number {
    return this.#draining.size;
  }

  /** Starts draining `backend`; it is closed at once if it carries nothing. */
  retire(backend: UpstreamBackend, drainMs: number): void {
    if (this.#draining.has(backend)) return;
    if (backend.inFlight <= 0) {
      backend.closeAll('removed');
      return;
    }
    const timer = this.#clock.schedule(drainMs, () => this.#finish(backend, 'drain timeout'));
    this.#draining.set(backend, timer);
  }

  /** Called after each release of a backend: a draining one that carries nothing more is closed. */
  released(backend: UpstreamBackend): void {
    if (backend.inFlight <= 0 && this.#draining.has(backend)) this.#finish(backend, 'removed');
  }

  /** Resolves once nothing is draining. */
  drained(): Promise<void> {
    if (this.#draining.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Shutdown: closes every draining backend now. */
  closeAll(reason: string): void {
    for (const backend of [...this.#draining.keys()]) this.#finish(backend, reason);
  }

  #finish(backend: UpstreamBackend, reason: string): void {
    const timer = this.#draining.get(backend);
    if (timer === undefined) return;
    timer.cancel();
    this.#draining.delete(backend);
    backend.closeAll(reason);
    if (this.#draining.size > 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const resolve of waiters) resolve();
  }
}
