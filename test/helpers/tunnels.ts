/**
 * Backends and clients for tunnel tests: raw TCP servers (echo, greeting, scripted), WebSocket
 * echo servers (the `ws` package), a TCP client that collects what it receives, and a
 * self-signed certificate made with openssl.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { WebSocketServer, type WebSocket } from 'ws';

const run = promisify(execFile);

export interface TcpBackendOptions {
  /** Written to every new connection (identifies the backend); default none. */
  readonly greet?: boolean;
  /**
   * What to do with a connection; default: echo every byte and end when the client ends.
   * Replaces echo (and greet) when given.
   */
  readonly handler?: (socket: Socket) => void;
}

/** A TCP backend on 127.0.0.1 port 0 that can be killed (connections reset) and restarted on its port. */
export class TcpBackend {
  readonly name: string;
  port = 0;
  #server: net.Server | null = null;
  readonly sockets = new Set<Socket>();
  /** Connections that sent at least one byte (health checks send none). */
  sessions = 0;
  readonly #options: TcpBackendOptions;

  constructor(name: string, options: TcpBackendOptions = {}) {
    this.name = name;
    this.#options = options;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(port = this.port): Promise<this> {
    const server = net.createServer({ allowHalfOpen: true }, (socket) => this.#onConnection(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
    return this;
  }

  /** Stops accepting (new connections are refused) but keeps open connections. */
  async stopListening(): Promise<void> {
    const server = this.#server;
    if (server === null) return;
    this.#server = null;
    server.close();
  }

  /** Stops listening and resets every open connection, like a crashed process. */
  async kill(): Promise<void> {
    for (const socket of this.sockets) socket.resetAndDestroy();
    await this.close();
  }

  /** Stops listening and ends open connections. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.#server;
    this.#server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #onConnection(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    let counted = false;
    socket.on('data', () => {
      if (!counted) this.sessions++;
      counted = true;
    });
    if (this.#options.handler !== undefined) {
      this.#options.handler(socket);
      return;
    }
    if (this.#options.greet) socket.write(`${this.name}\n`);
    socket.pipe(socket);
  }
}

export async function startTcpBackends(names: readonly string[], options: TcpBackendOptions = {}): Promise<TcpBackend[]> {
  return Promise.all(names.map((name) => new TcpBackend(name, options).start()));
}

/** A TCP client that collects what it receives and remembers how the connection ended. */
export class TcpClient {
  readonly socket: Socket;
  received = '';
  ended = false;
  error: string | null = null;
  readonly closed: Promise<void>;
  readonly connected: Promise<void>;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => (this.received += d.toString()));
    socket.on('end', () => (this.ended = true));
    socket.on('error', (err: NodeJS.ErrnoException) => (this.error = err.code ?? err.message));
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    this.connected = new Promise((resolve) => {
      if (!socket.connecting) resolve();
      else socket.once('connect', () => resolve());
      socket.once('close', () => resolve());
    });
  }

  static connect(port: number): TcpClient {
    // allowHalfOpen off: when the proxy ends, the client ends too (its own end() still only half-closes).
    return new TcpClient(net.connect({ port, host: '127.0.0.1' }));
  }

  get isClosed(): boolean {
    return this.socket.destroyed;
  }

  /** Waits until `received` contains `text`; throws at once if the socket closes first, or after `timeoutMs` (a bound, generous for a loaded machine). */
  async waitFor(text: string, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.received.includes(text)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${JSON.stringify(text)}; got ${JSON.stringify(this.received)}`);
      if (this.socket.destroyed) throw new Error(`closed before ${JSON.stringify(text)}; got ${JSON.stringify(this.received)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** A WebSocket echo backend: an http server with a `ws` server on 127.0.0.1 port 0. */
export class WsBackend {
  readonly name: string;
  port = 0;
  #http: http.Server | null = null;
  #wss: WebSocketServer | null = null;
  /** Upgrade requests received (headers as the backend saw them). */
  readonly upgrades: http.IncomingHttpHeaders[] = [];
  readonly clients = new Set<WebSocket>();
  /** Close codes the backend received from clients. */
  readonly closeCodes: number[] = [];

  constructor(name: string) {
    this.name = name;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(port = this.port): Promise<this> {
    const server = http.createServer((req, res) => {
      // Health checks and plain requests.
      res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': this.name }).end(this.name);
    });
    const wss = new WebSocketServer({ server });
    wss.on('connection', (ws, req) => {
      this.upgrades.push(req.headers);
      this.clients.add(ws);
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `${this.name}:${String(data)}`, { binary: isBinary }));
      ws.on('close', (code) => {
        this.closeCodes.push(code);
        this.clients.delete(ws);
      });
      ws.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.#http = server;
    this.#wss = wss;
    return this;
  }

  /** Resets every WebSocket connection and stops listening, like a crashed process. */
  async kill(): Promise<void> {
    for (const ws of this.clients) ws.terminate();
    await this.close();
  }

  async close(): Promise<void> {
    const server = this.#http;
    const wss = this.#wss;
    this.#http = null;
    this.#wss = null;
    for (const ws of this.clients) ws.terminate();
    if (wss !== null) await new Promise<void>((resolve) => wss.close(() => resolve()));
    if (server !== null) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

export async function startWsBackends(names: readonly string[]): Promise<WsBackend[]> {
  return Promise.all(names.map((name) => new WsBackend(name).start()));
}

/**
 * Fast health checks for tunnel tests. The timeout is generous: a refused connection fails at
 * once anyway, and a loaded machine must not fail a startup check of a live backend.
 */
export const TCP_CHECKS = { protocol: 'tcp', interval: '100ms', timeout: '1s', rise: 1, fall: 1 } as const;
export const HTTP_CHECKS = { protocol: 'http', path: '/healthz', interval: '100ms', timeout: '1s', rise: 1, fall: 1 } as const;

/** One tcp listener `db` on an ephemeral loopback port with one pool `db`. */
export function tcpConfig(
  backends: readonly { name: string; address: string; weight?: number; role?: 'hot' | 'warm' }[],
  pool: Record<string, unknown> = {},
  listener: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '500ms',
    listeners: [{ name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', pool: 'db', ...listener }],
    pools: { db: { health_check: TCP_CHECKS, connect_timeout: '200ms', backends, ...pool } },
  };
}

/** A self-signed certificate for CN=`cn` written as `<name>.crt` / `<name>.key` in `dir`. */
export async function selfSigned(dir: string, name: string, cn = 'localhost'): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  await run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-days', '1', '-keyout', key, '-out', cert]);
  return { cert, key };
}
