/**
 * One HTTP request through http-proxy, with every error path owned (SPEC §4–5).
 *
 * http-proxy 1.18.1 is the engine: it builds the upstream request, pipes the body and wires
 * client aborts of unfinished uploads. Everything it gets wrong on Node 20 is closed here:
 * - no `error` listener crashes the process → a callback is always passed, and errors are taken
 *   from the upstream request itself so each is attributed to the attempt that caused it;
 * - `proxyTimeout` cannot be told from a reset → our own connect and response timers;
 * - a backend that dies mid-body leaves the client hanging → the client connection is destroyed,
 *   never ended, so a truncated body is never presented as complete;
 * - writing a 502 after headers were sent throws → once headers are out, failures close instead;
 * - a client abort after the upload does not cancel the upstream request → done on `close`;
 * - without an agent every request opens a new connection → one keep-alive agent per backend;
 * - hop-by-hop headers and `xfwd` → headers.ts, applied before http-proxy copies the headers;
 * - `Expect` skips the `proxyReq` hook → we never rely on that hook, and strip Expect;
 * - its `deleteLength` pass turns a chunked DELETE/OPTIONS body into `Content-Length: 0` followed
 *   by raw body bytes (a request smuggled to the backend) → only the `stream` pass is kept;
 * - its urlJoin collapses `//` in paths → the exact request-target is restored on the request.
 */
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Readable } from 'node:stream';
import httpProxy from 'http-proxy';
import { ProxyError, type ErrorCode } from '../errors.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import { Attempts, classifyUpstreamError, type AttemptOwner } from './attempt.js';
import type { ClientProtocol, ExchangeRecord } from '../records.js';
import type { ForwardPool } from '../upstream/contracts.js';
import { prepareForBackend, responseHeaders } from './headers.js';
import { originForm } from './guard.js';
import { ReplayableBody } from './replay.js';
import { sendError } from './respond.js';
import { upstreamAgent } from './send-proxy.js';
import type { UpstreamAgent } from '../upstream/agent.js';
import { clientAddress, proxiedClient } from './client-address.js';
import { chooseSticky, stickyCookie, type StickyPool } from './sticky.js';
import { applyRequestRules, applyResponseRules, backendTarget, NO_RULES, type RouteRules } from './route-rules.js';

export type { ForwardPool } from '../upstream/contracts.js';

export interface ForwardListener {
  readonly name: string;
  readonly proto: 'http' | 'https';
  /** Whether a peer address is in trusted_proxies (null = none trusted). */
  readonly isTrusted: ((address: string) => boolean) | null;
  /** Set while the listener drains (reload removed or rebound it): responses carry `Connection: close`. */
  readonly closing?: boolean;
}

export type { ExchangeRecord } from '../records.js';
export type { ClientProtocol } from '../records.js';

/** The client protocol of a request (node:http and node:http2's compatibility requests both carry the version). */
export function clientProtocol(req: { readonly httpVersionMajor: number }): ClientProtocol {
  return req.httpVersionMajor === 2 ? 'http2' : 'http1';
}

export interface ForwarderHooks {
  /** Once per request, after the client side closed: access log and metrics. */
  onDone(record: ExchangeRecord): void;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

/**
 * What http-proxy pipes into the upstream request when the client's request has no body: it just
 * ends it. Piping the (empty) client request instead costs a dozen listeners added and removed
 * per request; Node discards the unread request stream itself when the response finishes.
 */
const NO_BODY = {
  pipe<T extends NodeJS.WritableStream>(upstream: T): T {
    upstream.end();
    return upstream;
  },
} as unknown as Readable;

/** A callback must be passed or http-proxy emits `error` (fatal without a listener); errors are taken from the request itself. */
function ignoreEngineCallback(): void {}

export { clientAddress } from './client-address.js';

export class HttpForwarder {
  readonly #engine: httpProxy;
  readonly #hooks: ForwarderHooks;
  /** Set during shutdown: responses carry `Connection: close`. */
  closing = false;

  constructor(hooks: ForwarderHooks) {
    this.#hooks = hooks;
    // toProxy + ignorePath: http-proxy neither parses nor joins the path (url.parse and a `//`
    // collapsing join, per request); the exact request-target is set on the request in #attach.
    this.#engine = httpProxy.createProxyServer({ selfHandleResponse: true, toProxy: true, ignorePath: true, xfwd: false });
    const engine = this.#engine as unknown as { webPasses: { name: string }[] };
    engine.webPasses = engine.webPasses.filter((pass) => pass.name === 'stream');
    // Safety net: with a callback on every call nothing should reach it.
    this.#engine.on('error', ignoreEngineCallback);
  }

