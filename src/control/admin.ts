/**
 * The admin listener (SPEC §7): status, metrics, events, runtime control and the dashboard, on
 * `admin.listen` only — never on a traffic port, so traffic limits and routes never apply to it
 * and it stays reachable when the traffic listeners are saturated.
 *
 * Every answer but the dashboard page and `/metrics` is JSON; errors are `{ "error": "..." }`.
 * Authentication is auth.ts; what the endpoints show and do is the {@link AdminHost}.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../log.js';
import { bind, closeServer } from '../listeners/bind.js';
import { CONTROL_ACTIONS, type AdminHost, type ControlAction } from './admin-types.js';
import { AdminAuth, type AuthResult } from './auth.js';
import { DASHBOARD } from './dashboard.js';
import { EventStream, type EventStreamOptions } from './event-stream.js';
import type { EventLog } from './events.js';

export interface AdminServerOptions {
  readonly listen: { readonly host: string; readonly port: number };
  /** The bearer token (the value of `admin.token_env`), or null for none. */
  readonly token: string | null;
  readonly host: AdminHost;
  readonly events: EventLog;
  readonly metrics: { render(): Promise<string>; readonly contentType: string };
  readonly logger: Logger;
  readonly stream?: EventStreamOptions;
}

type ReadEndpoint = '/' | '/status' | '/metrics' | '/events' | '/events/stream';
type Route =
  | { readonly kind: 'read'; readonly path: ReadEndpoint }
  | { readonly kind: 'reload' }
  | { readonly kind: 'control'; readonly pool: string; readonly backend: string; readonly action: ControlAction };

const READ_PATHS: ReadonlySet<string> = new Set<ReadEndpoint>(['/', '/status', '/metrics', '/events', '/events/stream']);
const CONTROL_PATH = /^\/pools\/([^/]+)\/backends\/([^/]+)\/([^/]+)$/;
const ACTIONS: ReadonlySet<string> = new Set(CONTROL_ACTIONS);

/** The route of a path (without its query), or null for an unknown one. */
function route(path: string): Route | null {
  if (READ_PATHS.has(path)) return { kind: 'read', path: path as ReadEndpoint };
  if (path === '/reload') return { kind: 'reload' };
  const match = CONTROL_PATH.exec(path);
  if (match === null || !ACTIONS.has(match[3] as string)) return null;
  try {
    return {
      kind: 'control',
      pool: decodeURIComponent(match[1] as string),
      backend: decodeURIComponent(match[2] as string),
      action: match[3] as ControlAction,
    };
  } catch {
    return null; // malformed %-encoding
  }
}

const SECURITY_HEADERS = {
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  // The dashboard URL may carry ?token=: never send it on as a Referer.
  'referrer-policy': 'no-referrer',
} as const;

export class AdminServer {
  readonly #options: AdminServerOptions;
  readonly #auth: AdminAuth;
  readonly #server: http.Server;
  readonly #stream: EventStream;
  readonly #logger: Logger;

  constructor(options: AdminServerOptions) {
    this.#options = options;
    this.#auth = new AdminAuth(options.token);
    this.#logger = options.logger.child({ component: 'admin' });
    this.#stream = new EventStream(options.events, options.stream);
    this.#server = http.createServer({ requestTimeout: 30_000, headersTimeout: 10_000, keepAliveTimeout: 5_000 });
    this.#server.maxConnections = 256;
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#onUpgrade(req, socket, head));
  }

