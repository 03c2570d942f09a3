/**
 * The two-way socket pipe behind every tunnel, TCP and WebSocket alike, so that teardown
 * exists once (SPEC §3, §5).
 *
 * A tunnel is opened on a backend whose in-flight count its opener already raised; from then
 * on the tunnel owns that count, its place in `backend.tunnels` and both sockets:
 * - bytes are copied by hand rather than with `pipe()`: we count them, note activity for the
 *   idle timer, and keep backpressure both ways (a full side pauses the other);
 * - an `end` from one side is forwarded as `end` to the other (half-close); the tunnel is done
 *   when both sockets have closed cleanly, i.e. each has both ended and been ended;
 * - an error or reset on one side resets the other (an aborted stream is never presented as a
 *   clean end), a socket closed without finishing closes the other;
 * - `tunnel_idle_timeout` closes both when no byte moved either way (0 = no timer at all);
 * - `close(reason)` (backend down, drain timeout, shutdown) closes both;
 * - whichever comes first, teardown runs once: in-flight released, removed from
 *   `backend.tunnels`, then `onClose` (one access-log line).
 */
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { ErrorCode } from '../errors.js';
import type { Closable, UpstreamBackend } from '../upstream/backend.js';
import type { Scheduled } from '../upstream/clock.js';
import type { TunnelPool } from '../upstream/contracts.js';

export type { TunnelPool } from '../upstream/contracts.js';

/** How a tunnel ended: `closed` is the clean case; the others name who ended it. */
export type TunnelEnd = 'closed' | 'client_closed' | 'client_reset' | 'backend_closed' | 'backend_reset' | 'idle_timeout';

export interface TunnelSummary {
  /** Bytes read from the client and sent to the backend. */
  readonly bytesIn: number;
  /** Bytes read from the backend and sent to the client. */
  readonly bytesOut: number;
  /** From `startedAt` (the client's connection or upgrade request) to teardown. */
  readonly durationMs: number;
  /** A {@link TunnelEnd}, or the reason given to `close()` (`backend down`, `drain timeout`, `shutdown`). */
  readonly reason: string;
  /** Set when the proxy or the backend cut the tunnel; null for a clean close or a client's doing. */
  readonly error: ErrorCode | null;
}

export interface TunnelOptions {
  /** The pool's clock runs the idle timeout (durations are measured on `performance.now()`). */
  readonly pool: Pick<TunnelPool, 'release' | 'clock'>;
  /** The backend whose in-flight count the opener raised; the tunnel releases it. */
  readonly backend: UpstreamBackend;
  /** 0 = no idle limit. */
  readonly idleTimeoutMs: number;
  /** `performance.now()` when the client's connection or request arrived. */
  readonly startedAt: number;
  /** Once, after teardown. */
  readonly onClose: (summary: TunnelSummary) => void;
}

/** Everything the access log (and metrics) need of a finished tunnel, or of a TCP connection that never got one. */
export interface TunnelRecord {
  readonly protocol: 'tcp' | 'websocket';
  readonly listener: string;
  readonly pool: string;
  /** The last backend tried; null when none was. */
  readonly backend: string | null;
  readonly client: string;
  /** WebSocket: the upgrade request's method and path (no query) and the 101; null for TCP. */
  readonly method: string | null;
  readonly path: string | null;
  readonly status: number | null;
  readonly durationMs: number;
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly retries: number;
  /** A {@link TunnelEnd}, a `close()` reason, or `not_connected` when no tunnel was opened. */
  readonly reason: string;
  readonly error: ErrorCode | null;
  readonly via: 'serving' | 'spill' | 'standby' | null;
}

type Side = 'client' | 'backend';

/**
 * Resets a TCP socket (RST), so a reset crosses the proxy as a reset; anything else (TLS, a
 * socket without a handle) is destroyed.
 */
function abort(socket: Duplex): void {
  if (socket.destroyed) return;
  if (socket instanceof Socket && !(socket instanceof TLSSocket)) {
    try {
      socket.resetAndDestroy();
      return;
    } catch {
      // Not a TCP handle after all: a plain destroy below.
    }
  }
  socket.destroy();
}

export class Tunnel implements Closable {
  readonly #client: Duplex;
  readonly #backend: Duplex;
  readonly #options: TunnelOptions;
  #bytesIn = 0;
  #bytesOut = 0;
  /** On the pool's clock. */
  #lastActivity: number;
  #idleTimer: Scheduled | null = null;
  readonly #onIdle = (): void => this.idleCheck();
  readonly #ended = { client: false, backend: false };
  readonly #closedClean = { client: false, backend: false };
  #done = false;

