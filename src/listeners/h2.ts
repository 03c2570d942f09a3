/**
 * HTTP/2 on a TLS http listener (SPEC §11): ALPN offers `h2` and `http/1.1`; a connection that
 * chose h2 is handed to an HTTP/2 session here, every other one stays with the HTTPS server
 * exactly as before (its guards, timeouts, WebSocket upgrades and plain-HTTP answer untouched).
 * Requests of both protocols then meet in the listener's one request handler.
 *
 * The HTTP/2 server here never listens: it only receives TLS sockets whose handshake picked h2.
 * It bounds abuse, taking what Node's HTTP/2 stack (nghttp2) already does and adding what it lacks:
 * - concurrent streams: SETTINGS_MAX_CONCURRENT_STREAMS 100; streams past it are refused by
 *   nghttp2, and a client that keeps opening them (maxSessionRejectedStreams) loses the connection;
 * - rapid reset (CVE-2023-44487): nghttp2 allows a burst of 1000 resets; we count streams the
 *   client resets before their response was complete in a tighter budget and end the connection
 *   with GOAWAY(ENHANCE_YOUR_CALM). A request is forwarded one event-loop turn after its HEADERS
 *   arrived, so a stream reset in the same read (the flood's pattern) never reaches a backend;
 * - header lists: SETTINGS_MAX_HEADER_LIST_SIZE is `max_header_size`; Node resets a stream past
 *   it (ENHANCE_YOUR_CALM) before it is a request, and nghttp2 ends a connection whose header
 *   block keeps going in CONTINUATION frames (CVE-2024-27316 class);
 * - PING and SETTINGS floods: nghttp2 ends a connection whose acknowledgements pile up unread;
 *   SETTINGS frames are also counted in a budget of their own;
 * - empty and invalid frames: Node ends the connection after maxSessionInvalidFrames.
 * Each limit ends only the offending connection.
 */
