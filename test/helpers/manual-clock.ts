/**
 * Simulated time for the proxy's pools, checks, warm-ups, drains, DNS and tunnels (Envoy's
 * `SimulatedTimeSystem`): nothing scheduled on it runs until the test advances it, so a test
 * says "200 ms pass" instead of sleeping 200 ms and hoping the machine kept up. Sockets stay real:
 * after each step the test waits for what the step set off (a probe, an event) as usual.
 */
import type { Clock, Scheduled } from '../../src/upstream/clock.js';

interface Entry {
  readonly at: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

export class ManualClock implements Clock {
  #now: number;
  readonly #wallOrigin = Date.now();
  #seq = 0;
  readonly #queue: Entry[] = [];

  constructor(start = 1_000) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#wallOrigin + this.#now;
  }

  schedule(ms: number, fn: () => void): Scheduled {
    const entry: Entry = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false };
    this.#queue.push(entry);
    return { cancel: () => (entry.cancelled = true) };
  }

  /** Timers waiting to run. */
  get pending(): number {
    return this.#queue.filter((e) => !e.cancelled).length;
  }

  /**
   * Moves time forward by `ms`, running every timer that falls due, in order, each at its own
   * time (a timer scheduled by one that runs is run too if it falls within the step). Between
   * timers the event loop turns once, so the promise chains they start can go on.
   */
  async advance(ms: number): Promise<void> {
    const end = this.#now + ms;
    for (;;) {
      this.#queue.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.#queue.find((e) => !e.cancelled && e.at <= end);
      if (next === undefined) break;
      this.#queue.splice(this.#queue.indexOf(next), 1);
      this.#now = Math.max(this.#now, next.at);
      next.fn();
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    this.#now = end;
    for (let i = this.#queue.length - 1; i >= 0; i--) if (this.#queue[i]?.cancelled) this.#queue.splice(i, 1);
  }

  /**
   * Advances in steps of `stepMs` until `predicate` holds (waiting for real I/O between steps),
   * at most `maxMs` of simulated time. Returns the simulated time it took.
   */
  async advanceUntil(predicate: () => boolean, stepMs: number, maxMs: number, what = 'condition'): Promise<number> {
    const start = this.#now;
    while (!predicate()) {
      if (this.#now - start >= maxMs) throw new Error(`simulated ${maxMs} ms passed waiting for ${what}`);
      await this.advance(stepMs);
      // Real I/O the step set off (a probe to a real socket) gets a moment to answer.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    return this.#now - start;
  }
}
