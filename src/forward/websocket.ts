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
import type { UpstreamBackend } from '../upstream/backend.js';
import { Attempts, classifyUpstreamError, type AttemptOwner } from './attempt.js';
import { originForm } from './guard.js';
import { prepareForBackend, responseHeaders, switchingProtocolsHeaders } from './headers.js';
import { clientAddress, pathOf, type ExchangeRecord, type ForwardListener } from './http.js';
import { rawHead, refuseOnSocket } from './respond.js';
import { Tunnel, type TunnelPool, type TunnelRecord, type TunnelSummary } from './tunnel.js';
import { WsEngine } from './ws-engine.js';
import { chooseSticky } from './sticky.js';
import { proxiedClient } from './client-address.js';
import { applyRequestRules, applyResponseRules, backendTarget, NO_RULES, type RouteRules } from './route-rules.js';
import { checkSwitchingProtocols } from './ws-handshake.js';

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

class WebSocketExchange implements AttemptOwner {
  readonly #forwarder: WebSocketForwarder;
  readonly #req: IncomingMessage;
  readonly #socket: Duplex;
  readonly #head: Buffer;
  readonly #listener: ForwardListener;
  readonly #pool: TunnelPool;
  readonly #startedAt = performance.now();
  readonly #target: string;
  readonly #backendTarget: string;
  readonly #rules: RouteRules;
  readonly #client: string;
  readonly #attempts: Attempts;
  #upstream: ClientRequest | null = null;
  #upstreamRes: IncomingMessage | null = null;
  #status = 0;
  #bytes = 0;
  /** Why the proxy failed this upgrade, or why it was not tunnelled (null when it was). */
  #error: ProxyError | null = null;
  /** Set once the exchange is settled: tunnelled or logged as an HTTP exchange. */
  #done = false;

  constructor(forwarder: WebSocketForwarder, req: IncomingMessage, socket: Duplex, head: Buffer, listener: ForwardListener, pool: TunnelPool, rules: RouteRules) {
    this.#forwarder = forwarder;
    this.#req = req;
    this.#socket = socket;
    this.#head = head;
    this.#listener = listener;
    this.#pool = pool;
    this.#target = originForm(req.url ?? '/');
    this.#rules = rules;
    this.#backendTarget = backendTarget(this.#target, rules);
    this.#client = clientAddress(req.socket);
    this.#attempts = rules === NO_RULES ? new Attempts(pool, this) : new Attempts(pool, this, rules);
  }

  get settled(): boolean {
    return this.#done;
  }

