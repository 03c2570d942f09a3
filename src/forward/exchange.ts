/**
 * The skeleton every HTTP-shaped exchange shares — an HTTP/1.1 request, an HTTP/2 request seen
 * through the adapter (h2-adapter.ts), a WebSocket upgrade (SPEC §4–5, §10). The review found the
 * HTTP and WebSocket forwarders each carrying their own copy of these rules, drifting apart; they
 * live here once:
 * - the upstream request's events: connect bounded by connect_timeout, errors classified and
 *   attributed to the attempt that caused them (a late event of a dropped attempt is ignored);
 * - a pooled connection closed under us is retried once on the same backend (stale connection);
 * - a proxy answer carries `Retry-After` only when nothing serves or everything is full;
 * - a response body that breaks off closes the client, so a truncated body never looks complete;
 * - the client closing first is recorded as CLIENT_ABORTED and cancels the upstream side;
 * - whatever happens, exactly one record when the client side closes, the backend released.
 * What differs — how an attempt is sent, how the client is answered and closed, what becomes of a
 * response head — is left to the subclass ({@link Exchange} abstract members).
 */
import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { ProxyError } from '../errors.js';
import type { ClientProtocol, ExchangeRecord } from '../records.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import type { ForwardPool } from '../upstream/contracts.js';
import { Attempts, classifyUpstreamError, type AttemptOwner } from './attempt.js';
import { clientAddress, proxiedClient } from './client-address.js';
import { originForm } from './guard.js';
import { prepareForBackend } from './headers.js';
import { applyRequestRules, backendTarget, NO_RULES, type RouteRules } from './route-rules.js';

/** What a forwarder needs of the listener a request came in on. */
export interface ForwardListener {
  readonly name: string;
  readonly proto: 'http' | 'https';
  /** Whether a peer address is in trusted_proxies (null = none trusted). */
  readonly isTrusted: ((address: string) => boolean) | null;
  /** Set while the listener drains (reload removed or rebound it): responses carry `Connection: close`. */
  readonly closing?: boolean;
}

/** The client protocol of a request (node:http and node:http2's compatibility requests both carry the version). */
export function clientProtocol(req: { readonly httpVersionMajor: number }): ClientProtocol {
  return req.httpVersionMajor === 2 ? 'http2' : 'http1';
}

/** The path of a request target without its query (queries may carry secrets: not logged). */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

/** Only these refusals tell the client when to come back: the pool may serve again soon. */
function retryAfterFor(error: ProxyError, pool: ForwardPool): number {
  return error.code === 'NO_SERVING_BACKEND' || error.code === 'ALL_BACKENDS_FULL' ? pool.retryAfterSeconds : 0;
}

export abstract class Exchange implements AttemptOwner {
  protected readonly req: IncomingMessage;
  protected readonly listener: ForwardListener;
  protected readonly pool: ForwardPool;
  protected readonly rules: RouteRules;
  protected readonly attempts: Attempts;
  protected readonly startedAt = performance.now();
  protected readonly target: string;
  /** The target sent to the backend (the route may strip its prefix). */
  protected readonly backendTarget: string;
  protected readonly client: string;
  protected upstream: ClientRequest | null = null;
  protected upstreamRes: IncomingMessage | null = null;
  protected status = 0;
  /** Response body bytes relayed to the client. */
  protected bytes = 0;
  /** Why the proxy failed this exchange (null when it did not). */
  protected error: ProxyError | null = null;
  /**
   * An answer passed on that is not what the client asked for (a WebSocket upgrade the backend
   * answered as HTTP): recorded when no failure is.
   */
  protected declined: ProxyError | null = null;
  /** Set once the client side closed (or the exchange became a tunnel): nothing more is answered. */
  protected done = false;
  #staleRetried = false;

  constructor(req: IncomingMessage, listener: ForwardListener, pool: ForwardPool, rules: RouteRules) {
    this.req = req;
    this.listener = listener;
    this.pool = pool;
    this.rules = rules;
    this.attempts = rules === NO_RULES ? new Attempts(pool, this) : new Attempts(pool, this, rules);
    this.target = originForm(req.url ?? '/');
    this.backendTarget = backendTarget(this.target, rules);
    this.client = clientAddress(req.socket);
  }

  get settled(): boolean {
    return this.done;
  }

  /** AttemptOwner: sends the request to `backend`, already counted in flight. */
  abstract attempt(backend: UpstreamBackend, retry: boolean): void;

  /** A response head arrived for the current attempt (101 upgrades come through {@link watch}'s caller). */
  protected abstract onHead(upstream: ClientRequest, res: IncomingMessage): void;

  /** Whether the client got the head of an answer (then nothing else can be answered). */
  protected abstract get headSent(): boolean;

  /** Writes the proxy's own answer (`retryAfter` seconds, or 0 for none). */
  protected abstract answer(error: ProxyError, retryAfter: number): void;

  /** Closes the client side at once (a reset, never a clean end). */
  protected abstract closeClient(): void;

  /** Whether this exchange's own rules (method, body) allow sending it again after `error`. */
  protected abstract mayResend(error: ProxyError): boolean;

  /** Whether the client side finished writing everything it was given (false: cut short). */
  protected abstract get clientFinished(): boolean;

  /** Request body bytes for the record (undefined where there is no body to speak of). */
  protected abstract get bytesIn(): number | undefined;

  /** Hands the finished exchange's record to the access log and metrics. */
  protected abstract report(record: ExchangeRecord): void;

