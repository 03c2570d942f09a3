/**
 * HTTP/2 to clients (SPEC §11) over real sockets: ALPN offers h2 and http/1.1 on a TLS listener,
 * HTTP/2 requests reach backends as HTTP/1.1 with `:authority` as Host, are routed, balanced,
 * retried and logged like HTTP/1.1 ones; 100 streams share one connection; 8 MiB bodies go both
 * ways; a backend failure mid-response resets that stream only; WebSocket and plain-HTTP
 * refusals keep working on the same listener.
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { TestBackend } from '../helpers/backend.js';
import { leakCheck } from '../helpers/handles.js';
import { startProxy, waitFor, writeConfig } from '../helpers/harness.js';
import { HTTP_CHECKS, WsBackend, selfSigned } from '../helpers/tunnels.js';
import { h2close, h2connect, h2request } from '../helpers/h2.js';
import { close, closeAll, owned, stopProxy } from '../helpers/owned.js';

const dir = t.testdir({});
const cert = await selfSigned(dir, 'h2', 'localhost');
const ca = [readFileSync(cert.cert)];

function tlsListener(over: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'web', listen: '127.0.0.1:0', tls: cert, pool: 'app', ...over };
}

function pool(backends: readonly TestBackend[], over: Record<string, unknown> = {}): Record<string, unknown> {
  return { health_check: HTTP_CHECKS, connect_timeout: '500ms', response_timeout: '5s', backends: backends.map((b) => ({ name: b.name, address: b.address })), ...over };
}

function httpsGet(port: number, path = '/', headers: Record<string, string> = {}): Promise<{ status: number; body: string; alpn: string | false }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, servername: 'localhost', ca, agent: false, headers }, (res) => {
      let body = '';
      const alpn = (res.socket as tls.TLSSocket).alpnProtocol ?? false;
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, alpn }));
    });
    req.on('error', reject);
    req.end();
  });
}

function alpnOf(port: number, offered: string[]): Promise<string | false> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: offered }, () => {
      const chosen = socket.alpnProtocol ?? false;
      socket.destroy();
      resolve(chosen);
    });
    socket.once('error', reject);
  });
}

t.test('ALPN: h2 and http/1.1 offered; h2 requests reach the backend as HTTP/1.1 with :authority as Host', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app' }).start(), close);
  const h = own(await startProxy({ log: { level: 'debug' }, listeners: [tlsListener()], pools: { app: pool([app]) } }), stopProxy);
  t.equal(await alpnOf(h.port(), ['h2', 'http/1.1']), 'h2', 'a client offering both gets h2');
  t.equal(await alpnOf(h.port(), ['http/1.1']), 'http/1.1', 'a client offering http/1.1 gets it');

  const session = own(await h2connect(h.port(), ca), h2close);
  t.equal(session.remoteSettings.maxConcurrentStreams, 100, 'at most 100 concurrent streams announced');
  const reply = await h2request(session, { ':path': '/a/b?q=1', 'x-custom': 'v', cookie: ['a=1', 'b=2'] });
  t.equal(reply.status, 200);
  t.equal(reply.body.toString(), 'app');
  t.equal(reply.headers['x-backend'], 'app', 'backend headers come back');
  const seen = app.traffic[0];
  t.ok(seen, 'the backend got the request');
  t.equal(seen?.url, '/a/b?q=1', 'the target is the :path');
  t.equal(seen?.headers.host, `localhost:${h.port()}`, ':authority is the Host');
  t.equal(seen?.headers['x-forwarded-host'], `localhost:${h.port()}`);
  t.equal(seen?.headers['x-forwarded-proto'], 'https');
  t.equal(seen?.headers['x-custom'], 'v');
  t.equal(seen?.headers.cookie, 'a=1; b=2', 'cookie crumbs joined for HTTP/1.1 (RFC 9113 §8.2.3)');
  t.notOk(seen?.rawHeaders.some((name, i) => i % 2 === 0 && name.startsWith(':')), 'no pseudo-header reaches the backend');

  const h1 = await httpsGet(h.port());
  t.match(h1, { status: 200, body: 'app' }, 'HTTP/1.1 on the same listener (a client offering no ALPN)');
  await waitFor(() => h.log.access.length === 2, 3_000, 'access lines');
  // Found by protocol, not by position: with workers the two connections may be served by
  // different workers, each writing its access lines in its own 50 ms batches.
  t.match(h.log.access.find((l) => l.protocol === 'http2'), { protocol: 'http2', status: 200, method: 'GET', path: '/a/b', backend: 'app' });
  t.match(h.log.access.find((l) => l.protocol === 'http1'), { protocol: 'http1', status: 200 });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('routing by :authority; a host header that differs from :authority is 400 and never forwarded', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app' }).start(), close);
  const api = own(await new TestBackend({ name: 'api' }).start(), close);
  const h = own(await startProxy({
    listeners: [tlsListener({ pool: undefined, routes: [{ host: 'api.example.com', pool: 'api' }, { pool: 'app' }] })],
    pools: { app: pool([app]), api: pool([api]) },
  }), stopProxy);
  const session = own(await h2connect(h.port(), ca), h2close);
  t.equal((await h2request(session, { ':path': '/', ':authority': 'api.example.com' })).body.toString(), 'api');
  t.equal((await h2request(session, { ':path': '/', ':authority': 'www.example.com' })).body.toString(), 'app');
  t.equal(api.traffic[0]?.headers.host, 'api.example.com');
  const same = await h2request(session, { ':path': '/', ':authority': 'api.example.com', host: 'api.example.com' });
  t.equal(same.body.toString(), 'api', 'a host equal to :authority is fine');
  const differs = await h2request(session, { ':path': '/', ':authority': 'www.example.com', host: 'api.example.com' });
  t.equal(differs.status, 400, 'host differing from :authority');
  const alias = await h2request(session, { ':path': '/', x_forwarded_for: '1.2.3.4' });
  t.equal(alias.status, 400, 'the HTTP/1.1 guard applies too');
  const connect = await h2request(session, { ':method': 'CONNECT', ':authority': 'example.com:443' }).catch((err: Error) => err);
  t.ok(connect instanceof Error || connect.status === 405, 'CONNECT is refused');
  t.equal(app.traffic.length + api.traffic.length, 3, 'refused requests reached no backend');
  t.equal((await h2request(session, { ':path': '/' })).status, 200, 'the connection still serves');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('100 concurrent streams on one connection, balanced over the pool', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await Promise.all(['b1', 'b2'].map((name) => new TestBackend({ name, latencyMs: 50 }).start())), closeAll);
  const h = own(await startProxy({ log: { level: 'info' }, listeners: [tlsListener()], pools: { app: pool(backends) } }), stopProxy);
  const session = own(await h2connect(h.port(), ca), h2close);
  const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => h2request(session, { ':path': `/s/${i}` })));
  t.equal(replies.filter((r) => r.status === 200).length, 100, 'all 100 answered');
  const counts = backends.map((b) => b.traffic.length);
  t.equal(counts[0]! + counts[1]!, 100);
  t.ok(counts.every((c) => c >= 25), `both backends served (${counts.join('/')})`);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('8 MiB bodies both ways; a body without content-length reaches the backend chunked', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const big = Buffer.alloc(8 * 1024 * 1024, 'x');
  for (let i = 0; i < big.length; i += 4096) big[i] = 97 + ((i / 4096) % 26);
  const digest = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');
  const app = own(await new TestBackend({
    name: 'app',
    handler: (req, res, body) => {
      if (req.url === '/down') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': big.length });
        res.end(big);
        return;
      }
      res.writeHead(200, { 'x-te': req.headers['transfer-encoding'] ?? '', 'x-cl': req.headers['content-length'] ?? '' });
      res.end(`${Buffer.byteLength(body, 'latin1')} ${digest(Buffer.from(body, 'latin1'))}`);
    },
  }).start(), close);
  const h = own(await startProxy({ log: { level: 'info' }, listeners: [tlsListener()], pools: { app: pool([app], { response_timeout: '20s' }) } }), stopProxy);
  const session = own(await h2connect(h.port(), ca), h2close);
  const down = await h2request(session, { ':path': '/down' });
  t.equal(down.body.length, big.length, '8 MiB down');
  t.equal(digest(down.body), digest(big), 'intact');
  const up = await h2request(session, { ':path': '/up', ':method': 'POST' }, big);
  t.equal(up.body.toString(), `${big.length} ${digest(big)}`, '8 MiB up, intact');
  t.equal(up.headers['x-te'], 'chunked', 'no content-length: chunked to the backend');
  const sized = await h2request(session, { ':path': '/up', ':method': 'POST', 'content-length': '5' }, 'hello');
  t.equal(sized.headers['x-cl'], '5', 'content-length kept');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('Expect: 100-continue over HTTP/2: 413 by content-length without a 100 first; within the limit 100, then the answer', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app' }).start(), close);
  const h = own(await startProxy({ log: { level: 'info' }, listeners: [tlsListener({ max_body_size: '1KiB' })], pools: { app: pool([app]) } }), stopProxy);
  const session = own(await h2connect(h.port(), ca), h2close);
  const ask = (length: number): Promise<{ status: number; continued: boolean }> =>
    new Promise((resolve, reject) => {
      const stream = session.request({ ':method': 'POST', ':path': '/up', 'content-length': String(length), expect: '100-continue' });
      let continued = false;
      let status = 0;
      // The body is sent only once the 100 arrives, as a client waiting on it does.
      stream.on('continue', () => {
        continued = true;
        stream.end(Buffer.alloc(length, 'a'));
      });
      stream.on('response', (head) => (status = Number(head[':status'])));
      stream.on('error', reject);
      stream.resume();
      stream.on('close', () => resolve({ status, continued }));
    });
  const refused = await ask(4096);
  t.same(refused, { status: 413, continued: false }, 'over the limit: the 413 at once, no 100 Continue');
  t.equal(app.traffic.length, 0, 'nothing reached the backend');
  const passed = await ask(512);
  t.same(passed, { status: 200, continued: true }, 'within the limit: 100 Continue, then the backend answers');
  t.equal(app.traffic.at(-1)?.body.length, 512, 'the body sent after the 100 is forwarded');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('failover: a backend resetting before the head is retried; one failing mid-body resets only that stream', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const resetting = own(await new TestBackend({ name: 'resetting', handler: (req) => void req.socket.resetAndDestroy() }).start(), close);
  const good = own(await new TestBackend({ name: 'good' }).start(), close);
  const h = own(await startProxy({
    log: { level: 'info' },
    listeners: [tlsListener()],
    pools: { app: pool([resetting, good], { health_check: { protocol: 'tcp', interval: '100ms', timeout: '1s', rise: 1, fall: 3 }, passive: { consecutive_failures: 100 } }) },
  }), stopProxy);
  const session = own(await h2connect(h.port(), ca), h2close);
  const replies = await Promise.all(Array.from({ length: 4 }, () => h2request(session, { ':path': '/' })));
  t.same(replies.map((r) => r.body.toString()), ['good', 'good', 'good', 'good'], 'idempotent requests retried on the good backend');
  t.ok(resetting.traffic.length >= 1, 'the resetting backend was tried');
  await waitFor(() => h.log.access.length === 4, 3_000, 'access lines');
  t.ok(h.log.access.some((l) => l.retries === 1 && l.protocol === 'http2'), 'a retry is logged');
  const post = await h2request(session, { ':path': '/', ':method': 'POST' }, 'body');
  t.ok(post.status === 200 || post.status === 502, `a POST is not retried after a reset (got ${post.status})`);
  await own.stopAll();

  // Mid-body: the head and part of the body went out, then the backend died.
  const dying = own(await new TestBackend({
    name: 'dying',
    handler: (req, res) => {
      if (req.url === '/ok') {
        res.end('fine');
        return;
      }
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setTimeout(() => req.socket.destroy(), 50);
    },
  }).start(), close);
  const h2 = own(await startProxy({ log: { level: 'info' }, listeners: [tlsListener()], pools: { app: pool([dying]) } }), stopProxy);
  const s2 = own(await h2connect(h2.port(), ca), h2close);
  const broken = await h2request(s2, { ':path': '/die' }).then(() => null, (err: Error) => err);
  t.ok(broken instanceof Error, 'a body cut short is a stream error, never a complete response');
  t.equal((await h2request(s2, { ':path': '/ok' })).body.toString(), 'fine', 'the connection keeps serving other streams');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('WebSocket, plain-HTTP 400 and http2: false on the TLS listener', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app' }).start(), close);
  const ws = own(await new WsBackend('ws').start(), close);
  const h = own(await startProxy({
    listeners: [
      tlsListener({ pool: undefined, routes: [{ path_prefix: '/ws', pool: 'ws' }, { pool: 'app' }] }),
      tlsListener({ name: 'h1only', http2: false }),
    ],
    pools: { app: pool([app]), ws: { health_check: HTTP_CHECKS, backends: [{ name: 'ws', address: ws.address }] } },
  }), stopProxy);
  const tlsOptions: ClientOptions & tls.ConnectionOptions = { ca, servername: 'localhost' };
  const client = new WebSocket(`wss://127.0.0.1:${h.port()}/ws`, tlsOptions);
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  const echoed = new Promise<string>((resolve) => client.once('message', (d) => resolve(String(d))));
  client.send('hi');
  t.equal(await echoed, 'ws:hi', 'WebSocket over TLS on the h2 listener');
  const closed = new Promise<number>((resolve) => client.once('close', (c) => resolve(c)));
  client.close(1000);
  t.equal(await closed, 1000);

  const plain = await new Promise<string>((resolve) => {
    let text = '';
    const s = net.connect(h.port(), '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    s.on('data', (d: Buffer) => (text += d.toString()));
    s.on('close', () => resolve(text));
    s.on('error', () => resolve(text));
  });
  t.match(plain, /^HTTP\/1\.1 400 /, 'plain HTTP still gets the readable 400');

  t.equal(await alpnOf(h.port('h1only'), ['h2', 'http/1.1']), 'http/1.1', 'http2: false offers http/1.1 only');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('shutdown: an HTTP/2 connection gets GOAWAY and its stream in progress finishes', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app', latencyMs: 200 }).start(), close);
  const h = own(await startProxy({ listeners: [tlsListener()], pools: { app: pool([app]) } }), stopProxy);
  const session = own(await h2connect(h.port(), ca), h2close);
  const goaway = new Promise<void>((resolve) => session.once('goaway', () => resolve()));
  const pending = h2request(session, { ':path': '/slow' });
  await waitFor(() => app.traffic.length === 1, 3_000, 'request at the backend');
  const stopped = h.stop();
  await goaway;
  t.equal((await pending).status, 200, 'the stream in progress finished');
  await stopped;
  await new Promise<void>((resolve) => (session.destroyed ? resolve() : session.once('close', () => resolve())));
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('an idle HTTP/2 connection is closed with GOAWAY after idle_timeout', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app' }).start(), close);
  const h = own(await startProxy({ listeners: [tlsListener({ idle_timeout: '300ms' })], pools: { app: pool([app]) } }), stopProxy);
  const session = own(await h2connect(h.port(), ca), h2close);
  const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
  t.equal((await h2request(session, { ':path': '/' })).status, 200);
  t.equal(await goaway, 0, 'GOAWAY(NO_ERROR) once idle');
  await new Promise<void>((resolve) => (session.destroyed ? resolve() : session.once('close', () => resolve())));
  await waitFor(() => h.proxy.listeners.get('web')?.openConnections === 0, 3_000, 'the proxy side closed');
  t.pass('the connection is gone on both sides');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('reload: a new max_header_size is announced to new HTTP/2 connections', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app' }).start(), close);
  const file = `${dir}/reload.yaml`;
  const config = (size: string): Record<string, unknown> => ({ listeners: [tlsListener({ max_header_size: size })], pools: { app: pool([app]) } });
  const h = own(await startProxy(config('8KiB'), { file }), stopProxy);
  const before = own(await h2connect(h.port(), ca), h2close);
  t.equal(before.remoteSettings.maxHeaderListSize, 8192);
  writeConfig(file, config('32KiB'));
  t.match(await h.proxy.reload(), { ok: true });
  const after = own(await h2connect(h.port(), ca), h2close);
  t.equal(after.remoteSettings.maxHeaderListSize, 32768, 'new connections get the new limit');
  t.equal((await h2request(before, { ':path': '/' })).status, 200, 'the open connection keeps serving');
  await own.stopAll();
  await leaks.assertClean(t);
});
