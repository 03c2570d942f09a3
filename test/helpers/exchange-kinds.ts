/**
 * The exchange kinds the proxy forwards — HTTP/1.1 requests, HTTP/2 requests, WebSocket
 * upgrades — each as the client a user would point at it, behind one interface, so that one
 * contract suite (exchange-contract.ts) runs over all of them.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import http2, { type ClientHttp2Session } from 'node:http2';
import type net from 'node:net';
import { readFileSync } from 'node:fs';
import { selfSigned } from './tunnels.js';

/** What the client saw of one exchange. */
export interface Seen {
  /** 0 when the connection closed without a response head. */
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
  /** The response ended before its body was complete (a reset, a truncated message). */
  readonly cut: boolean;
}

export interface ExchangeKind {
  readonly name: string;
  /** The status of a served exchange: 200, or 101 for an upgrade that became a tunnel. */
  readonly served: number;
  /** Listener keys this kind needs besides name, listen and pool. */
  readonly listener: Readonly<Record<string, unknown>>;
  /** One exchange, start to end (a tunnel is closed by the client at once). */
  exchange(port: number): Promise<Seen>;
  /** Sends one exchange and leaves it open; the returned function makes the client go away. */
  open(port: number): Promise<() => void>;
}

/** Answers a request with 200 `ok`, and a WebSocket handshake with a valid 101 (RFC 6455 §4.2.2). */
export function answer(socket: net.Socket, head: string): void {
  const key = /\r\nsec-websocket-key: *([^\r]+)/i.exec(head)?.[1];
  if (key === undefined) {
    socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    return;
  }
  const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
}

/** Collects an HTTP/1 response; `cut` when it closed before its body was complete. */
function collect(res: http.IncomingMessage, resolve: (seen: Seen) => void): void {
  let body = '';
  res.on('data', (d: Buffer) => (body += d.toString()));
  res.on('error', () => undefined);
  res.once('close', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, cut: !res.complete }));
}

function http1Request(port: number, upgrade: boolean, onSent: (req: http.ClientRequest) => void, resolve: (seen: Seen) => void): void {
  const headers: Record<string, string> = upgrade
    ? { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') }
    : {};
  const req = http.request({ host: '127.0.0.1', port, path: '/contract', agent: false, headers }, (res) => collect(res, resolve));
  req.on('upgrade', (res: http.IncomingMessage, socket: net.Socket) => {
    socket.destroy();
    resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '', cut: false });
  });
  req.on('error', () => resolve({ status: 0, headers: {}, body: '', cut: true }));
  req.end();
  onSent(req);
}

function http1Kind(name: string, upgrade: boolean): ExchangeKind {
  return {
    name,
    served: upgrade ? 101 : 200,
    listener: {},
    exchange: (port) => new Promise((resolve) => http1Request(port, upgrade, () => undefined, resolve)),
    open: (port) =>
      new Promise((resolve) => {
        http1Request(port, upgrade, (req) => resolve(() => req.destroy()), () => undefined);
      }),
  };
}

function h2Connect(port: number, ca: Buffer): ClientHttp2Session {
  const session = http2.connect(`https://localhost:${port}`, { ca: [ca], servername: 'localhost', host: '127.0.0.1' });
  session.on('error', () => undefined);
  return session;
}

function h2Request(session: ClientHttp2Session, resolve: (seen: Seen) => void): http2.ClientHttp2Stream {
  const stream = session.request({ ':method': 'GET', ':path': '/contract' });
  let status = 0;
  let headers: Seen['headers'] = {};
  let body = '';
  stream.on('response', (h) => {
    status = Number(h[':status']);
    headers = h;
  });
  stream.on('data', (d: Buffer) => (body += d.toString()));
  stream.on('error', () => undefined);
  // On 'close', not 'end': a stream reset after part of the body also ends the readable side.
  stream.once('close', () => {
    resolve({ status, headers, body, cut: stream.rstCode !== 0 });
    session.close();
  });
  stream.end();
  return stream;
}

/** HTTP/2 over TLS needs a certificate: made once, in `dir`. */
async function h2Kind(dir: string): Promise<ExchangeKind> {
  const cert = await selfSigned(dir, 'exchange-contract', 'localhost');
  const ca = readFileSync(cert.cert);
  return {
    name: 'HTTP/2',
    served: 200,
    listener: { tls: cert, http2: true },
    exchange: (port) => new Promise((resolve) => h2Request(h2Connect(port, ca), resolve)),
    open: async (port) => {
      const session = h2Connect(port, ca);
      const stream = h2Request(session, () => undefined);
      return () => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        session.destroy();
      };
    },
  };
}

/** Every exchange implementation the proxy has; `dir` holds the HTTP/2 listener's certificate. */
export async function exchangeKinds(dir: string): Promise<ExchangeKind[]> {
  return [http1Kind('HTTP/1.1', false), await h2Kind(dir), http1Kind('WebSocket', true)];
}
