/**
 * What the data path counts (SPEC §8–9), as the Proxy sees it: requests and tunnels into the
 * tally, active checks, and the tally's deltas for a worker's report. {@link Metrics} is the
 * whole implementation (prom-client, scrape-time gauges, process sampling); a worker renders
 * nothing, so it takes {@link TallyCounts} and never loads prom-client (one process's memory
 * less per worker).
 */
import type { ExchangeRecord } from '../records.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import type { TunnelRecord } from '../forward/tunnel.js';
import type { BackendTotals } from './traffic-history.js';
import { RequestTally, type SeriesDelta } from './tally.js';

export interface Counts {
  request(r: ExchangeRecord): void;
  tunnel(r: TunnelRecord): void;
  check(backend: UpstreamBackend, ok: boolean): void;
  backendTotals(): Iterable<BackendTotals>;
  takeCounts(): SeriesDelta[];
  close(): void;
}

/** A worker's counts: the tally alone; active checks are the primary's. */
export class TallyCounts implements Counts {
  readonly #tally = new RequestTally();

  request(r: ExchangeRecord): void {
    this.#tally.request(r);
  }

  tunnel(r: TunnelRecord): void {
    this.#tally.tunnel(r.listener, r.pool, r.backend, r.bytesIn, r.bytesOut);
  }

  check(): void {
    // A worker runs no active checks.
  }

  backendTotals(): Iterable<BackendTotals> {
    return this.#tally.backendTotals();
  }

  takeCounts(): SeriesDelta[] {
    return this.#tally.take();
  }

  close(): void {
    // Nothing held.
  }
}
