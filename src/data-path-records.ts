/**
 * What this process's data path leaves behind: every finished exchange and tunnel counted (the
 * request count, the metrics or a worker's tally) and written to the access log.
 */
import { TallyCounts, type Counts } from './control/counts.js';
import type { TunnelRecord } from './forward/tunnel.js';
import type { AccessLog } from './log.js';
import type { ExchangeRecord } from './records.js';

export class DataPathRecords {
  /** Requests answered (for `/status` workers and a worker's report). */
  requests = 0;
  /**
   * Counts of the data path. One process: the Metrics exporter, set at start (prom-client is
   * imported only where `/metrics` is served). A worker: the tally alone ({@link TallyCounts}).
   */
  counts: Counts = new TallyCounts();
  readonly #access: AccessLog;

  constructor(access: AccessLog) {
    this.#access = access;
  }

  exchange(r: ExchangeRecord): void {
    this.requests++;
    this.counts.request(r);
    this.#access.request(r);
  }

  /** One access-log line per tunnel (TCP connection or WebSocket), written when it closes. */
  tunnel(r: TunnelRecord): void {
    this.counts.tunnel(r);
    this.requests++;
    this.#access.entry({
      listener: r.listener,
      pool: r.pool,
      backend: r.backend,
      tunnel: r.protocol,
      // A WebSocket is an HTTP/1.1 upgrade (not offered over HTTP/2).
      protocol: r.protocol === 'websocket' ? 'http1' : undefined,
      method: r.method ?? undefined,
      path: r.path ?? undefined,
      status: r.status ?? undefined,
      duration_ms: Math.round(r.durationMs * 1000) / 1000,
      bytes: r.bytesIn + r.bytesOut,
      bytes_in: r.bytesIn,
      bytes_out: r.bytesOut,
      retries: r.retries,
      client: r.client,
      reason: r.reason,
      error: r.error ?? undefined,
      via: r.via === 'serving' ? undefined : r.via ?? undefined,
    });
  }
}
