/**
 * Time for everything above the pure core that waits: health-check intervals, warm-up and
 * drain deadlines, the failover reducer's wake-ups (failback hold, slow start), DNS re-resolve,
 * tunnel idle timeouts. One injected object instead of `Date.now` / `setTimeout`, so that tests
 * can run failover on simulated time (Envoy's `TimeSource` / `MockTimeSource`) while the sockets
 * stay real. Deadlines of a single I/O operation (a probe's or a lookup's timeout) stay on real
 * timers: they bound real sockets.
 */

/** A scheduled call; `cancel` is idempotent. */
export interface Scheduled {
  cancel(): void;
}

export interface Clock {
  /** Monotonic milliseconds (the failover clock). */
  now(): number;
  /** Milliseconds since the epoch (evidence timestamps, `down_since`). */
  wallNow(): number;
  /**
   * Calls `fn` once, `ms` from now. `background`: the timer alone does not keep the process
   * alive (periodic work such as DNS re-resolve).
   */
  schedule(ms: number, fn: () => void, background?: boolean): Scheduled;
}

/** The process's own clock and timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  schedule(ms, fn, background = false) {
    const timer = setTimeout(fn, ms);
    if (background) timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** The system clock with another monotonic `now` (tests that set the failover clock but keep real timers). */
export function withNow(now: () => number): Clock {
  return { ...systemClock, now };
}
