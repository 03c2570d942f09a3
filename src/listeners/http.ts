/**
 * An HTTP (or HTTPS) listener: accepts connections within the client-side limits, refuses
 * malformed input before anything is forwarded, routes, and hands each request to the
 * forwarder. WebSocket upgrades go to the tunnel forwarder.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import type { ListenerConfig } from '../config/schema.js';
import { ListenerLifecycle } from './listener.js';
import { RouteTable } from '../core/router.js';
import { ProxyError, type ErrorCode } from '../errors.js';
import { checkRequest, originForm } from '../forward/guard.js';
import { asksForWebSocket, checkHandshake } from '../forward/ws-handshake.js';
import { clientAddress, clientProtocol, type ExchangeRecord, type ForwardListener, type HttpForwarder } from '../forward/http.js';
import { pendingResponse, refuseOnSocket, sendError } from '../forward/respond.js';
import type { UpgradeHandler } from '../forward/websocket.js';
import type { Logger } from '../log.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { compileRoute, type CompiledRoute } from './routes.js';
import { httpsLocation, rawRedirect, routeLocation, sendRedirect } from '../forward/redirect.js';
import type { RouteRules } from '../forward/route-rules.js';
import { handshakeTimeout, onHandshakeError } from './tls.js';
import { H2Sessions, type H2Settings } from './h2.js';
import { ProxiedH2Request } from '../forward/h2-adapter.js';
import { awaitContinue } from '../forward/continue.js';

export type { UpgradeHandler } from '../forward/websocket.js';

export interface HttpListenerDeps {
  readonly forwarder: HttpForwarder;
  readonly upgrades: UpgradeHandler | null;
  readonly logger: Logger;
  /** Access log and metrics for requests answered by the listener itself (400, 404). */
  readonly onDone: (record: ExchangeRecord) => void;
}


export function buildRoutes(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): RouteTable<CompiledRoute> {
  if (config.redirect_https) return new RouteTable([]);
  if (config.routes === undefined) return new RouteTable([{ target: compileRoute({ pool: config.pool }, config, pools) }]);
  return new RouteTable(config.routes.map((r) => ({ host: r.host, pathPrefix: r.path_prefix, target: compileRoute(r, config, pools) })));
}

function h2Settings(config: ListenerConfig): H2Settings {
  return { maxHeaderSize: config.max_header_size, idleTimeoutMs: config.idle_timeout };
}

const CLIENT_ERROR_STATUS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

export class HttpListener extends ListenerLifecycle implements ForwardListener {
  readonly proto: 'http' | 'https';
  #routes: RouteTable<CompiledRoute>;
  readonly #deps: HttpListenerDeps;
  readonly #server: http.Server;
  /** HTTP/2 connections (a TLS listener with `http2`), or null. */
  readonly #h2: H2Sessions | null = null;

