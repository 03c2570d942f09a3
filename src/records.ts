/**
 * Records that cross layers: what a finished exchange leaves for the access log and metrics.
 * A leaf module (it imports nothing but error codes), so the logger on the lowest floor and the
 * forwarders above it can both use it without an import running up a layer.
 */
import type { ErrorCode } from './errors.js';

/** Everything the access log and metrics need of a finished request. */
export interface ExchangeRecord {
  readonly listener: string;
  readonly pool: string;
  readonly backend: string | null;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  /** Response body bytes sent to the client. */
  readonly bytes: number;
  /** Request body bytes from the client: its Content-Length, or what a chunked body carried. */
  readonly bytesIn?: number;
  readonly retries: number;
  readonly client: string;
  readonly error: ErrorCode | null;
  /** How the last backend was chosen. */
  readonly via: 'serving' | 'spill' | 'standby' | null;
  /** What the client spoke: HTTP/1.x or HTTP/2 (SPEC §11). */
  readonly protocol: ClientProtocol;
}

export type ClientProtocol = 'http1' | 'http2';
