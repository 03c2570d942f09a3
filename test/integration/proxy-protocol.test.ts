/**
 * PROXY protocol received on listeners (SPEC §10), over real sockets: v1 and v2 (with TLVs)
 * give the client address for X-Forwarded-For and the logs; the client's own X-Forwarded-* are
 * dropped; an untrusted peer, a missing, invalid or truncated header closes the connection;
 * TLS and TCP listeners too.
 */
import t from 'tap';
import net from 'node:net';
import tls from 'node:tls';
import http2 from 'node:http2';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TestBackend } from '../helpers/backend.js';
import { leakCheck } from '../helpers/handles.js';
import { FAST_CHECKS, startProxy, waitFor } from '../helpers/harness.js';
import { TCP_CHECKS, TcpBackend } from '../helpers/tunnels.js';

const run = promisify(execFile);

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

/** A v2 PROXY header for TCP over IPv4, with optional TLVs appended. */
function v2(src: string, dst: string, sport: number, dport: number, tlvs: Buffer = Buffer.alloc(0)): Buffer {
  const addr = Buffer.alloc(12);
  src.split('.').forEach((n, i) => (addr[i] = Number(n)));
  dst.split('.').forEach((n, i) => (addr[4 + i] = Number(n)));
  addr.writeUInt16BE(sport, 8);
  addr.writeUInt16BE(dport, 10);
  const len = Buffer.alloc(2);
  len.writeUInt16BE(addr.length + tlvs.length);
  return Buffer.concat([V2_SIG, Buffer.from([0x21, 0x11]), len, addr, tlvs]);
}

function tlv(type: number, value: string): Buffer {
  const head = Buffer.alloc(3);
  head[0] = type;
  head.writeUInt16BE(Buffer.byteLength(value), 1);
  return Buffer.concat([head, Buffer.from(value)]);
}

/** Writes `data` (in one segment) and collects everything until the proxy closes. */
function exchange(port: number, data: Buffer | string, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    const timer = setTimeout(() => {
      out += '<timeout>';
      socket.destroy();
    }, timeoutMs);
    socket.on('connect', () => socket.write(data));
    socket.on('data', (d) => (out += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/**
 * A TLS exchange behind a PROXY `header`: `sameSegment` corks the raw socket so the header and
 * the ClientHello leave in one write (as a balancer often sends them); otherwise the header goes
 * alone and the handshake starts once it is out.
 */
function overTls(port: number, header: Buffer | string, request: string, sameSegment: boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(port, '127.0.0.1');
    const start = (): void => {
      const socket = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost' }, () => socket.write(request));
      let out = '';
      socket.on('data', (d: Buffer) => (out += d.toString()));
      socket.on('error', reject);
      socket.on('close', () => resolve(out));
    };
    if (sameSegment) {
      raw.cork();
      raw.write(header);
      start();
      process.nextTick(() => raw.uncork());
    } else {
      raw.once('connect', () => raw.write(header, () => setTimeout(start, 50)));
    }
  });
}

const GET = 'GET /who HTTP/1.1\r\nHost: app.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close\r\n\r\n';

function httpConfig(backend: string, listener: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app', proxy_protocol: true, trusted_proxies: ['127.0.0.0/8'], header_timeout: '500ms', ...listener }],
    pools: { app: { health_check: FAST_CHECKS, backends: [{ name: 'app', address: backend }] } },
  };
}

