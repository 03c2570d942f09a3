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
import type { Readable } from 'node:stream';
// Before http-proxy loads: it takes util._extend, deprecated on Node 22+ (see node-compat.ts).
import '../node-compat.js';
import httpProxy from 'http-proxy';
import { ProxyError } from '../errors.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import type { ExchangeRecord } from '../records.js';
import type { ForwardPool } from '../upstream/contracts.js';
import { responseHeaders } from './headers.js';
import { ReplayableBody } from './replay.js';
import { sendError } from './respond.js';
import { upstreamAgent } from './send-proxy.js';
import type { UpstreamAgent } from '../upstream/agent.js';
import { chooseSticky, stickyCookie } from './sticky.js';
import { applyResponseRules, NO_RULES, type RouteRules } from './route-rules.js';
import { Exchange, type ForwardListener } from './exchange.js';
import { sendContinue } from './continue.js';

export type { ForwardPool } from '../upstream/contracts.js';
export { clientProtocol, pathOf, type ForwardListener } from './exchange.js';
export type { ExchangeRecord, ClientProtocol } from '../records.js';

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

class HttpExchange extends Exchange {
  readonly #forwarder: HttpForwarder;
  readonly #res: ServerResponse;
  readonly #hasBody: boolean;
  /** Body bytes seen so far, counted only for a chunked body (a declared length is its own count). */
  #bodyBytes = 0;
  /** Sticky pool: whether the response sets the affinity cookie for the backend that answers. */
  #issueCookie = false;
  #replay: ReplayableBody | null = null;

  constructor(forwarder: HttpForwarder, req: IncomingMessage, res: ServerResponse, listener: ForwardListener, pool: ForwardPool, rules: RouteRules) {
    super(req, listener, pool, rules);
    this.#forwarder = forwarder;
    this.#res = res;
    const headers = req.headers;
    this.#hasBody = headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0');
  }

