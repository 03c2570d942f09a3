/**
 * WebSocket upgrades (SPEC §3–5), every error owned: balanced like requests, counted in flight
 * from the moment a backend is chosen, retried on another backend when one cannot be connected
 * to (or resets before answering), answered back as HTTP when the backend says anything but 101,
 * and after the 101 handed to the shared {@link Tunnel} — the one teardown path shared with TCP.
 *
 * http-proxy creates the upstream request (ws-engine.ts, which also lists what its own upgrade
 * handling gets wrong); from then on this exchange owns the request, its answer and both sockets.
 * Until a tunnel exists the client socket is not read: bytes the client sent early stay in its
 * buffer (or in `head`) for the tunnel, while a reset or close of the client is still seen and
 * cancels the upstream request.
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyError } from '../errors.js';
import type { ExchangeRecord } from '../records.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import { Exchange, pathOf, type ForwardListener } from './exchange.js';
import { responseHeaders, switchingProtocolsHeaders } from './headers.js';
import { rawHead, refuseOnSocket } from './respond.js';
import { Tunnel, type TunnelPool, type TunnelRecord, type TunnelSummary } from './tunnel.js';
import { WsEngine } from './ws-engine.js';
import { chooseSticky } from './sticky.js';
import { applyResponseRules, NO_RULES, type RouteRules } from './route-rules.js';
import { checkSwitchingProtocols } from './ws-handshake.js';

/** Early client bytes held while an upgrade waits (a socket's default read buffer). */
const EARLY_BYTES_LIMIT = 64 * 1024;

export interface WebSocketHooks {
  /** An upgrade that did not become a tunnel (refused, failed, answered as HTTP): like a request. */
  onDone(record: ExchangeRecord): void;
  /** A tunnel closed. */
  onTunnel(record: TunnelRecord): void;
}

/** What an HTTP listener hands a WebSocket upgrade to (the listener side of the contract). */
export interface UpgradeHandler {
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, listener: ForwardListener, pool: TunnelPool, rules: RouteRules): void;
}

export class WebSocketForwarder implements UpgradeHandler {
  readonly engine = new WsEngine();
  readonly hooks: WebSocketHooks;
  /** Upgrades waiting for their backend's answer, to cancel at shutdown. */
  readonly pending = new Set<WebSocketExchange>();
  /** Set during shutdown: new upgrades get 503. */
  closing = false;

  constructor(hooks: WebSocketHooks) {
    this.hooks = hooks;
  }

  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, listener: ForwardListener, pool: TunnelPool, rules: RouteRules = NO_RULES): void {
    new WebSocketExchange(this, req, socket, head, listener, pool, rules).start();
  }

  /** Cancels every upgrade still waiting for its backend (shutdown). */
  closeAll(): void {
    for (const exchange of [...this.pending]) exchange.cancel();
  }
}

class WebSocketExchange extends Exchange {
  readonly #forwarder: WebSocketForwarder;
  readonly #socket: Duplex;
  readonly #head: Buffer;
  readonly #pool: TunnelPool;

  constructor(forwarder: WebSocketForwarder, req: IncomingMessage, socket: Duplex, head: Buffer, listener: ForwardListener, pool: TunnelPool, rules: RouteRules) {
    super(req, listener, pool, rules);
    this.#forwarder = forwarder;
    this.#socket = socket;
    this.#head = head;
    this.#pool = pool;
  }

  start(): void {
    this.prepareHeaders(true);
    // An upgrade carrying a session's cookie goes where the session lives; it sets no cookie.
    this.attempts.prefer(chooseSticky(this.pool, this.req.headers.cookie)?.preferred ?? null);
    this.#forwarder.pending.add(this);
    this.#socket.on('error', this.#onClientError);
    this.#socket.once('close', this.#onClientClose);
    this.#socket.on('data', this.#onEarlyBytes);
    this.#socket.once('end', this.#onClientEnd);
    if (this.#forwarder.closing) {
      this.respondError(new ProxyError('SHUTTING_DOWN'));
      return;
    }
    this.attempts.next(false);
  }

  /** Shutdown: the client is closed, which cancels the upstream side. */
  cancel(): void {
    this.#socket.destroy();
  }

