/**
 * Health thresholds (SPEC §4), pure: no timers, no probes. The checker feeds results in and
 * dispatches a `health` event to the failover reducer only when a counter reports `changed`.
 */
import type { Health } from './failover-types.js';

/**
 * What one observation did to a backend's health (Envoy's `HealthTransition`):
 * - `unchanged`: health is what it was and no flip is under way;
 * - `pending`: health is what it was, but a streak toward a flip is in progress;
 * - `changed`: health flipped (or was decided for the first time).
 */
export type HealthTransition = 'unchanged' | 'pending' | 'changed';

function checkThreshold(name: string, value: number, min: number): void {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${value}`);
  }
}

/**
 * Rise/fall threshold over consecutive check results (pingora's `observe_health`).
 *
 * From `unknown` the first result decides at once: the startup round (SPEC §4) and the first
 * check of a backend added by a reload must not wait `rise` intervals before it may serve.
 * Afterwards only a streak of the opposite result moves health, so one lost probe does not
 * take a backend out and one lucky probe does not put a broken one back.
 */
export class HealthCounter {
  #rise: number;
  #fall: number;
  #health: Health = 'unknown';
  /** Consecutive results that disagree with the current health (a streak toward a flip). */
  #streak = 0;

  constructor(rise: number, fall: number) {
    checkThreshold('rise', rise, 1);
    checkThreshold('fall', fall, 1);
    this.#rise = rise;
    this.#fall = fall;
  }

  get health(): Health {
    return this.#health;
  }

  observe(ok: boolean): HealthTransition {
    if (this.#health === 'unknown') return this.#flip(ok ? 'up' : 'down');
    const agrees = ok === (this.#health === 'up');
    if (agrees) {
      // A result that agrees with the current health breaks any streak toward a flip.
      this.#streak = 0;
      return 'unchanged';
    }
    this.#streak += 1;
    const threshold = this.#health === 'up' ? this.#fall : this.#rise;
    if (this.#streak >= threshold) return this.#flip(ok ? 'up' : 'down');
    return 'pending';
  }

  /**
   * Passive detection (SPEC §4): live traffic proved the backend broken, so it is down now,
   * without waiting for the checker. It comes back only through `rise` successful checks,
   * counted from here (a success streak in progress is discarded).
   */
  forceDown(): HealthTransition {
    if (this.#health === 'down') {
      this.#streak = 0;
      return 'unchanged';
    }
    return this.#flip('down');
  }

  /**
   * Reload with new thresholds. Health is kept, and so is a streak in progress: a reload must
   * not delay detecting a failure that is already being counted. The next result is compared
   * against the new threshold.
   */
  setThresholds(rise: number, fall: number): void {
    checkThreshold('rise', rise, 1);
    checkThreshold('fall', fall, 1);
    this.#rise = rise;
    this.#fall = fall;
  }

  #flip(health: 'up' | 'down'): HealthTransition {
    this.#health = health;
    this.#streak = 0;
    return 'changed';
  }
}

/**
 * `passive.consecutive_failures` on live traffic (SPEC §4). The forwarder reports each attempt
 * whose error counts as passive (see errors.ts); when `failure()` returns true the shell calls
 * `HealthCounter.forceDown()`. A threshold of 0 turns passive detection off.
 */
export class PassiveDetector {
  #threshold: number;
  #streak = 0;

  constructor(threshold: number) {
    checkThreshold('consecutive_failures', threshold, 0);
    this.#threshold = threshold;
  }

  /** True exactly when this failure reaches the threshold; the streak then starts again. */
  failure(): boolean {
    if (this.#threshold === 0) return false;
    this.#streak += 1;
    if (this.#streak < this.#threshold) return false;
    this.#streak = 0;
    return true;
  }

  success(): void {
    this.#streak = 0;
  }

  /** Failures in a row so far (0 after a success or once the threshold was reached). */
  get streak(): number {
    return this.#streak;
  }

  /** Reload: a streak in progress is kept (and counts against the new threshold); 0 clears it. */
  setThreshold(n: number): void {
    checkThreshold('consecutive_failures', n, 0);
    this.#threshold = n;
    if (n === 0) this.#streak = 0;
  }
}