  /** Headers rewritten for the backend: hop-by-hop and X-Forwarded-*, then the route's rules. */
  protected prepareHeaders(upgrade: boolean): void {
    const req = this.req;
    // Behind a PROXY protocol header the peer is the balancer: the client's own X-Forwarded-* are not trusted.
    const trust = proxiedClient(req.socket) === undefined ? this.listener : { proto: this.listener.proto, isTrusted: null };
    prepareForBackend(req.headers, this.client, trust, upgrade);
    applyRequestRules(req.headers, this.rules.requestHeaders);
  }

  /** Follows `upstream` as the current attempt: connect timer, errors, response head. */
  protected watch(upstream: ClientRequest): void {
    this.upstream = upstream;
    const isCurrent = (): boolean => upstream === this.upstream;
    upstream.on('socket', (socket: Socket) => {
      if (isCurrent()) this.attempts.watchConnect(socket, isCurrent);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#onUpstreamError(upstream, err));
    upstream.on('response', (res: IncomingMessage) => {
      if (upstream !== this.upstream || this.done) {
        res.destroy();
        return;
      }
      this.onHead(upstream, res);
    });
  }

  /** AttemptOwner: the current upstream request is dropped. */
  abandon(): void {
    const upstream = this.upstream;
    this.upstream = null;
    if (upstream !== null && !upstream.destroyed) upstream.destroy();
  }

  /** AttemptOwner: never once the client has a head or is gone; otherwise as the exchange allows. */
  mayRetry(error: ProxyError): boolean {
    if (this.headSent || this.req.socket.destroyed) return false;
    return this.mayResend(error);
  }

  /** AttemptOwner: nothing left to try. */
  giveUp(error: ProxyError): void {
    this.respondError(error);
  }

  #onUpstreamError(upstream: ClientRequest, err: NodeJS.ErrnoException): void {
    if (upstream !== this.upstream) return;
    if (this.upstreamRes !== null) {
      // A complete response followed by bytes Node cannot parse (a body on a 204 or 304, data
      // past Content-Length): the response stands and the connection is gone, never reused.
      if (!this.upstreamRes.complete) this.failMidBody(err);
      return;
    }
    const error = classifyUpstreamError(err, this.attempts.connected, upstream.reusedSocket);
    if (error.code === 'UPSTREAM_STALE_CONNECTION' && !this.#staleRetried) {
      // Our idle connection was closed under us: its siblings of the same age likely were too.
      // (Upgrades never reuse a pooled connection, so only requests get here.)
      this.#staleRetried = true;
      this.attempts.held?.agent.dropIdleSockets();
      if (this.attempts.retrySame(error)) return;
    }
    this.attempts.failed(error);
  }

  /**
   * Relays a response body to the client: a hand-written pump rather than pipe(), because it
   * counts bytes for the record and a premature end must close the client, which pipe() would
   * end cleanly instead. An upstream that dies mid-body emits `error` (listened to here), so
   * `aborted` adds nothing. `finish` runs once the body arrived complete.
   */
  protected relay(res: IncomingMessage, to: Writable, finish: () => void): void {
    let resume: (() => void) | null = null;
    res.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      if (to.write(chunk)) return;
      res.pause();
      resume ??= () => res.resume();
      to.once('drain', resume);
    });
    res.on('end', () => {
      if (res.complete) finish();
      else this.failMidBody(null);
    });
    res.on('error', (err: Error) => this.failMidBody(err));
  }

  /** After the head went out nothing can be answered: close the client so it sees a truncated message. */
  protected failMidBody(cause: Error | null): void {
    if (this.done) return;
    this.error ??= new ProxyError('UPSTREAM_RESET_MID_BODY', undefined, { cause });
    this.upstreamRes?.destroy();
    this.upstream?.destroy();
    this.closeClient();
  }

  /** The proxy's own answer; once a head is out (or the error has no status) the client is closed instead. */
  protected respondError(error: ProxyError): void {
    const headSent = this.headSent;
    this.error = error;
    this.status = error.status;
    if (headSent || error.status === 0) {
      this.closeClient();
      return;
    }
    this.answer(error, retryAfterFor(error, this.pool));
  }

  /**
   * The client side closed: the exchange settles, exactly once. A client that left before its
   * answer was complete is recorded as CLIENT_ABORTED (with 499 when no head reached it) and
   * its upstream side is cancelled; then timers stop, the backend is released, one record.
   */
  protected clientClosed(): void {
    if (this.done) return;
    this.done = true;
    if (!this.clientFinished) {
      if (!this.headSent) {
        this.error = new ProxyError('CLIENT_ABORTED');
        this.status = this.error.status;
      } else {
        this.error ??= new ProxyError('CLIENT_ABORTED');
      }
      this.upstreamRes?.destroy();
      this.abandon();
    }
    const attempts = this.attempts;
    attempts.clearTimers();
    attempts.release();
    this.report({
      listener: this.listener.name,
      pool: this.pool.name,
      backend: attempts.last?.name ?? null,
      method: this.req.method ?? 'GET',
      path: pathOf(this.target),
      status: this.status,
      durationMs: performance.now() - this.startedAt,
      bytes: this.bytes,
      bytesIn: this.bytesIn,
      retries: attempts.retries,
      client: this.client,
      error: (this.error ?? this.declined)?.code ?? null,
      via: attempts.via,
      protocol: clientProtocol(this.req),
    });
  }
}