  /** Binds `admin.listen`; a failure is a `LISTEN_FAILED` like any listener's. */
  listen(): Promise<AddressInfo> {
    return bind(this.#server, 'admin', this.#options.listen, this.#logger);
  }

  address(): AddressInfo | null {
    return this.#server.address() as AddressInfo | null;
  }

  /** Connected event-stream peers. */
  get streamClients(): number {
    return this.#stream.clients;
  }

  /** Closes the event stream and every admin connection. */
  close(): Promise<void> {
    this.#stream.close();
    const closed = closeServer(this.#server);
    this.#server.closeAllConnections();
    return closed;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    req.resume(); // no endpoint reads a body; drain it so keep-alive works
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      if (allowed(res, method, ['GET', 'HEAD'])) json(res, 200, { status: 'ok' });
      return;
    }
    // Readiness for load balancers and orchestrators: like /healthz, no token (a probe carries none).
    if (path === '/readyz') {
      if (!allowed(res, method, ['GET', 'HEAD'])) return;
      if (this.#options.host.ready) json(res, 200, { status: 'ready' });
      else json(res, 503, { status: 'not ready' });
      return;
    }
    const target = route(path);
    const queryToken = path === '/' && q !== -1 ? new URLSearchParams(url.slice(q + 1)).get('token') : null;
    // The page shell carries no data: with a token set it is served to anyone, and asks for the
    // token itself (every request it then makes carries it).
    const shell = path === '/' && this.#auth.required;
    const auth = shell ? { ok: true as const } : this.#auth.request(req, queryToken, method === 'POST');
    if (!auth.ok) {
      refuse(res, auth);
      return;
    }
    if (target === null) {
      json(res, 404, { error: `no such endpoint: ${path}` });
      return;
    }
    if (target.kind !== 'read') {
      if (allowed(res, method, ['POST'])) void this.#mutate(req, res, target);
      return;
    }
    if (allowed(res, method, ['GET', 'HEAD'])) void this.#read(res, target.path);
  }

  async #read(res: ServerResponse, path: ReadEndpoint): Promise<void> {
    const host = this.#options.host;
    try {
      switch (path) {
        case '/':
          res.writeHead(200, {
            ...SECURITY_HEADERS,
            'content-type': 'text/html; charset=utf-8',
            'content-security-policy': DASHBOARD.csp,
            'x-frame-options': 'DENY',
          });
          res.end(DASHBOARD.html);
          return;
        case '/status':
          // With workers, their latest figures first (bounded): /status shows the host as of now.
          await host.refresh?.();
          json(res, 200, { version: host.version, last_reload: host.lastReload, time: new Date().toISOString(), ...host.snapshot() });
          return;
        case '/metrics': {
          const text = await this.#options.metrics.render();
          res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': this.#options.metrics.contentType }).end(text);
          return;
        }
        case '/events':
          json(res, 200, { events: this.#options.events.recent() });
          return;
        case '/events/stream':
          json(res, 426, { error: 'this endpoint is a WebSocket' }, { upgrade: 'websocket', connection: 'Upgrade' });
          return;
      }
    } catch (err) {
      this.#failed(res, err);
    }
  }

  async #mutate(req: IncomingMessage, res: ServerResponse, target: Exclude<Route, { kind: 'read' }>): Promise<void> {
    try {
      if (target.kind === 'reload') {
        const result = await this.#options.host.reload();
        // 422: the new file could not be applied; the running config stays (the body says why).
        json(res, result.ok ? 200 : 422, result);
        return;
      }
      const client = (req.socket as Socket).remoteAddress ?? 'unknown';
      const outcome = this.#options.host.control(target.pool, target.backend, target.action, client);
      if (outcome.ok) json(res, 200, outcome.backend);
      else json(res, outcome.status, { error: outcome.error, code: outcome.code }); // a 404 has no code: JSON leaves it out
    } catch (err) {
      this.#failed(res, err);
    }
  }

  #failed(res: ServerResponse, err: unknown): void {
    this.#logger.error({ err }, 'admin request failed');
    if (res.headersSent) res.destroy();
    else json(res, 500, { error: 'internal error' });
  }

  #onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = req.url ?? '/';
    const path = url.split('?', 1)[0];
    if (path !== '/events/stream') {
      rawRefuse(socket, 404, 'Not Found', { error: `no WebSocket endpoint at ${path}` });
      return;
    }
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      rawRefuse(socket, 400, 'Bad Request', { error: 'only WebSocket upgrades are accepted' });
      return;
    }
    const auth = this.#auth.upgrade(req);
    if (!auth.ok) {
      const extra: Record<string, string> = auth.challenge === null ? {} : { 'WWW-Authenticate': auth.challenge };
      rawRefuse(socket, auth.status, auth.status === 401 ? 'Unauthorized' : 'Forbidden', { error: auth.error }, extra);
      return;
    }
    if (this.#stream.full) {
      rawRefuse(socket, 503, 'Service Unavailable', { error: 'too many event stream clients' });
      return;
    }
    this.#stream.accept(req, socket, head);
  }
}

/** Answers 405 with `Allow` when `method` is not one of `methods`. */
function allowed(res: ServerResponse, method: string, methods: readonly string[]): boolean {
  if (methods.includes(method)) return true;
  json(res, 405, { error: `method ${method} not allowed; use ${methods.join(' or ')}` }, { allow: methods.join(', ') });
  return false;
}

function refuse(res: ServerResponse, auth: Exclude<AuthResult, { ok: true }>): void {
  json(res, auth.status, { error: auth.error }, auth.challenge === null ? {} : { 'www-authenticate': auth.challenge });
}

function json(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** An answer on the raw socket of a refused upgrade, then close. */
function rawRefuse(socket: Duplex, status: number, reason: string, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  const text = `${JSON.stringify(body)}\n`;
  const lines = [
    `HTTP/1.1 ${status} ${reason}`,
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(text)}`,
    'Connection: close',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(`${lines.join('\r\n')}\r\n\r\n${text}`, () => socket.destroy());
}