import http2, { type Http2Server, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { Budget } from '../core/budget.js';
import { ProxiedH2Request, ProxiedH2Response } from '../forward/h2-adapter.js';
import { MAX_HEADER_COUNT } from '../forward/guard.js';
import { awaitContinue } from '../forward/continue.js';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../log.js';

const ABUSE: ErrorCode = 'HTTP2_ABUSE';

/** HTTP/2 limits; fixed, listed in docs/http2.md. */
export const H2_LIMITS = {
  /** Concurrent streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: 100,
  /** Streams refused for going past the concurrent limit before the connection ends (Node's counter). */
  maxRejectedStreams: 100,
  /** Empty or invalid frames (0-length DATA without END_STREAM, frames on closed streams…) before the connection ends. */
  maxInvalidFrames: 100,
  /** Streams the client may reset before their response completed: a burst, then a rate per second. */
  resetBurst: 100,
  resetsPerSecond: 10,
  /** SETTINGS frames from the client: a burst, then a rate per second. */
  settingsBurst: 10,
  settingsPerSecond: 1,
} as const;

const { NGHTTP2_ENHANCE_YOUR_CALM } = http2.constants;

export interface H2Settings {
  readonly maxHeaderSize: number;
  readonly idleTimeoutMs: number;
}

export type H2RequestHandler = (req: ProxiedH2Request, res: ProxiedH2Response) => void;

/** Per-connection abuse accounting. */
interface SessionGuard {
  readonly resets: Budget;
  readonly settings: Budget;
}

export class H2Sessions {
  readonly #server: Http2Server<typeof IncomingMessage, typeof ServerResponse, typeof ProxiedH2Request, typeof ProxiedH2Response>;
  readonly #logger: Logger;
  readonly #onRequest: H2RequestHandler;
  readonly #sessions = new Map<ServerHttp2Session, SessionGuard>();
  /** Streams handed to the request handler. */
  readonly #dispatched = new WeakSet<ServerHttp2Stream>();
  #settings: H2Settings;

  constructor(settings: H2Settings, onRequest: H2RequestHandler, logger: Logger) {
    this.#settings = settings;
    this.#logger = logger;
    this.#onRequest = onRequest;
    this.#server = http2.createServer({
      settings: serverSettings(settings),
      // Pseudo-headers count as entries too; the guard refuses more than MAX_HEADER_COUNT real ones.
      maxHeaderListPairs: MAX_HEADER_COUNT + 8,
      maxSessionInvalidFrames: H2_LIMITS.maxInvalidFrames,
      maxSessionRejectedStreams: H2_LIMITS.maxRejectedStreams,
      Http2ServerRequest: ProxiedH2Request,
      Http2ServerResponse: ProxiedH2Response,
    });
    this.#server.on('session', (session: ServerHttp2Session) => this.#onSession(session));
    this.#server.on('stream', (stream: ServerHttp2Stream) => {
      const session = stream.session as ServerHttp2Session;
      stream.once('close', () => {
        // Reset before it was forwarded (forwarded streams are judged in dispatch()).
        if (stream.rstCode !== 0 && !this.#dispatched.has(stream)) this.#reset(session);
      });
    });
    this.#server.on('request', (req: ProxiedH2Request, res: ProxiedH2Response) => {
      // One event-loop turn later: a reset that came in the same read as the HEADERS (the
      // rapid-reset pattern) has closed the stream by then, and nothing is forwarded.
      setImmediate(dispatch, this, req, res);
    });
    // `Expect: 100-continue`: the forwarder sends the 100 once the request is forwarded (continue.ts).
    this.#server.on('checkContinue', (req: ProxiedH2Request, res: ProxiedH2Response) => {
      awaitContinue(res);
      setImmediate(dispatch, this, req, res);
    });
  }

  /**
   * Takes over the TLS connections of `server` that negotiated h2; the others go to the HTTPS
   * server's own handler, as before. The server must offer `h2` in its ALPN list.
   */
  attach(server: https.Server): void {
    const http1 = server.listeners('secureConnection')[0] as ((socket: TLSSocket) => void) | undefined;
    if (http1 === undefined) throw new Error('https server without its connection handler');
    server.removeListener('secureConnection', http1);
    server.on('secureConnection', (socket: TLSSocket) => {
      if (socket.alpnProtocol === 'h2') this.#server.emit('connection', socket);
      else http1.call(server, socket);
    });
  }

  /** Reload: new limits for new connections (open ones keep theirs). */
  reconfigure(settings: H2Settings): void {
    this.#settings = settings;
    this.#server.updateSettings(serverSettings(settings));
  }

  /**
   * Drain and shutdown: GOAWAY to every connection; each closes once its streams are done (an
   * HTTP/2 connection has no idle state between requests worth keeping: a client opens a new one).
   */
  closeGracefully(): void {
    for (const session of this.#sessions.keys()) if (!session.closed) session.close();
  }

  /** Every connection closed now. */
  destroyAll(): void {
    for (const session of this.#sessions.keys()) session.destroy();
  }

  /** Internal to the request dispatch. */
  dispatch(req: ProxiedH2Request, res: ProxiedH2Response): void {
    const stream = req.stream;
    // Reset in the same read as its HEADERS: counted when it closed, never forwarded.
    if (stream.destroyed || stream.closed) return;
    this.#dispatched.add(stream);
    stream.once('close', () => {
      // A reset by the client before the response was complete (ours are marked).
      if (stream.rstCode !== 0 && !res.resetByProxy && !res.writableFinished) this.#reset(stream.session as ServerHttp2Session | undefined);
    });
    this.#onRequest(req, res);
  }

  #onSession(session: ServerHttp2Session): void {
    const now = performance.now();
    this.#sessions.set(session, {
      resets: new Budget(H2_LIMITS.resetBurst, H2_LIMITS.resetsPerSecond, now),
      settings: new Budget(H2_LIMITS.settingsBurst, H2_LIMITS.settingsPerSecond, now),
    });
    session.once('close', () => this.#sessions.delete(session));
    session.on('error', (err: NodeJS.ErrnoException) => {
      this.#logger.debug({ code: err.code, client: session.socket?.remoteAddress }, 'http2 connection error');
    });
    session.on('remoteSettings', () => {
      const guard = this.#sessions.get(session);
      if (guard !== undefined && !guard.settings.take(performance.now())) this.#abuse(session, 'settings flood');
    });
    const idle = this.#settings.idleTimeoutMs;
    if (idle > 0) session.setTimeout(idle, () => session.close());
  }

  #reset(session: ServerHttp2Session | undefined): void {
    if (session === undefined) return;
    const guard = this.#sessions.get(session);
    if (guard !== undefined && !guard.resets.take(performance.now())) this.#abuse(session, 'rapid reset');
  }

  /** GOAWAY(ENHANCE_YOUR_CALM), then the connection is gone; others are not touched. */
  #abuse(session: ServerHttp2Session, reason: string): void {
    if (session.destroyed) return;
    this.#logger.info({ code: ABUSE, reason, client: session.socket?.remoteAddress }, 'http2 connection ended');
    this.#sessions.delete(session);
    session.goaway(NGHTTP2_ENHANCE_YOUR_CALM);
    // The GOAWAY is queued on the socket first; destroy() then closes it without waiting on streams.
    setImmediate(() => session.destroy());
  }
}

function dispatch(sessions: H2Sessions, req: ProxiedH2Request, res: ProxiedH2Response): void {
  sessions.dispatch(req, res);
}

function serverSettings(settings: H2Settings): http2.Settings {
  return {
    maxConcurrentStreams: H2_LIMITS.maxConcurrentStreams,
    maxHeaderListSize: settings.maxHeaderSize,
    enablePush: false,
  };
}