  /** Forwards `req` to `pool`; the request head has already passed the guard. */
  forward(req: IncomingMessage, res: ServerResponse, listener: ForwardListener, pool: ForwardPool, rules: RouteRules = NO_RULES): void {
    new HttpExchange(this, req, res, listener, pool, rules).start();
  }

  /** Internal to HttpExchange. */
  engineWeb(req: IncomingMessage, res: ServerResponse, backend: UpstreamBackend, buffer: Readable | undefined, agent: UpstreamAgent): void {
    this.#engine.web(req, res, { target: backend.target, agent, buffer }, ignoreEngineCallback);
  }

  get hooks(): ForwarderHooks {
    return this.#hooks;
  }
}

class HttpExchange implements AttemptOwner {
  readonly #forwarder: HttpForwarder;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #listener: ForwardListener;
  readonly #pool: ForwardPool;
  readonly #attempts: Attempts;
  readonly #startedAt = performance.now();
  readonly #method: string;
  readonly #target: string;
  /** The target sent to the backend (the route may strip its prefix). */
  readonly #backendTarget: string;
  readonly #rules: RouteRules;
  readonly #client: string;
  readonly #hasBody: boolean;
  /** Body bytes seen so far, counted only for a chunked body under max_body_size. */
  #bodyBytes = 0;
  /** Sticky pool: whether the response sets the affinity cookie for the backend that answers. */
  #issueCookie = false;
  #replay: ReplayableBody | null = null;
  #upstream: ClientRequest | null = null;
  #upstreamRes: IncomingMessage | null = null;
  #status = 0;
  #bytes = 0;
  #staleRetried = false;
  /** Why the proxy failed this request (null when it did not). */
  #error: ProxyError | null = null;
  #done = false;