t.test('http listener: v1 and v2 (with TLVs) give the client address; its own X-Forwarded-For is dropped', async (t) => {
  const leaks = leakCheck();
  const backend = await new TestBackend({ name: 'app' }).start();
  const h = await startProxy(httpConfig(backend.address));
  const port = h.port();

  t.match(await exchange(port, `PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n${GET}`), /^HTTP\/1\.1 200 /, 'v1');
  t.equal(backend.traffic.at(-1)?.headers['x-forwarded-for'], '203.0.113.7', 'v1 source is the client; the client\'s X-Forwarded-For is not trusted');

  const withTlvs = v2('198.51.100.9', '10.0.0.1', 40000, 443, Buffer.concat([tlv(0x01, 'h2'), tlv(0x02, 'app.test'), tlv(0x04, '')]));
  t.match(await exchange(port, Buffer.concat([withTlvs, Buffer.from(GET)])), /^HTTP\/1\.1 200 /, 'v2 with TLVs');
  t.equal(backend.traffic.at(-1)?.headers['x-forwarded-for'], '198.51.100.9');
  t.match(await exchange(port, `PROXY UNKNOWN\r\n${GET}`), /^HTTP\/1\.1 200 /, 'v1 UNKNOWN: the peer address stands');
  t.equal(backend.traffic.at(-1)?.headers['x-forwarded-for'], '127.0.0.1');
  await waitFor(() => h.log.access.some((l) => l['client'] === '198.51.100.9'), 3_000, 'access log');
  t.pass('the access log names the client from the header');

  const before = backend.traffic.length;
  const refused: [string, Buffer | string][] = [
    ['no header', GET],
    ['v1 malformed', `PROXY TCP4 1.2.3 4.5.6.7 1 2\r\n${GET}`],
    ['v1 without CRLF within 107 bytes', `PROXY TCP4 ${'1'.repeat(120)}`],
    ['v2 truncated address block', Buffer.concat([V2_SIG, Buffer.from([0x21, 0x11, 0x00, 0x08]), Buffer.alloc(8), Buffer.from(GET)])],
    ['v2 truncated TLV', Buffer.concat([v2('1.2.3.4', '5.6.7.8', 1, 2, Buffer.from([0x01, 0x00, 0x09, 0x41])), Buffer.from(GET)])],
    ['v2 bad version', Buffer.concat([V2_SIG, Buffer.from([0x11, 0x11, 0x00, 0x00]), Buffer.from(GET)])],
  ];
  for (const [what, data] of refused) t.equal(await exchange(port, data), '', `${what}: closed, nothing answered`);
  t.equal(await exchange(port, V2_SIG.subarray(0, 10)), '', 'a header cut short: closed at header_timeout');
  t.equal(backend.traffic.length, before, 'nothing was forwarded');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('a peer outside trusted_proxies is closed even with a valid header', async (t) => {
  const leaks = leakCheck();
  const backend = await new TestBackend({ name: 'app' }).start();
  const h = await startProxy(httpConfig(backend.address, { trusted_proxies: ['10.0.0.0/8'] }));
  t.equal(await exchange(h.port(), `PROXY TCP4 203.0.113.7 10.0.0.1 51000 443\r\n${GET}`), '');
  t.equal(backend.traffic.length, 0);
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('TLS listener: the header then the TLS handshake, in the same segment or not; HTTP/1.1 and HTTP/2', async (t) => {
  const leaks = leakCheck();
  const dir = t.testdir({});
  const cert = join(dir, 'c.crt');
  const key = join(dir, 'c.key');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert]);
  const backend = await new TestBackend({ name: 'app' }).start();
  const h = await startProxy(httpConfig(backend.address, { tls: { cert, key } }));
  t.match(await overTls(h.port(), 'PROXY TCP4 192.0.2.44 10.0.0.1 5555 443\r\n', GET, true), /^HTTP\/1\.1 200 /);
  t.equal(backend.traffic.at(-1)?.headers['x-forwarded-for'], '192.0.2.44');
  t.equal(backend.traffic.at(-1)?.headers['x-forwarded-proto'], 'https');
  t.match(await overTls(h.port(), v2('192.0.2.45', '10.0.0.1', 5556, 443), GET, false), /^HTTP\/1\.1 200 /, 'the header in a segment of its own');
  t.equal(backend.traffic.at(-1)?.headers['x-forwarded-for'], '192.0.2.45');

  // HTTP/2 (ALPN h2) behind the header, in the same segment as the ClientHello.
  const session = http2.connect(`https://localhost:${h.port()}`, {
    createConnection: () => {
      const raw = net.connect(h.port(), '127.0.0.1');
      raw.cork();
      raw.write('PROXY TCP4 192.0.2.46 10.0.0.1 5557 443\r\n');
      const socket = tls.connect({ socket: raw, rejectUnauthorized: false, servername: 'localhost', ALPNProtocols: ['h2'] });
      process.nextTick(() => raw.uncork());
      return socket;
    },
  });
  session.on('error', () => undefined);
  const status = await new Promise<number>((resolve, reject) => {
    const stream = session.request({ ':path': '/who' });
    let code = 0;
    stream.on('response', (head) => (code = Number(head[':status'])));
    stream.on('error', reject);
    stream.resume();
    stream.on('close', () => resolve(code));
  });
  await new Promise<void>((resolve) => session.close(() => resolve()));
  t.equal(status, 200, 'HTTP/2');
  t.equal(backend.traffic.at(-1)?.headers['x-forwarded-for'], '192.0.2.46', 'HTTP/2 requests carry the client from the header');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('tcp listener: v2 header; the tunnel carries the bytes after it; logs name the client', async (t) => {
  const leaks = leakCheck();
  const db = await new TcpBackend('db').start();
  const h = await startProxy({
    log: { level: 'debug' },
    shutdown_timeout: '500ms',
    listeners: [{ name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', pool: 'db', proxy_protocol: true, trusted_proxies: ['127.0.0.1/32'] }],
    pools: { db: { health_check: TCP_CHECKS, backends: [{ name: 'db', address: db.address }] } },
  });
  const echoed = await new Promise<string>((resolve) => {
    const socket = net.connect(h.port(), '127.0.0.1', () => socket.write(Buffer.concat([v2('192.0.2.99', '10.0.0.1', 1234, 5432), Buffer.from('ping')])));
    let out = '';
    socket.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ping')) socket.end();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(out));
  });
  t.match(echoed, 'ping', 'the bytes after the header reach the backend and come back');
  await waitFor(() => h.log.access.some((l) => l['client'] === '192.0.2.99'), 3_000, 'tunnel access line');
  t.pass('the tunnel is logged with the client from the header');
  t.equal(await exchange(h.port(), 'ping'), '', 'no header: closed');
  await h.stop();
  await db.close();
  await leaks.assertClean(t);
});
