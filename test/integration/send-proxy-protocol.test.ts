/**
 * `send_proxy_protocol` on pools (SPEC §10), over real sockets: backends that require a PROXY
 * header get one first on every connection — requests, WebSocket-free HTTP keep-alive, TCP
 * tunnels and health checks — naming the client and the listener's address; an upstream
 * connection that carried one client's header never carries another client's requests.
 */
import t from 'tap';
import http from 'node:http';
import net, { type AddressInfo, type Socket } from 'node:net';
import { parseProxyHeader, type ProxiedAddresses } from '../../src/core/proxy-header.js';
import { leakCheck } from '../helpers/handles.js';
import { startProxy, waitFor } from '../helpers/harness.js';
import { h2close, h2connect, h2request } from '../helpers/h2.js';
import { selfSigned } from '../helpers/tunnels.js';
import { readFileSync } from 'node:fs';

interface Seen {
  readonly header: ProxiedAddresses | null;
  readonly version: 1 | 2;
}

/** A backend that closes any connection not starting with a PROXY header; records each header. */
class ProxiedBackend {
  readonly connections: Seen[] = [];
  readonly #server: net.Server;
  readonly #http: http.Server;
  readonly #sockets = new Set<Socket>();
  readonly #seen = new WeakMap<object, Seen>();
  port = 0;

  constructor(mode: 'http' | 'echo') {
    this.#http = http.createServer((req, res) => {
      const seen = this.#seen.get(req.socket);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ url: req.url, header: seen?.header ?? null }));
    });
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
      let buffered = Buffer.alloc(0);
      const onData = (chunk: Buffer): void => {
        buffered = Buffer.concat([buffered, chunk]);
        const result = parseProxyHeader(buffered);
        if (result.kind === 'incomplete') return;
        socket.off('data', onData);
        if (result.kind === 'invalid') {
          socket.destroy();
          return;
        }
        const seen: Seen = { header: result.addresses, version: buffered[0] === 0x50 ? 1 : 2 };
        this.connections.push(seen);
        this.#seen.set(socket, seen);
        const rest = buffered.subarray(result.length);
        socket.pause();
        if (mode === 'echo') {
          socket.on('data', (d: Buffer) => socket.write(d));
          socket.on('end', () => socket.end());
          if (rest.length > 0) socket.write(rest);
          socket.resume();
          return;
        }
        if (rest.length > 0) socket.unshift(rest);
        this.#http.emit('connection', socket);
        socket.resume();
      };
      socket.on('data', onData);
      // A connection closed before its header (a tcp check) is closed here too.
      socket.once('end', () => {
        if (!this.#seen.has(socket)) socket.destroy();
      });
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.#server.address() as AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function get(port: number, agent: http.Agent, path = '/'): Promise<{ status: number; body: { url: string; header: ProxiedAddresses | null } }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { url: string; header: ProxiedAddresses | null } }));
    }).on('error', reject);
  });
}

t.test('http pool, v1: the client and the listener address first on every connection; one client\'s connection is never another\'s', async (t) => {
  const leaks = leakCheck();
  const backend = await new ProxiedBackend('http').start();
  const h = await startProxy({
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: {
        send_proxy_protocol: 'v1',
        health_check: { protocol: 'http', path: '/healthz', interval: '100ms', timeout: '1s', rise: 1, fall: 2 },
        backends: [{ name: 'a', address: backend.address }],
      },
    },
  });
  const port = h.port();
  t.ok(backend.connections.some((c) => c.header === null && c.version === 1), 'health checks carry PROXY UNKNOWN (the backend, closing headerless connections, is up)');

  const one = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const two = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const a1 = await get(port, one, '/a1');
  const b1 = await get(port, two, '/b1');
  const a2 = await get(port, one, '/a2');
  const b2 = await get(port, two, '/b2');
  for (const r of [a1, b1, a2, b2]) t.equal(r.status, 200);
  t.equal(a1.body.header?.source.address, '127.0.0.1');
  t.same(a1.body.header?.destination, { address: '127.0.0.1', port }, 'destination: the listener\'s address and port');
  t.not(a1.body.header?.source.port, b1.body.header?.source.port, 'two clients, two headers');
  t.same(a2.body.header, a1.body.header, 'a client\'s next request carries its own header');
  t.same(b2.body.header, b1.body.header, 'and so does the other\'s: no upstream connection crossed clients');
  one.destroy();
  two.destroy();
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('http pool over HTTP/2: the streams of one client connection share its upstream connection; two clients never do', async (t) => {
  const leaks = leakCheck();
  const dir = t.testdir({});
  const cert = await selfSigned(dir, 'h2', 'localhost');
  const ca = [readFileSync(cert.cert)];
  const backend = await new ProxiedBackend('http').start();
  const h = await startProxy({
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app', tls: cert }],
    pools: { app: { send_proxy_protocol: 'v2', health_check: { protocol: 'tcp', interval: '1h', timeout: '1s' }, backends: [{ name: 'a', address: backend.address }] } },
  });
  const port = h.port();
  const sessions = [await h2connect(port, ca), await h2connect(port, ca)];
  const headers: (ProxiedAddresses | null)[][] = [[], []];
  for (let i = 0; i < 3; i++) {
    for (const [n, session] of sessions.entries()) {
      const reply = await h2request(session, { ':path': `/s${n}/${i}` });
      t.equal(reply.status, 200);
      headers[n]?.push((JSON.parse(reply.body.toString()) as { header: ProxiedAddresses | null }).header);
    }
  }
  // Health checks send LOCAL headers (no addresses): only the clients' connections are counted.
  t.equal(backend.connections.filter((c) => c.header !== null).length, 2, 'one upstream connection per client connection, not one per stream');
  for (const seen of headers) t.ok(seen.every((header) => header !== null && JSON.stringify(header) === JSON.stringify(seen[0])), 'each stream carries its client\'s header');
  t.not(headers[0]?.[0]?.source.port, headers[1]?.[0]?.source.port, 'two clients, two headers');
  await Promise.all(sessions.map((s) => h2close(s)));
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('tcp pool, v2: the header, then the client\'s bytes; received PROXY source passed on', async (t) => {
  const leaks = leakCheck();
  const backend = await new ProxiedBackend('echo').start();
  const h = await startProxy({
    log: { level: 'debug' },
    shutdown_timeout: '500ms',
    listeners: [{ name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', pool: 'db', proxy_protocol: true, trusted_proxies: ['127.0.0.1/32'] }],
    pools: { db: { send_proxy_protocol: 'v2', health_check: { protocol: 'tcp', interval: '100ms', timeout: '1s', rise: 1, fall: 2 }, backends: [{ name: 'db', address: backend.address }] } },
  });
  const port = h.port();
  const echoed = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('PROXY TCP4 192.0.2.10 10.0.0.1 4321 5432\r\nping'));
    let out = '';
    socket.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ping')) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(out));
  });
  t.equal(echoed, 'ping');
  await waitFor(() => backend.connections.some((c) => c.header !== null), 2_000, 'tunnel header');
  const seen = backend.connections.find((c) => c.header !== null);
  t.equal(seen?.version, 2);
  t.same(seen?.header?.source, { address: '192.0.2.10', port: 4321 }, 'the client named by the received header');
  t.same(seen?.header?.destination, { address: '127.0.0.1', port }, 'the listener\'s address');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});
