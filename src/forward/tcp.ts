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
import { Attempts, type AttemptOwner } from './attempt.js';
import { clientAddress } from './client-address.js';
import { connectionAddresses } from './client-address.js';
import { formatProxyHeader } from '../core/proxy-header.js';
import { Tunnel, type TunnelPool, type TunnelRecord, type TunnelSummary } from './tunnel.js';

export interface TcpSessionContext {
  readonly listener: string;
  readonly pool: TunnelPool;
  /** Once per connection: a tunnel closed, or the connection was closed without one. */
  readonly onTunnel: (record: TunnelRecord) => void;
}

export class TcpSession implements AttemptOwner {
  readonly #client: Socket;
  readonly #ctx: TcpSessionContext;
  readonly #attempts: Attempts;
  readonly #startedAt = performance.now();
  readonly #clientAddress: string;
  #upstream: Socket | null = null;
  #error: ProxyError | null = null;
  /** Set once the connection is settled: tunnelled, refused or abandoned. */
  #done = false;

  constructor(client: Socket, ctx: TcpSessionContext) {
    this.#client = client;
    this.#ctx = ctx;
    this.#attempts = new Attempts(ctx.pool, this);
    this.#clientAddress = clientAddress(client);
  }

  get settled(): boolean {
    return this.#done;
  }

  start(): void {
    this.#client.on('error', this.#onClientError);
    this.#client.once('close', this.#onClientClose);
    this.#attempts.next(false);
  }

  /** AttemptOwner: a fresh connection to `backend`, bounded by connect_timeout. */
  attempt(backend: UpstreamBackend): void {
    const upstream = net.connect({ host: backend.host, port: backend.port, allowHalfOpen: true, noDelay: true });
    // send_proxy_protocol: the header goes first (queued until the connection opens).
    if (backend.sendProxyProtocol !== 'off') upstream.write(formatProxyHeader(backend.sendProxyProtocol, connectionAddresses(this.#client)));
    this.#upstream = upstream;
    const isCurrent = (): boolean => upstream === this.#upstream;
    this.#attempts.watchConnect(upstream, isCurrent);
    upstream.once('connect', () => {
      if (isCurrent() && !this.#done) this.#onConnect(upstream);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (isCurrent()) this.#attempts.failed(new ProxyError('UPSTREAM_CONNECT_FAILED', err.code ?? err.message, { cause: err }));
    });
  }

  /** AttemptOwner: the connection being attempted is dropped. */
  abandon(): void {
    const upstream = this.#upstream;
    this.#upstream = null;
    upstream?.destroy();
  }

  /** AttemptOwner: only connect failures reach here — nothing was sent, any connection may go elsewhere. */
  mayRetry(error: ProxyError): boolean {
    return error.retry === 'always';
  }

  /** AttemptOwner: nothing serves (or nothing could be connected to): the client is closed at once. */
  giveUp(error: ProxyError): void {
    this.#error = error;
    this.#settle();
    this.#client.destroy();
  }

  #onConnect(upstream: Socket): void {
    this.#attempts.succeeded();
    // From here the tunnel owns both sockets and the backend's in-flight count.
    const backend = this.#attempts.handOver() as UpstreamBackend;
    const pool = this.#ctx.pool;
    this.#done = true;
    this.#upstream = null;
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

  readonly #onClientError = (): void => {
    // A `close` follows; nothing to answer on a TCP connection.
  };

  /** The client went away before a backend was connected: cancel the attempt. */
  readonly #onClientClose = (): void => {
    if (this.#done) return;
    this.abandon();
    this.#attempts.clearTimers();
    this.#attempts.release();
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
    const attempts = this.#attempts;
    this.#ctx.onTunnel({
      protocol: 'tcp',
      listener: this.#ctx.listener,
      pool: this.#ctx.pool.name,
      backend: attempts.last?.name ?? null,
      client: this.#clientAddress,
      method: null,
      path: null,
      status: null,
      durationMs: summary.durationMs,
      bytesIn: summary.bytesIn,
      bytesOut: summary.bytesOut,
      retries: attempts.retries,
      reason: summary.reason,
      error: summary.error,
      via: attempts.via,
    });
  }
}