  constructor(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>, deps: HttpListenerDeps) {
    super(config, deps.logger);
    this.proto = config.tls === undefined ? 'http' : 'https';
    this.#deps = deps;
    this.#routes = buildRoutes(config, pools);
    const options: http.ServerOptions = {
      maxHeaderSize: config.max_header_size,
      requestTimeout: 0,
      headersTimeout: config.header_timeout,
      keepAliveTimeout: config.idle_timeout,
      // Node checks header_timeout on this interval (default 30 s): keep slowloris detection near the configured value.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(config.header_timeout / 4) || 1_000)),
    };
    const offerH2 = config.tls !== undefined && config.http2;
    this.#server =
      config.tls === undefined || this.certificates === null
        ? http.createServer(options)
        : https.createServer({
          ...options,
          ...this.certificates.serverOptions(config.tls),
          handshakeTimeout: handshakeTimeout(config.header_timeout),
          ALPNProtocols: offerH2 ? ['h2', 'http/1.1'] : ['http/1.1'],
        });
    const server = this.#server;
    if (offerH2 && server instanceof https.Server) {
      // HTTP/2 requests meet HTTP/1.1 ones in #onRequest; the adapter gives them its shape.
      this.#h2 = new H2Sessions(h2Settings(config), (req, res) => this.#onRequest(req as unknown as IncomingMessage, res as unknown as ServerResponse), this.logger);
      this.#h2.attach(server);
    }
    // We count headers ourselves (guard.ts) and answer 431; Node would silently drop the excess.
    server.maxHeadersCount = 0;
    server.timeout = 0;
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    // `Expect: 100-continue`: answered by the forwarder once the request is forwarded (continue.ts).
    server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
      awaitContinue(res);
      this.#onRequest(req, res);
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => this.#onClientError(err, socket));
    server.on('connect', (_req: IncomingMessage, socket: Duplex) => refuseOnSocket(socket, 405));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
    this.adopt(server);
    if (config.tls !== undefined) {
      server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => onHandshakeError(err, socket, true, this.logger));
    }
  }

  /**
   * Reload: new routes and trust for the next request; new limits and timeouts for new
   * connections (open ones keep theirs). Node checks header_timeout on an interval fixed when
   * the server was created, so a new header_timeout is enforced at the old cadence (≤ 1 s).
   */
  override reconfigure(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): void {
    this.#routes = buildRoutes(config, pools);
    super.reconfigure(config, pools);
    const server = this.#server;
    server.headersTimeout = config.header_timeout;
    server.keepAliveTimeout = config.idle_timeout;
    // Read by Node for each new connection's parser (http.Server stores the constructor option here).
    (server as http.Server & { maxHeaderSize?: number }).maxHeaderSize = config.max_header_size;
    this.#h2?.reconfigure(h2Settings(config));
  }

  /**
   * Keep-alive connections between requests, and connections that never sent a byte (browsers
   * open spare ones ahead of need): Node counts the latter as busy until header_timeout, which
   * would hold a shutdown that long. One that has started sending a request is left to finish.
   */
  override closeIdleConnections(): void {
    this.#server.closeIdleConnections();
    // HTTP/2: GOAWAY to every connection; each closes once its streams are done.
    this.#h2?.closeGracefully();
    for (const socket of this.sockets()) if (socket.bytesRead === 0) socket.destroy();
  }

  override closeAllConnections(): void {
    this.#server.closeAllConnections();
    this.#h2?.destroyAll();
    super.closeAllConnections();
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    if (this.holding && this.holdBack(() => this.#onRequest(req, res), req.socket)) return;
    // A request naming `websocket` in Upgrade that Node did not take for an upgrade lacks
    // `Connection: upgrade`: a malformed handshake, refused rather than sent on as a plain GET.
    const refusal =
      req instanceof ProxiedH2Request ? req.refusal(this.config.max_header_size)
      : checkRequest(req) ?? (req.headers.upgrade !== undefined && asksForWebSocket(req.headers) ? checkHandshake(req) : null);
    if (refusal !== null) {
      this.logger.debug({ code: refusal.code, reason: refusal.reason, client: clientAddress(req.socket) }, 'request refused');
      this.#answer(req, res, refusal.code, true);
      return;
    }
    const target = originForm(req.url ?? '/');
    if (this.config.redirect_https) {
      this.#redirect(req, res, 308, httpsLocation(req.headers.host, target), null);
      return;
    }
    const route = this.#routes.match(req.headers.host, target);
    if (route === null) {
      this.#answer(req, res, 'NO_ROUTE', false);
      return;
    }
    if (route.pool === null) {
      this.#redirect(req, res, route.redirect.code, routeLocation(route.redirect, target), route.rules);
      return;
    }
    this.#deps.forwarder.forward(req, res, this, route.pool, route.rules);
  }

  /** A redirect answered here (null location: the Host cannot be redirected to → 400). */
  #redirect(req: IncomingMessage, res: ServerResponse, code: number, location: string | null, rules: RouteRules | null): void {
    const started = performance.now();
    if (location === null || !sendRedirect(res, code, location, rules?.responseHeaders ?? null, this.closing)) {
      this.#answer(req, res, 'BAD_REQUEST', true);
      return;
    }
    this.#record(req, null, code, started);
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    if (this.holdBack(() => this.#onUpgrade(req, socket, head), socket)) return;
    const refusal = checkRequest(req) ?? checkHandshake(req);
    if (refusal !== null) {
      this.#refuseUpgrade(req, socket, refusal.code, refusal.reason);
      return;
    }
    // An upgrade pipelined behind a request still being answered: Node hands the socket over at
    // once, and the tunnel's 101 would overtake that answer. Refused after it instead.
    const upgrades = this.#deps.upgrades;
    if (upgrades === null || pendingResponse(socket) !== null) {
      this.#refuseUpgrade(req, socket, 'BAD_REQUEST', upgrades === null ? 'upgrades not proxied' : 'upgrade pipelined behind a pending response');
      return;
    }
    const target = originForm(req.url ?? '/');
    if (this.config.redirect_https) {
      this.#redirectUpgrade(req, socket, 308, httpsLocation(req.headers.host, target), null);
      return;
    }
    const route = this.#routes.match(req.headers.host, target);
    if (route === null) {
      this.#refuseUpgrade(req, socket, 'NO_ROUTE', 'no route');
      return;
    }
    if (route.pool === null) {
      this.#redirectUpgrade(req, socket, route.redirect.code, routeLocation(route.redirect, target), route.rules);
      return;
    }
    upgrades.upgrade(req, socket, head, this, route.pool, route.rules);
  }

  /** An upgrade on a redirecting listener or route gets the redirect, then the connection closes. */
  #redirectUpgrade(req: IncomingMessage, socket: Duplex, code: number, location: string | null, rules: RouteRules | null): void {
    const answer = location === null ? null : rawRedirect(code, location, rules?.responseHeaders ?? null);
    if (answer === null) {
      this.#refuseUpgrade(req, socket, 'BAD_REQUEST', 'no host to redirect to');
      return;
    }
    socket.end(answer, () => socket.destroy());
    this.#record(req, null, code, performance.now());
  }

  /** An upgrade answered by the listener itself, on the raw socket: logged and counted like {@link #answer}. */
  #refuseUpgrade(req: IncomingMessage, socket: Duplex, code: ErrorCode, reason: string): void {
    const status = new ProxyError(code).status;
    this.logger.debug({ code, reason, client: clientAddress(req.socket) }, 'upgrade refused');
    refuseOnSocket(socket, status);
    this.#record(req, code, status, performance.now());
  }

  #answer(req: IncomingMessage, res: ServerResponse, code: ErrorCode, close: boolean): void {
    const error = new ProxyError(code);
    const started = performance.now();
    sendError(res, error.status, 0, close || this.closing);
    this.#record(req, code, error.status, started);
  }

  #record(req: IncomingMessage, code: ErrorCode | null, status: number, started: number): void {
    this.#deps.onDone({
      listener: this.name,
      pool: '',
      backend: null,
      method: req.method ?? '',
      path: (req.url ?? '').split('?')[0] ?? '',
      status,
      durationMs: performance.now() - started,
      bytes: 0,
      retries: 0,
      client: clientAddress(req.socket),
      error: code,
      via: null,
      protocol: clientProtocol(req),
    });
  }

  #onClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE' || !socket.writable) {
      socket.destroy();
      return;
    }
    this.logger.debug({ code, client: (socket as Socket).remoteAddress }, 'malformed request');
    refuseOnSocket(socket, CLIENT_ERROR_STATUS[code] ?? 400);
  }
}
