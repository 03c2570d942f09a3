/**
 * Real HTTP backends for tests: node:http servers on 127.0.0.1 port 0 that record what they
 * receive, answer as scripted, and can be killed and restarted on the same port.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void | Promise<void>;

export interface BackendOptions {
  /** Name echoed in the `x-backend` response header and body. */
  readonly name?: string;
  /** Delay before answering, ms. */
  readonly latencyMs?: number;
  /** Custom handler; default answers 200 `name`. */
  readonly handler?: Handler;
  /** Status of /healthz (default 200). */
  readonly health?: () => number;
}

export class TestBackend {
  readonly name: string;
  readonly received: Received[] = [];
  /** Connections accepted (a tcp health check is one). */
  connections = 0;
  port = 0;
  #server: http.Server | null = null;
  readonly #sockets = new Set<Socket>();
  readonly #options: BackendOptions;
  healthStatus = 200;
  latencyMs: number;
  handler: Handler | undefined;

  constructor(options: BackendOptions = {}) {
    this.name = options.name ?? 'backend';
    this.#options = options;
    this.latencyMs = options.latencyMs ?? 0;
    this.handler = options.handler;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Requests received, health checks excluded. */
  get traffic(): Received[] {
    return this.received.filter((r) => r.url !== '/healthz');
  }

  get running(): boolean {
    return this.#server !== null;
  }

  async start(port = this.port): Promise<this> {
    const server = http.createServer((req, res) => this.#onRequest(req, res));
    server.keepAliveTimeout = 5_000;
    server.on('connection', (socket: Socket) => {
      this.connections++;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
    return this;
  }

  /** Stops listening and resets every open connection, like a crashed process. */
  async kill(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    for (const socket of this.#sockets) socket.resetAndDestroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Closes gracefully: stops listening, lets open requests finish. */
  async close(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    server.closeIdleConnections();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      setTimeout(() => server.closeAllConnections(), 500).unref();
    });
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      req.once('end', () => resolve());
      req.once('close', () => resolve());
    });
    const body = Buffer.concat(chunks).toString();
    if (req.url === '/healthz') {
      const status = this.#options.health?.() ?? this.healthStatus;
      this.received.push({ method: req.method ?? '', url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, body });
      res.writeHead(status, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    this.received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body });
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    if (res.destroyed) return;
    if (this.handler !== undefined) {
      await this.handler(req, res, body);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': this.name }).end(this.name);
  }
}

export async function startBackends(names: readonly string[], options: Omit<BackendOptions, 'name'> = {}): Promise<TestBackend[]> {
  return Promise.all(names.map((name) => new TestBackend({ ...options, name }).start()));
}
