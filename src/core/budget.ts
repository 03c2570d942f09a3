/**
 * A token bucket (pure: `now` in ms is passed in): `burst` tokens at most, refilled at `perSecond`.
 * HTTP/2 abuse limits (SPEC §11) spend one token per suspicious frame — a stream the client
 * reset before its response was complete, a SETTINGS frame — so a browser cancelling a burst of
 * requests on navigation passes, and a client doing it without end runs dry.
 */
export class Budget {
  readonly #burst: number;
  readonly #perMs: number;
  #tokens: number;
  #at: number;

  constructor(burst: number, perSecond: number, now: number) {
    this.#burst = burst;
    this.#perMs = perSecond / 1000;
    this.#tokens = burst;
    this.#at = now;
  }

  /** Spends one token; false when none was left (the limit is broken). */
  take(now: number): boolean {
    const elapsed = now - this.#at;
    if (elapsed > 0) {
      this.#tokens = Math.min(this.#burst, this.#tokens + elapsed * this.#perMs);
      this.#at = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