  /** The upgrade request through http-proxy, on a fresh connection (it becomes the tunnel). */
  attempt(backend: UpstreamBackend): void {
    const upstream = this.#forwarder.engine.request(this.req, this.#socket, backend, this.backendTarget);
    if (upstream === null) {
      // http-proxy always creates the request synchronously; if it ever did not, fail loudly but safely.
      this.upstream = null;
      this.attempts.failed(new ProxyError('UPSTREAM_CONNECT_FAILED', 'engine created no upstream request'));
      return;
    }
    this.watch(upstream);
    upstream.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(upstream, res, socket, head));
    this.attempts.startResponseTimer();
  }

  /** An upgrade is a GET without a body, so a reset before the answer may go elsewhere too (SPEC §4). */
  protected mayResend(): boolean {
    return true;
  }

  /** Anything but 101: answered back as HTTP (status, headers, body), never tunnelled. */
  protected onHead(upstream: ClientRequest, res: IncomingMessage): void {
    if (res.statusCode === 101) {
      // A 101 Node did not take for an upgrade: never passed back (the client would take it for one).
      res.destroy();
      this.#refuseBadSwitch('101 not recognised as an upgrade');
      return;
    }
    this.upstreamRes = res;
    this.attempts.succeeded();
    const socket = this.#socket;
    this.status = res.statusCode ?? 502;
    this.declined = new ProxyError('UPGRADE_REFUSED', `backend answered ${this.status}`);
    // Transfer-Encoding is dropped with the hop-by-hop headers and the body is sent as decoded:
    // Content-Length frames it when the backend sent one, else the close does.
    socket.write(rawHead(this.status, res.statusMessage ?? '', [...applyResponseRules(responseHeaders(res.rawHeaders, this.status), this.rules.responseHeaders), 'Connection', 'close']));
    this.relay(res, socket, () => {
      socket.end(() => socket.destroy());
      upstream.destroy();
    });
  }

  #onUpgrade(upstream: ClientRequest, res: IncomingMessage, backendSocket: Duplex, backendHead: Buffer): void {
    const socket = this.#socket;
    if (upstream !== this.upstream || this.done || socket.destroyed) {
      backendSocket.destroy();
      return;
    }
    const wrong = checkSwitchingProtocols(res.headers, this.req.headers['sec-websocket-key'] ?? '');
    if (wrong !== null) {
      // Nothing crosses: the backend's bytes after its 101 are dropped with its socket, the
      // client's early bytes stay unread in its buffer until its socket closes.
      backendSocket.destroy();
      this.#refuseBadSwitch(wrong);
      return;
    }
    this.attempts.succeeded();
    // From here the tunnel owns both sockets and the backend's in-flight count.
    const backend = this.attempts.handOver() as UpstreamBackend;
    this.done = true;
    this.upstream = null;
    this.#forwarder.pending.delete(this);
    socket.off('error', this.#onClientError);
    socket.off('close', this.#onClientClose);
    socket.off('data', this.#onEarlyBytes);
    socket.off('end', this.#onClientEnd);
    // A keep-alive timer Node armed after an earlier response on this connection must not cut
    // the tunnel (http-proxy clears it too; this does not rely on it). Idle is the tunnel's job.
    if (socket instanceof Socket) socket.setTimeout(0);
    socket.write(rawHead(101, 'Switching Protocols', switchingProtocolsHeaders(res.rawHeaders, this.rules.responseHeaders)));
    if (backendHead.length > 0) backendSocket.unshift(backendHead);
    // Still in flowing mode: the tunnel's `data` listener, added below in this same tick, takes these first.
    if (this.#early !== null) socket.unshift(Buffer.concat(this.#early));
    if (this.#head.length > 0) socket.unshift(this.#head);
    Tunnel.open(socket, backendSocket, {
      pool: this.#pool,
      backend,
      idleTimeoutMs: this.#pool.tunnelIdleTimeoutMs,
      startedAt: this.startedAt,
      onClose: (summary) => this.#recordTunnel(backend, summary),
    });
    // Paused for holding too many early bytes: the tunnel's backpressure takes over from here.
    if (socket.isPaused()) socket.resume();
  }

  /** A 101 that does not complete the handshake: 502, the upstream request dropped, no retry (the backend may have acted). */
  #refuseBadSwitch(reason: string): void {
    this.attempts.clearTimers();
    this.abandon();
    this.respondError(new ProxyError('UPGRADE_BAD_RESPONSE', reason));
  }

  /** Until a proxy answer or the backend's is written, nothing has reached the client. */
  protected get headSent(): boolean {
    return this.status !== 0;
  }

  protected get clientFinished(): boolean {
    return this.#socket.writableFinished;
  }

  protected get bytesIn(): undefined {
    return undefined;
  }

  /** A proxy answer (503, 502, 504) on the raw socket; the client's `close` records it. */
  protected answer(error: ProxyError, retryAfter: number): void {
    refuseOnSocket(this.#socket, error.status, retryAfter, this.rules.responseHeaders);
  }

  protected closeClient(): void {
    this.#socket.destroy();
  }

  /**
   * The client socket is read while the upgrade waits for its backend, so that a client that
   * closes (FIN) is seen at once rather than at response_timeout — without being read, only a
   * reset would be. Bytes a client sends early (RFC 6455 says it must not) are kept for the
   * tunnel, up to a socket buffer's worth; past that it is paused and only a reset is seen.
   */
  #early: Buffer[] | null = null;
  #earlyBytes = 0;

  readonly #onEarlyBytes = (chunk: Buffer): void => {
    (this.#early ??= []).push(chunk);
    this.#earlyBytes += chunk.length;
    if (this.#earlyBytes >= EARLY_BYTES_LIMIT) this.#socket.pause();
  };

  /** A client that ended its side before any answer has given up on the upgrade; after one, it may just be done sending. */
  readonly #onClientEnd = (): void => {
    if (!this.headSent) this.#socket.destroy();
  };

  readonly #onClientError = (): void => {
    // A `close` follows (the listener destroys the socket on error).
  };

  /** The client side closed before a tunnel: settled and recorded as an HTTP exchange. */
  readonly #onClientClose = (): void => {
    this.#forwarder.pending.delete(this);
    this.clientClosed();
  };

  protected report(record: ExchangeRecord): void {
    this.#forwarder.hooks.onDone(record);
  }

  #recordTunnel(backend: UpstreamBackend, summary: TunnelSummary): void {
    this.#forwarder.hooks.onTunnel({
      protocol: 'websocket',
      listener: this.listener.name,
      pool: this.pool.name,
      backend: backend.name,
      client: this.client,
      method: this.req.method ?? 'GET',
      path: pathOf(this.target),
      status: 101,
      durationMs: summary.durationMs,
      bytesIn: summary.bytesIn,
      bytesOut: summary.bytesOut,
      retries: this.attempts.retries,
      reason: summary.reason,
      error: summary.error,
      via: this.attempts.via,
    });
  }
}
