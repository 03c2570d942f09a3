/**
 * One accepted TCP connection (SPEC §3, §5): balanced like a request, connected with
 * `connect_timeout`, retried on another backend when a backend cannot be connected to, then
 * handed to the shared {@link Tunnel}.
 *
 * The backend's in-flight count is raised when it is chosen, so a connection being set up
 * already counts for least-connections; a failed attempt releases it, a successful one hands
 * it to the tunnel, which releases it at teardown. Until then the client socket is not read:
 * its bytes wait in its buffer for the tunnel, while a reset or close of the client is still
 * seen (Node reads into the buffer up to its high-water mark) and cancels the attempt.
 */
import net, { type Socket } from 'node:net';
import { ProxyError } from '../errors.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import { clientAddress } from './http.js';
import { Tunnel, type TunnelPool, type TunnelRecord, type TunnelSummary } from './tunnel.js';

export interface TcpSessionContext {
  readonly listener: string;
  readonly pool: TunnelPool;
  /** Once per connection: a tunnel closed, or the connection was closed without one. */
  readonly onTunnel: (record: TunnelRecord) => void;
}

export class TcpSession {
  readonly #client: Socket;
  readonly #ctx: TcpSessionContext;
  readonly #startedAt = performance.now();
  readonly #clientAddress: string;
  readonly #tried: UpstreamBackend[] = [];
  /** The backend of the current attempt while this session (not yet a tunnel) holds its count. */
  #held: UpstreamBackend | null = null;
  #upstream: Socket | null = null;
  #connectTimer: NodeJS.Timeout | null = null;
  #via: TunnelRecord['via'] = null;
  #retries = 0;
  #error: ProxyError | null = null;
  /** Set once the connection is settled: tunnelled, refused or abandoned. */
  #done = false;

  constructor(client: Socket, ctx: TcpSessionContext) {
    this.#client = client;
    this.#ctx = ctx;
    this.#clientAddress = clientAddress(client);
  }

  start(): void {
    this.#client.on('error', this.#onClientError);
    this.#client.once('close', this.#onClientClose);
    this.#next(false);
  }

  #next(retry: boolean): void {
    const selection = this.#ctx.pool.select(this.#tried, retry);
    if (selection.backend === null) {
      const error = retry && this.#error !== null
        ? this.#error
        : new ProxyError(selection.reason === 'all_full' ? 'ALL_BACKENDS_FULL' : 'NO_SERVING_BACKEND');
      this.#refuse(error);
      return;
    }
    if (selection.via === 'spill') this.#ctx.pool.noteSpill(selection.backend);
    this.#via = selection.via;
    this.#dispatch(selection.backend);
  }

  #dispatch(backend: UpstreamBackend): void {
    const pool = this.#ctx.pool;
    pool.acquire(backend);
    this.#held = backend;
    this.#tried.push(backend);
    const upstream = net.connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
    this.#upstream = upstream;
    this.#connectTimer = setTimeout(onConnectTimeout, pool.connectTimeoutMs, this);
    upstream.once('connect', () => this.#onConnect(upstream));
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (upstream !== this.#upstream) return;
      this.#attemptFailed(new ProxyError('UPSTREAM_CONNECT_FAILED', err.code ?? err.message, { cause: err }));
    });
  }

  connectTimedOut(): void {
    this.#connectTimer = null;
    this.#attemptFailed(new ProxyError('UPSTREAM_CONNECT_TIMEOUT', `no connection within ${this.#ctx.pool.connectTimeoutMs}ms`));
  }

  #onConnect(upstream: Socket): void {
    if (upstream !== this.#upstream || this.#done) return;
    this.#clearTimer();
    const backend = this.#held as UpstreamBackend;
    const pool = this.#ctx.pool;
    pool.upstreamSucceeded(backend);
    // From here the tunnel owns both sockets and the backend's in-flight count.
    this.#done = true;
    this.#upstream = null;
    this.#held = null;
    this.#client.off('error', this.#onClientError);
    this.#client.off('close', this.#onClientClose);
    Tunnel.open(this.#client, upstream, {
      pool,
      backend,
      idleTimeoutMs: pool.tunnelIdleTimeoutMs,
      startedAt: this.#startedAt,
      onClose: (summary) => this.#record(summary),
    });
  }

  /** The current attempt failed before a connection: try the next untried backend, or close the client. */
  #attemptFailed(error: ProxyError): void {
    const upstream = this.#upstream;
    this.#upstream = null;
    this.#clearTimer();
    upstream?.destroy();
    const backend = this.#held;
    this.#releaseBackend();
    if (backend !== null) this.#ctx.pool.upstreamFailed(backend, error);
    this.#error = error;
    if (this.#done) return;
    // Only connect failures reach here: nothing was sent, any connection may go elsewhere.
    if (this.#tried.length <= this.#ctx.pool.retries && error.retry === 'always') {
      this.#retries++;
      if (backend !== null) this.#ctx.pool.noteRetry(backend, error);
      this.#next(true);
      return;
    }
    this.#refuse(error);
  }

  /** Nothing serves (or nothing could be connected to): the client is closed at once. */
  #refuse(error: ProxyError): void {
    this.#error = error;
    this.#settle();
    this.#client.destroy();
  }

  readonly #onClientError = (): void => {
    // A `close` follows; nothing to answer on a TCP connection.
  };

  /** The client went away before a backend was connected: cancel the attempt. */
  readonly #onClientClose = (): void => {
    if (this.#done) return;
    const upstream = this.#upstream;
    this.#upstream = null;
    this.#clearTimer();
    upstream?.destroy();
    this.#releaseBackend();
    this.#error = new ProxyError('CLIENT_ABORTED');
    this.#settle();
  };

  /** Ends the session without a tunnel: one access-log line. */
  #settle(): void {
    if (this.#done) return;
    this.#done = true;
    this.#client.off('close', this.#onClientClose);
    this.#record({
      bytesIn: 0,
      bytesOut: 0,
      durationMs: performance.now() - this.#startedAt,
      reason: 'not_connected',
      error: this.#error === null ? null : this.#error.code,
    });
  }

  #record(summary: TunnelSummary): void {
    const last = this.#tried[this.#tried.length - 1];
    this.#ctx.onTunnel({
      protocol: 'tcp',
      listener: this.#ctx.listener,
      pool: this.#ctx.pool.name,
      backend: last === undefined ? null : last.name,
      client: this.#clientAddress,
      method: null,
      path: null,
      status: null,
      durationMs: summary.durationMs,
      bytesIn: summary.bytesIn,
      bytesOut: summary.bytesOut,
      retries: this.#retries,
      reason: summary.reason,
      error: summary.error,
      via: this.#via,
    });
  }

  #releaseBackend(): void {
    const backend = this.#held;
    if (backend === null) return;
    this.#held = null;
    this.#ctx.pool.release(backend);
  }

  #clearTimer(): void {
    if (this.#connectTimer !== null) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
    }
  }
}

/** Timer callbacks take the session as an argument: no closure per connection. */
function onConnectTimeout(session: TcpSession): void {
  session.connectTimedOut();
}