  start(): void {
    const req = this.req;
    const headers = req.headers;
    // Read before prepareHeaders drops it (we answer it, the backend never sees it).
    const expects = headers.expect !== undefined;
    this.prepareHeaders(false);
    if (headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
    // `on`, not `once`: a response closes once, and once() wraps every listener per request.
    this.#res.on('close', () => {
      this.clientClosed();
      this.#replay?.dispose();
    });
    const limit = this.rules.maxBodySize;
    if (this.#hasBody) {
      // A declared length over the limit is refused before a byte goes anywhere; a chunked body
      // is counted as it flows (Node enforces a declared length itself): for max_body_size, and
      // for the bytes-in metrics, which have no length to take.
      if (headers['transfer-encoding'] === undefined) {
        if (limit > 0 && Number(headers['content-length']) > limit) {
          this.#refuseBody();
          return;
        }
      } else {
        this.#countBody = (chunk: Buffer) => this.#count(chunk);
        req.on('data', this.#countBody);
      }
    }
    // The request goes on: now the client may send its body (never before a 413 by Content-Length).
    if (expects) sendContinue(this.#res);
    if (this.#hasBody && this.attempts.retryBudget > 0) this.#replay = new ReplayableBody(req, this.pool.maxReplayBody);
    const sticky = chooseSticky(this.pool, headers.cookie);
    if (sticky !== null) {
      this.attempts.prefer(sticky.preferred);
      this.#issueCookie = sticky.issue;
    }
    this.attempts.next(false);
  }

  /** Counts a chunked body (made only for such a request). */
  #countBody: ((chunk: Buffer) => void) | null = null;

  #count(chunk: Buffer): void {
    this.#bodyBytes += chunk.length;
    const limit = this.rules.maxBodySize;
    if (limit === 0 || this.#bodyBytes <= limit || this.#countBody === null) return;
    this.req.off('data', this.#countBody);
    this.#countBody = null;
    this.#refuseBody();
  }

  /**
   * The body passed max_body_size: whatever went upstream is aborted (never retried), the client
   * gets 413 when no response has started, and its connection closes either way (the rest of its
   * body is not read).
   */
  #refuseBody(): void {
    if (this.done) return;
    this.attempts.clearTimers();
    this.abandon();
    this.upstreamRes?.destroy();
    this.upstreamRes = null;
    this.attempts.release();
    const error = new ProxyError('BODY_TOO_LARGE');
    this.error = error;
    if (this.#res.headersSent) {
      this.#res.destroy();
      return;
    }
    this.status = error.status;
    sendError(this.#res, error.status, 0, true, this.rules.responseHeaders);
  }

  /** The request through http-proxy, on `backend`'s keep-alive agent. */
  attempt(backend: UpstreamBackend, retry: boolean): void {
    const agent = upstreamAgent(this.req, backend);
    agent.claimNext(this.#attach);
    const body = !this.#hasBody ? NO_BODY : retry && this.#replay !== null ? this.#replay.stream() : undefined;
    this.#forwarder.engineWeb(this.req, this.#res, backend, body, agent);
    if (this.upstream === null) {
      // http-proxy always creates the request synchronously; if it ever did not, fail loudly but safely.
      this.attempts.failed(new ProxyError('UPSTREAM_CONNECT_FAILED', 'engine created no upstream request'));
      return;
    }
    this.attempts.startResponseTimer();
  }

  /** Receives the upstream request from the backend's agent, synchronously inside engineWeb() (before its head is written). */
  readonly #attach = (upstream: ClientRequest): void => {
    upstream.path = this.backendTarget;
    this.watch(upstream);
    upstream.on('close', () => {
      // Node closes a request silently, with neither a response nor an error, when the backend
      // answers 101 to a request that asked for no upgrade. Without this the client would wait
      // for response_timeout.
      if (upstream === this.upstream && this.upstreamRes === null && !this.done) {
        this.attempts.failed(new ProxyError('UPSTREAM_BAD_RESPONSE', 'connection closed without a response (an unsolicited 101?)'));
      }
    });
  };

  /** Idempotent methods after a reset, any method before a connection; a body only while replayable. */
  protected mayResend(error: ProxyError): boolean {
    if (error.retry === 'idempotent' && !IDEMPOTENT.has(this.req.method ?? 'GET')) return false;
    return !this.#hasBody || (this.#replay !== null && this.#replay.replayable);
  }

  protected onHead(_upstream: ClientRequest, upstreamRes: IncomingMessage): void {
    this.upstreamRes = upstreamRes;
    this.attempts.succeeded();
    const res = this.#res;
    const status = upstreamRes.statusCode ?? 502;
    if (this.#closing()) res.shouldKeepAlive = false;
    try {
      const headers = applyResponseRules(responseHeaders(upstreamRes.rawHeaders, status), this.rules.responseHeaders);
      if (this.#issueCookie) this.#addCookie(headers);
      res.writeHead(status, upstreamRes.statusMessage, headers);
    } catch (err) {
      // Node refuses header values its own client parser let through: nothing was written.
      upstreamRes.destroy();
      this.upstreamRes = null;
      this.attempts.failed(new ProxyError('UPSTREAM_BAD_RESPONSE', 'response head not forwardable', { cause: err }));
      return;
    }
    this.status = status;
    this.relay(upstreamRes, res, () => res.end());
  }

  /** The affinity cookie for the backend that answered (responseHeaders returns a fresh array). */
  #addCookie(headers: string[]): void {
    const sticky = this.pool.sticky;
    const backend = this.attempts.last;
    const token = sticky === null || backend === null ? undefined : sticky.tokenOf(backend.name);
    if (sticky !== null && token !== undefined) headers.push('Set-Cookie', stickyCookie(sticky.cookie, token, this.listener.proto === 'https'));
  }

  protected get headSent(): boolean {
    return this.#res.headersSent;
  }

  /** Ended by us and flushed: an HTTP/2 stream the client reset reports `writableFinished` without our end. */
  protected get clientFinished(): boolean {
    return this.#res.writableEnded && this.#res.writableFinished;
  }

  protected get bytesIn(): number {
    if (!this.#hasBody) return 0;
    return this.req.headers['transfer-encoding'] === undefined ? Number(this.req.headers['content-length']) || 0 : this.#bodyBytes;
  }

  protected answer(error: ProxyError, retryAfter: number): void {
    sendError(this.#res, error.status, retryAfter, this.#closing(), this.rules.responseHeaders);
  }

  protected closeClient(): void {
    this.#res.destroy();
  }

  /** Shutdown, or this request's listener draining: the client connection ends with this response. */
  #closing(): boolean {
    return this.#forwarder.closing || this.listener.closing === true;
  }

  protected report(record: ExchangeRecord): void {
    this.#forwarder.hooks.onDone(record);
  }
}