  constructor(forwarder: HttpForwarder, req: IncomingMessage, res: ServerResponse, listener: ForwardListener, pool: ForwardPool, rules: RouteRules) {
    this.#forwarder = forwarder;
    this.#req = req;
    this.#res = res;
    this.#listener = listener;
    this.#pool = pool;
    this.#rules = rules;
    this.#attempts = rules === NO_RULES ? new Attempts(pool, this) : new Attempts(pool, this, rules);
    this.#method = req.method ?? 'GET';
    this.#target = originForm(req.url ?? '/');
    this.#backendTarget = backendTarget(this.#target, rules);
    this.#client = clientAddress(req.socket);
    const headers = req.headers;
    this.#hasBody = headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  }

  get settled(): boolean {
    return this.#done;
  }

  start(): void {
    const req = this.#req;
    const headers = req.headers;
    // Behind a PROXY protocol header the peer is the balancer: the client's own X-Forwarded-* are not trusted.
    prepareForBackend(headers, this.#client, proxiedClient(req.socket) === undefined ? this.#listener : { proto: this.#listener.proto, isTrusted: null }, false);
    applyRequestRules(headers, this.#rules.requestHeaders);
    if (headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
    this.#res.once('close', () => this.#onClientClose());
    const limit = this.#rules.maxBodySize;
    if (limit > 0 && this.#hasBody) {
      // A declared length over the limit is refused before a byte goes anywhere; a chunked body
      // is counted as it flows (Node enforces a declared length itself).
      if (headers['transfer-encoding'] === undefined) {
        if (Number(headers['content-length']) > limit) {
          this.#refuseBody();
          return;
        }
      } else {
        req.on('data', this.#countBody);
      }
    }
    if (this.#hasBody && this.#attempts.retryBudget > 0) this.#replay = new ReplayableBody(req, this.#pool.maxReplayBody);
    const sticky = chooseSticky(this.#pool, headers.cookie);
    if (sticky !== null) {
      this.#attempts.prefer(sticky.preferred);
      this.#issueCookie = sticky.issue;
    }
    this.#attempts.next(false);
  }

  readonly #countBody = (chunk: Buffer): void => {
    this.#bodyBytes += chunk.length;
    if (this.#bodyBytes <= this.#rules.maxBodySize) return;
    this.#req.off('data', this.#countBody);
    this.#refuseBody();
  };

  /**
   * The body passed max_body_size: whatever went upstream is aborted (never retried), the client
   * gets 413 when no response has started, and its connection closes either way (the rest of its
   * body is not read).
   */
  #refuseBody(): void {
    if (this.#done) return;
    this.#attempts.clearTimers();
    this.abandon();
    this.#upstreamRes?.destroy();
    this.#upstreamRes = null;
    this.#attempts.release();
    const error = new ProxyError('BODY_TOO_LARGE');
    this.#error = error;
    if (this.#res.headersSent) {
      this.#res.destroy();
      return;
    }
    this.#status = error.status;
    sendError(this.#res, error.status, 0, true, this.#rules.responseHeaders);
  }

  /** AttemptOwner: the request through http-proxy, on `backend`'s keep-alive agent. */
  attempt(backend: UpstreamBackend, retry: boolean): void {
    const agent = upstreamAgent(this.#req.socket, backend);
    agent.claimNext(this.#attach);
    const body = !this.#hasBody ? NO_BODY : retry && this.#replay !== null ? this.#replay.stream() : undefined;
    this.#forwarder.engineWeb(this.#req, this.#res, backend, body, agent);
    if (this.#upstream === null) {
      // http-proxy always creates the request synchronously; if it ever did not, fail loudly but safely.
      this.#attempts.failed(new ProxyError('UPSTREAM_CONNECT_FAILED', 'engine created no upstream request'));
      return;
    }
    this.#attempts.startResponseTimer();
  }

  /** Receives the upstream request from the backend's agent, synchronously inside engineWeb(). */
  readonly #attach = (upstream: ClientRequest): void => {
    this.#upstream = upstream;
    upstream.path = this.#backendTarget;
    const isCurrent = (): boolean => upstream === this.#upstream;
    upstream.on('socket', (socket: Socket) => {
      if (isCurrent()) this.#attempts.watchConnect(socket, isCurrent);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => this.#onUpstreamError(upstream, err));
    upstream.on('response', (res: IncomingMessage) => this.#onResponse(upstream, res));
    upstream.on('close', () => {
      // Node closes a request silently, with neither a response nor an error, when the backend
      // answers 101 to a request that asked for no upgrade. Without this the client would wait
      // for response_timeout.
      if (isCurrent() && this.#upstreamRes === null && !this.#done) {
        this.#attempts.failed(new ProxyError('UPSTREAM_BAD_RESPONSE', 'connection closed without a response (an unsolicited 101?)'));
      }
    });
  };

  /** AttemptOwner: the current upstream request is dropped. */
  abandon(): void {
    const upstream = this.#upstream;
    this.#upstream = null;
    if (upstream !== null && !upstream.destroyed) upstream.destroy();
  }

  /** AttemptOwner: idempotent methods after a reset, any method before a connection; a body only while replayable. */
  mayRetry(error: ProxyError): boolean {
    if (this.#res.headersSent || this.#req.socket.destroyed) return false;
    if (error.retry === 'idempotent' && !IDEMPOTENT.has(this.#method)) return false;
    return !this.#hasBody || (this.#replay !== null && this.#replay.replayable);
  }

  /** AttemptOwner: nothing left to try. */
  giveUp(error: ProxyError): void {
    this.#respondError(error);
  }

  #onUpstreamError(upstream: ClientRequest, err: NodeJS.ErrnoException): void {
    if (upstream !== this.#upstream) return;
    if (this.#upstreamRes !== null) {
      // A complete response followed by bytes Node cannot parse (a body on a 204 or 304, data
      // past Content-Length): the response stands and the connection is gone, never reused.
      if (!this.#upstreamRes.complete) this.#failMidBody(err);
      return;
    }
    const error = classifyUpstreamError(err, this.#attempts.connected, upstream.reusedSocket);
    if (error.code === 'UPSTREAM_STALE_CONNECTION' && !this.#staleRetried) {
      // Our idle connection was closed under us: its siblings of the same age likely were too.
      this.#staleRetried = true;
      this.#attempts.held?.agent.dropIdleSockets();
      if (this.#attempts.retrySame(error)) return;
    }
    this.#attempts.failed(error);
  }

  #onResponse(upstream: ClientRequest, upstreamRes: IncomingMessage): void {
    if (upstream !== this.#upstream || this.#done) {
      upstreamRes.destroy();
      return;
    }
    this.#upstreamRes = upstreamRes;
    this.#attempts.succeeded();
    const res = this.#res;
    const status = upstreamRes.statusCode ?? 502;
    if (this.#closing()) res.shouldKeepAlive = false;
    try {
      const headers = applyResponseRules(responseHeaders(upstreamRes.rawHeaders, status), this.#rules.responseHeaders);
      if (this.#issueCookie) this.#addCookie(headers);
      res.writeHead(status, upstreamRes.statusMessage, headers);
    } catch (err) {
      // Node refuses header values its own client parser let through: nothing was written.
      upstreamRes.destroy();
      this.#upstreamRes = null;
      this.#attempts.failed(new ProxyError('UPSTREAM_BAD_RESPONSE', 'response head not forwardable', { cause: err }));
      return;
    }
    this.#status = status;
    // A hand-written pump rather than pipe(): it counts bytes for the access log, and a premature
    // end must destroy the client connection, which pipe() would end cleanly instead.
    // (An upstream that dies mid-body emits 'error' — we listen — so 'aborted' adds nothing.)
    let resume: (() => void) | null = null;
    upstreamRes.on('data', (chunk: Buffer) => {
      this.#bytes += chunk.length;
      if (res.write(chunk)) return;
      upstreamRes.pause();
      resume ??= () => upstreamRes.resume();
      res.once('drain', resume);
    });
    upstreamRes.once('end', () => {
      if (upstreamRes.complete) res.end();
      else this.#failMidBody(null);
    });
    upstreamRes.on('error', (err: Error) => this.#failMidBody(err));
  }

  /** The affinity cookie for the backend that answered (responseHeaders returns a fresh array). */
  #addCookie(headers: string[]): void {
    const sticky = this.#pool.sticky;
    const backend = this.#attempts.last;
    const token = sticky === null || backend === null ? undefined : sticky.tokenOf(backend.name);
    if (sticky !== null && token !== undefined) headers.push('Set-Cookie', stickyCookie(sticky.cookie, token, this.#listener.proto === 'https'));
  }

  /** After the head went out nothing can be answered: close the client so it sees a truncated message. */
  #failMidBody(cause: Error | null): void {
    if (this.#done) return;
    if (this.#error === null) this.#error = new ProxyError('UPSTREAM_RESET_MID_BODY', undefined, { cause });
    this.#upstreamRes?.destroy();
    this.#upstream?.destroy();
    this.#res.destroy();
  }

  #respondError(error: ProxyError): void {
    this.#error = error;
    this.#status = error.status;
    if (this.#res.headersSent || error.status === 0) {
      this.#res.destroy();
      return;
    }
    const retryAfter = error.code === 'NO_SERVING_BACKEND' || error.code === 'ALL_BACKENDS_FULL' ? this.#pool.retryAfterSeconds : 0;
    sendError(this.#res, error.status, retryAfter, this.#closing(), this.#rules.responseHeaders);
  }

  /** Shutdown, or this request's listener draining: the client connection ends with this response. */
  #closing(): boolean {
    return this.#forwarder.closing || this.#listener.closing === true;
  }

  #onClientClose(): void {
    if (this.#done) return;
    this.#done = true;
    if (!this.#res.writableFinished) {
      // The client went away (or we closed it mid-body): stop the upstream side too.
      if (!this.#res.headersSent) {
        this.#error = new ProxyError('CLIENT_ABORTED');
        this.#status = this.#error.status;
      } else if (this.#error === null) {
        this.#error = new ProxyError('CLIENT_ABORTED');
      }
      this.#upstreamRes?.destroy();
      this.abandon();
    }
    const attempts = this.#attempts;
    attempts.clearTimers();
    attempts.release();
    this.#replay?.dispose();
    this.#forwarder.hooks.onDone({
      listener: this.#listener.name,
      pool: this.#pool.name,
      backend: attempts.last?.name ?? null,
      method: this.#method,
      path: pathOf(this.#target),
      status: this.#status,
      durationMs: performance.now() - this.#startedAt,
      bytes: this.#bytes,
      bytesIn: this.#hasBody ? Number(this.#req.headers['content-length']) || 0 : 0,
      retries: attempts.retries,
      client: this.#client,
      error: this.#error === null ? null : this.#error.code,
      via: attempts.via,
      protocol: clientProtocol(this.#req),
    });
  }
}

/** The path of a request target without its query (queries may carry secrets: not logged). */
export function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}
