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
import { Attempts, classifyUpstreamError, type AttemptOwner, type AttemptPool } from './attempt.js';
import { prepareForBackend, responseHeaders } from './headers.js';
import { originForm } from './guard.js';
import { ReplayableBody } from './replay.js';
import { sendError } from './respond.js';

/** What the HTTP forwarder needs of a pool (upstream/pool-runtime.ts implements it). */
export interface ForwardPool extends AttemptPool {
  readonly maxReplayBody: number;
  /** Seconds a client is told to wait when nothing serves. */
  readonly retryAfterSeconds: number;
}

export interface ForwardListener {
  readonly name: string;
  readonly proto: 'http' | 'https';
  /** Whether a peer address is in trusted_proxies (null = none trusted). */
  readonly isTrusted: ((address: string) => boolean) | null;
  /** Set while the listener drains (reload removed or rebound it): responses carry `Connection: close`. */
  readonly closing?: boolean;
}

/** Everything the access log and metrics need of a finished request. */
export interface ExchangeRecord {
  readonly listener: string;
  readonly pool: string;
  readonly backend: string | null;
  readonly method: string;
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  readonly bytes: number;
  readonly retries: number;
  readonly client: string;
  readonly error: ErrorCode | null;
  /** How the last backend was chosen. */
  readonly via: 'serving' | 'spill' | 'standby' | null;
  /** What the client spoke: HTTP/1.x or HTTP/2 (SPEC §11). */
  readonly protocol: ClientProtocol;
}

export type ClientProtocol = 'http1' | 'http2';

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

export function clientAddress(socket: Socket): string {
  const address = socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

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
  forward(req: IncomingMessage, res: ServerResponse, listener: ForwardListener, pool: ForwardPool): void {
    new HttpExchange(this, req, res, listener, pool).start();
  }

  /** Internal to HttpExchange. */
  engineWeb(req: IncomingMessage, res: ServerResponse, backend: UpstreamBackend, buffer: Readable | undefined): void {
    this.#engine.web(req, res, { target: backend.target, agent: backend.agent, buffer }, ignoreEngineCallback);
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
  readonly #client: string;
  readonly #hasBody: boolean;
  #replay: ReplayableBody | null = null;
  #upstream: ClientRequest | null = null;
  #upstreamRes: IncomingMessage | null = null;
  #status = 0;
  #bytes = 0;
  #staleRetried = false;
  /** Why the proxy failed this request (null when it did not). */
  #error: ProxyError | null = null;
  #done = false;

  constructor(forwarder: HttpForwarder, req: IncomingMessage, res: ServerResponse, listener: ForwardListener, pool: ForwardPool) {
    this.#forwarder = forwarder;
    this.#req = req;
    this.#res = res;
    this.#listener = listener;
    this.#pool = pool;
    this.#attempts = new Attempts(pool, this);
    this.#method = req.method ?? 'GET';
    this.#target = originForm(req.url ?? '/');
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
    prepareForBackend(headers, this.#client, this.#listener, false);
    if (headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = 'chunked';
    if (this.#hasBody && this.#pool.retries > 0) this.#replay = new ReplayableBody(req, this.#pool.maxReplayBody);
    this.#res.once('close', () => this.#onClientClose());
    this.#attempts.next(false);
  }

  /** AttemptOwner: the request through http-proxy, on `backend`'s keep-alive agent. */
  attempt(backend: UpstreamBackend, retry: boolean): void {
    backend.agent.claimNext(this.#attach);
    const body = !this.#hasBody ? NO_BODY : retry && this.#replay !== null ? this.#replay.stream() : undefined;
    this.#forwarder.engineWeb(this.#req, this.#res, backend, body);
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
    upstream.path = this.#target;
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
      res.writeHead(status, upstreamRes.statusMessage, responseHeaders(upstreamRes.rawHeaders, status));
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
    sendError(this.#res, error.status, retryAfter, this.#closing());
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