  start(): void {
    const req = this.#req;
    const headers = req.headers;
    prepareForBackend(headers, this.#client, proxiedClient(req.socket) === undefined ? this.#listener : { proto: this.#listener.proto, isTrusted: null }, true);
    applyRequestRules(headers, this.#rules.requestHeaders);
    // An upgrade carrying a session's cookie goes where the session lives; it sets no cookie.
    this.#attempts.prefer(chooseSticky(this.#pool, headers.cookie)?.preferred ?? null);
    this.#forwarder.pending.add(this);
    this.#socket.on('error', this.#onClientError);
    this.#socket.once('close', this.#onClientClose);
    if (this.#forwarder.closing) {
      this.#respondError(new ProxyError('SHUTTING_DOWN'));
      return;
    }
    this.#attempts.next(false);
  }

  /** Shutdown: the client is closed, which cancels the upstream side. */
  cancel(): void {
    this.#socket.destroy();
  }

  /** AttemptOwner: the upgrade request through http-proxy, on a fresh connection (it becomes the tunnel). */
  attempt(backend: UpstreamBackend): void {
    const upstream = this.#forwarder.engine.request(this.#req, this.#socket, backend, this.#backendTarget);
    this.#upstream = upstream;
    if (upstream === null) {
      // http-proxy always creates the request synchronously; if it ever did not, fail loudly but safely.
      this.#attempts.failed(new ProxyError('UPSTREAM_CONNECT_FAILED', 'engine created no upstream request'));
      return;
    }
    const isCurrent = (): boolean => upstream === this.#upstream;
    upstream.on('socket', (socket: Socket) => {
      if (isCurrent()) this.#attempts.watchConnect(socket, isCurrent);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#onUpstreamError(upstream, err));
    upstream.on('response', (res: IncomingMessage) => this.#onResponse(upstream, res));
    upstream.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(upstream, res, socket, head));
    this.#attempts.startResponseTimer();
  }

  /** AttemptOwner: the current upstream request is dropped. */
  abandon(): void {
    const upstream = this.#upstream;
    this.#upstream = null;
    if (upstream !== null && !upstream.destroyed) upstream.destroy();
  }

  /** AttemptOwner: an upgrade is a GET without a body, so a reset before the answer may go elsewhere too (SPEC §4). */
  mayRetry(): boolean {
    return !this.#socket.destroyed;
  }

  /** AttemptOwner: nothing left to try. */
  giveUp(error: ProxyError): void {
    this.#respondError(error);
  }

  #onUpstreamError(upstream: ClientRequest, err: NodeJS.ErrnoException): void {
    if (upstream !== this.#upstream) return;
    if (this.#upstreamRes !== null) {
      this.#failMidBody();
      return;
    }
    // Upgrades never reuse a pooled connection: no stale-connection case here.
    this.#attempts.failed(classifyUpstreamError(err, this.#attempts.connected, false));
  }

  /** Anything but 101: answered back as HTTP (status, headers, body), never tunnelled. */
  #onResponse(upstream: ClientRequest, res: IncomingMessage): void {
    if (upstream !== this.#upstream || this.#done) {
      res.destroy();
      return;
    }
    if (res.statusCode === 101) {
      // A 101 Node did not take for an upgrade: never passed back (the client would take it for one).
      res.destroy();
      this.#refuseBadSwitch('101 not recognised as an upgrade');
      return;
    }
    this.#upstreamRes = res;
    this.#attempts.succeeded();
    const socket = this.#socket;
    this.#status = res.statusCode ?? 502;
    this.#error = new ProxyError('UPGRADE_REFUSED', `backend answered ${this.#status}`);
    // Transfer-Encoding is dropped with the hop-by-hop headers and the body is sent as decoded:
    // Content-Length frames it when the backend sent one, else the close does.
    socket.write(rawHead(this.#status, res.statusMessage ?? '', [...applyResponseRules(responseHeaders(res.rawHeaders, this.#status), this.#rules.responseHeaders), 'Connection', 'close']));
    res.on('data', (chunk: Buffer) => {
      this.#bytes += chunk.length;
      if (!socket.write(chunk)) res.pause();
    });
    socket.on('drain', () => res.resume());
    res.once('end', () => {
      if (!res.complete) {
        this.#failMidBody();
        return;
      }
      socket.end(() => socket.destroy());
      upstream.destroy();
    });
    res.once('aborted', () => this.#failMidBody());
    res.on('error', () => this.#failMidBody());
  }

  /** The answer's body broke off: the client is closed before it could take it as complete. */
  #failMidBody(): void {
    if (this.#done) return;
    this.#error = new ProxyError('UPSTREAM_RESET_MID_BODY');
    this.#upstreamRes?.destroy();
    this.#upstream?.destroy();
    this.#socket.destroy();
  }

  #onUpgrade(upstream: ClientRequest, res: IncomingMessage, backendSocket: Duplex, backendHead: Buffer): void {
    const socket = this.#socket;
    if (upstream !== this.#upstream || this.#done || socket.destroyed) {
      backendSocket.destroy();
      return;
    }
    const wrong = checkSwitchingProtocols(res.headers, this.#req.headers['sec-websocket-key'] ?? '');
    if (wrong !== null) {
      // Nothing crosses: the backend's bytes after its 101 are dropped with its socket, the
      // client's early bytes stay unread in its buffer until its socket closes.
      backendSocket.destroy();
      this.#refuseBadSwitch(wrong);
      return;
    }
    this.#attempts.succeeded();
    // From here the tunnel owns both sockets and the backend's in-flight count.
    const backend = this.#attempts.handOver() as UpstreamBackend;
    this.#done = true;
    this.#upstream = null;
    this.#forwarder.pending.delete(this);
    socket.off('error', this.#onClientError);
    socket.off('close', this.#onClientClose);
    // A keep-alive timer Node armed after an earlier response on this connection must not cut
    // the tunnel (http-proxy clears it too; this does not rely on it). Idle is the tunnel's job.
    if (socket instanceof Socket) socket.setTimeout(0);
    socket.write(rawHead(101, 'Switching Protocols', switchingProtocolsHeaders(res.rawHeaders, this.#rules.responseHeaders)));
    if (backendHead.length > 0) backendSocket.unshift(backendHead);
    if (this.#head.length > 0) socket.unshift(this.#head);
    Tunnel.open(socket, backendSocket, {
      pool: this.#pool,
      backend,
      idleTimeoutMs: this.#pool.tunnelIdleTimeoutMs,
      startedAt: this.#startedAt,
      onClose: (summary) => this.#recordTunnel(backend, summary),
    });
  }

  /** A 101 that does not complete the handshake: 502, the upstream request dropped, no retry (the backend may have acted). */
  #refuseBadSwitch(reason: string): void {
    this.#attempts.clearTimers();
    this.abandon();
    this.#respondError(new ProxyError('UPGRADE_BAD_RESPONSE', reason));
  }

  /** A proxy answer (503, 502, 504) on the raw socket; the client's `close` logs it. */
  #respondError(error: ProxyError): void {
    this.#error = error;
    this.#status = error.status;
    const socket = this.#socket;
    if (error.status === 0) {
      socket.destroy();
      return;
    }
    const retryAfter = error.code === 'NO_SERVING_BACKEND' || error.code === 'ALL_BACKENDS_FULL' ? this.#pool.retryAfterSeconds : 0;
    refuseOnSocket(socket, error.status, retryAfter, this.#rules.responseHeaders);
  }

  readonly #onClientError = (): void => {
    // A `close` follows (the listener destroys the socket on error).
  };

  /** The client side closed before a tunnel: settle and log as an HTTP exchange. */
  readonly #onClientClose = (): void => {
    if (this.#done) return;
    this.#done = true;
    this.#forwarder.pending.delete(this);
    if (!this.#socket.writableFinished && this.#status === 0) {
      // The client went away before anything was answered.
      this.#error = new ProxyError('CLIENT_ABORTED');
      this.#status = this.#error.status;
    }
    this.#upstreamRes?.destroy();
    this.abandon();
    const attempts = this.#attempts;
    attempts.clearTimers();
    attempts.release();
    this.#forwarder.hooks.onDone({
      listener: this.#listener.name,
      pool: this.#pool.name,
      backend: attempts.last?.name ?? null,
      method: this.#req.method ?? 'GET',
      path: pathOf(this.#target),
      status: this.#status,
      durationMs: performance.now() - this.#startedAt,
      bytes: this.#bytes,
      retries: attempts.retries,
      client: this.#client,
      error: this.#error === null ? null : this.#error.code,
      via: attempts.via,
      protocol: 'http1',
    });
  };

  #recordTunnel(backend: UpstreamBackend, summary: TunnelSummary): void {
    this.#forwarder.hooks.onTunnel({
      protocol: 'websocket',
      listener: this.#listener.name,
      pool: this.#pool.name,
      backend: backend.name,
      client: this.#client,
      method: this.#req.method ?? 'GET',
      path: pathOf(this.#target),
      status: 101,
      durationMs: summary.durationMs,
      bytesIn: summary.bytesIn,
      bytesOut: summary.bytesOut,
      retries: this.#attempts.retries,
      reason: summary.reason,
      error: summary.error,
      via: this.#attempts.via,
    });
  }
}
