/**
 * The contracts between a pool and what uses it: the forwarders (above) take a pool through
 * these interfaces, and the pool (here) reports through {@link EventSink}. They live on the pool's
 * floor so that no import runs up a layer: forward/ and listeners/ import them downwards, and
 * control/ implements the event sink.
 */
import type { Affinity, Selection } from '../core/pool.js';
import type { ProxyError } from '../errors.js';
import type { UpstreamBackend } from './backend.js';
import type { Clock } from './clock.js';

/** What the attempt loop needs of a pool (pool-runtime.ts implements it). */
export interface AttemptPool {
  readonly name: string;
  readonly connectTimeoutMs: number;
  /** 0 = no limit. */
  readonly responseTimeoutMs: number;
  readonly retries: number;
  select(exclude: readonly UpstreamBackend[], retry: boolean): Selection<UpstreamBackend>;
  acquire(backend: UpstreamBackend): void;
  release(backend: UpstreamBackend): void;
  /** Live-traffic failure: feeds passive detection when the error says so. */
  upstreamFailed(backend: UpstreamBackend, error: ProxyError): void;
  upstreamSucceeded(backend: UpstreamBackend): void;
  /** A client is being retried after `error` on `failed` (counted and logged). */
  noteRetry(failed: UpstreamBackend, error: ProxyError): void;
  /** A client overflowed to a standby warm. */
  noteSpill(backend: UpstreamBackend): void;
}

/** What the forwarders need of a sticky pool (SPEC §10). */
export interface StickyPool {
  readonly sticky: { readonly cookie: string; tokenOf(name: string): string | undefined } | null;
  affinity(token: string): Affinity<UpstreamBackend>;
}

/** What the HTTP forwarder needs of a pool. */
export interface ForwardPool extends AttemptPool, StickyPool {
  readonly maxReplayBody: number;
  /** Seconds a client is told to wait when nothing serves. */
  readonly retryAfterSeconds: number;
}

/** What tunnel forwarders need of a pool. */
export interface TunnelPool extends ForwardPool {
  /** 0 = no limit. */
  readonly tunnelIdleTimeoutMs: number;
  /** Whose time the idle timeout runs on (the pool's, injectable for tests). */
  readonly clock: Clock;
}

/** Where a pool's operational events go (control/events.ts's EventLog is one). */
export interface EventSink {
  emit(type: 'backend_up' | 'backend_down' | 'promoted' | 'released' | 'degraded' | 'restored' | 'spill' | 'discovery_failed', details: Readonly<Record<string, unknown>>): unknown;
}