  private constructor(client: Duplex, backend: Duplex, options: TunnelOptions) {
    this.#client = client;
    this.#backend = backend;
    this.#options = options;
    this.#lastActivity = options.pool.clock.now();
  }

  /**
   * Takes over both sockets. Bytes already received belong in the sockets' read buffers
   * (`unshift` them before opening); nothing may read from either socket from now on.
   */
  static open(client: Duplex, backend: Duplex, options: TunnelOptions): Tunnel {
    const tunnel = new Tunnel(client, backend, options);
    options.backend.tunnels.add(tunnel);
    tunnel.#start();
    return tunnel;
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  /** Closes both sides (Closable: the pool calls it when the backend goes down or drains out). */
  close(reason: string): void {
    this.#teardown(reason, 'TUNNEL_CLOSED', null);
  }

  #start(): void {
    const client = this.#client;
    const backend = this.#backend;
    // We forward half-closes ourselves; a socket must not end its writing side on its own
    // when its peer ends (the default for TLS server sockets and HTTP client sockets).
    client.allowHalfOpen = true;
    backend.allowHalfOpen = true;
    client.on('error', () => this.#teardown('client_reset', null, 'backend'));
    backend.on('error', () => this.#teardown('backend_reset', 'TUNNEL_UPSTREAM_RESET', 'client'));
    client.on('close', () => this.#onClose('client'));
    backend.on('close', () => this.#onClose('backend'));
    this.#pipe(client, backend, 'client');
    this.#pipe(backend, client, 'backend');
    if (this.#options.idleTimeoutMs > 0) this.#idleTimer = this.#options.pool.clock.schedule(this.#options.idleTimeoutMs, this.#onIdle);
    // A side that closed before we listened sends no `close` any more.
    if (client.destroyed) this.#onClose('client');
    else if (backend.destroyed) this.#onClose('backend');
  }

  #pipe(from: Duplex, to: Duplex, side: Side): void {
    from.on('data', (chunk: Buffer) => {
      if (side === 'client') this.#bytesIn += chunk.length;
      else this.#bytesOut += chunk.length;
      this.#lastActivity = this.#options.pool.clock.now();
      if (to.destroyed) return;
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => {
      if (!this.#done) from.resume();
    });
    // A side that half-closed with nothing left in its buffer before the tunnel opened (while a
    // backend was being connected to) has emitted its `end` already: forward it now.
    if (from.readableEnded) this.#forwardEnd(to, side);
    else from.once('end', () => this.#forwardEnd(to, side));
  }

  #forwardEnd(to: Duplex, side: Side): void {
    this.#ended[side] = true;
    if (!to.destroyed && !to.writableEnded) to.end();
  }

  /** A side closed: cleanly (it ended and was ended) → wait for the other; otherwise close the other. */
  #onClose(side: Side): void {
    if (this.#done) return;
    const socket = side === 'client' ? this.#client : this.#backend;
    if (!this.#ended[side] || !socket.writableFinished) {
      if (side === 'client') this.#teardown('client_closed', null, null);
      else this.#teardown('backend_closed', 'TUNNEL_UPSTREAM_RESET', null);
      return;
    }
    this.#closedClean[side] = true;
    if (this.#closedClean.client && this.#closedClean.backend) this.#teardown('closed', null, null);
  }

  /** Timer callback: closes the tunnel if idle long enough, else re-arms for the rest (one closure per tunnel, not per re-arm). */
  idleCheck(): void {
    this.#idleTimer = null;
    if (this.#done) return;
    const limit = this.#options.idleTimeoutMs;
    const idle = this.#options.pool.clock.now() - this.#lastActivity;
    if (idle >= limit) {
      this.#teardown('idle_timeout', 'TUNNEL_IDLE_TIMEOUT', null);
      return;
    }
    this.#idleTimer = this.#options.pool.clock.schedule(Math.max(1, Math.ceil(limit - idle)), this.#onIdle);
  }

  /** Exactly once: both sockets closed (`reset` is the side whose peer failed), the backend released, `onClose`. */
  #teardown(reason: string, error: ErrorCode | null, reset: Side | null): void {
    if (this.#done) return;
    this.#done = true;
    this.#idleTimer?.cancel();
    this.#idleTimer = null;
    if (reset === 'client') abort(this.#client);
    else this.#client.destroy();
    if (reset === 'backend') abort(this.#backend);
    else this.#backend.destroy();
    const { backend, pool, startedAt, onClose } = this.#options;
    backend.tunnels.delete(this);
    pool.release(backend);
    onClose({
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      durationMs: performance.now() - startedAt,
      reason,
      error,
    });
  }
}
