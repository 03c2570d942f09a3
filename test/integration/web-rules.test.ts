/**
 * What a route does besides choosing a pool (SPEC §10), over real sockets: redirects (listener
 * and route), strip_prefix, header rules both ways (the proxy's own answers included, WebSocket
 * handshakes too), per-route response_timeout and retries, max_body_size with and without
 * Content-Length.
 */
import t from 'tap';
import net from 'node:net';
import { WebSocket } from 'ws';
import { TestBackend } from '../helpers/backend.js';
import { rawRequest, request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { FAST_CHECKS, startProxy, waitFor } from '../helpers/harness.js';
import { HTTP_CHECKS, WsBackend } from '../helpers/tunnels.js';

const base = { log: { level: 'debug' }, shutdown_timeout: '1s' };

t.test('redirect_https: every request and upgrade → 308 to https://<host without port><target>', async (t) => {
  const leaks = leakCheck();
  const h = await startProxy({
    ...base,
    listeners: [{ name: 'http', listen: '127.0.0.1:0', redirect_https: true }],
    pools: {},
  });
  const port = h.port();
  const get = await request(port, { path: '/a//b/../c?x=1&y=%2F', headers: { host: 'Example.com:8080' } });
  t.equal(get.status, 308);
  t.equal(get.headers.location, 'https://Example.com/a//b/../c?x=1&y=%2F', 'port dropped, target byte for byte');
  const post = await request(port, { method: 'POST', path: '/form', headers: { host: 'example.com' }, body: 'a=1' });
  t.equal(post.status, 308, 'POST too (308 keeps the method)');
  t.equal(post.headers.location, 'https://example.com/form');
  const expecting = await expectContinue(port, '/upload', 'a'.repeat(100_000), 'example.com');
  t.match(expecting, /^HTTP\/1\.1 308 /, 'Expect: 100-continue: the redirect at once, the body never asked for');
  t.notMatch(expecting, / 100 Continue/);
  const v6 = await request(port, { path: '/', headers: { host: '[::1]:80' } });
  t.equal(v6.headers.location, 'https://[::1]/');
  const bad = await rawRequest(port, 'GET / HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n');
  t.match(bad, /^HTTP\/1\.1 400 /, 'a Host that is no host → 400');
  const upgrade = await rawRequest(
    port,
    'GET /ws HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  t.match(upgrade, /^HTTP\/1\.1 308 /);
  t.match(upgrade, /location: https:\/\/example\.com\/ws\r\n/i);
  await waitFor(() => h.log.access.some((l) => l['status'] === 308), 3_000, 'the redirects access-logged');
  t.pass('access-logged');
  await h.stop();
  await leaks.assertClean(t);
});

t.test('redirect routes: code, base path joined without a doubled /, response headers applied', async (t) => {
  const leaks = leakCheck();
  const app = await new TestBackend({ name: 'app' }).start();
  const h = await startProxy({
    ...base,
    listeners: [{
      name: 'web',
      listen: '127.0.0.1:0',
      routes: [
        { host: 'old.example.com', redirect: { to: 'https://example.com/new/', code: 301 }, response_headers: { set: { 'X-Moved': 'yes' } } },
        { host: 'tmp.example.com', redirect: { to: 'http://example.com:8443' } },
        { pool: 'app' },
      ],
    }],
    pools: { app: { health_check: FAST_CHECKS, backends: [{ name: 'app', address: app.address }] } },
  });
  const port = h.port();
  const moved = await request(port, { path: '/x/y?q=1', headers: { host: 'old.example.com' } });
  t.equal(moved.status, 301);
  t.equal(moved.headers.location, 'https://example.com/new/x/y?q=1');
  t.equal(moved.headers['x-moved'], 'yes', 'response_headers apply to redirects');
  const tmp = await request(port, { path: '/', headers: { host: 'tmp.example.com' } });
  t.equal(tmp.status, 308, 'default 308');
  t.equal(tmp.headers.location, 'http://example.com:8443/');
  const other = await request(port, { path: '/', headers: { host: 'example.com' } });
  t.equal(other.status, 200, 'other hosts still proxied');
  t.equal(app.traffic.length, 1, 'redirects never reach a backend');
  await h.stop();
  await app.close();
  await leaks.assertClean(t);
});

t.test('strip_prefix, request and response header rules, on proxied answers and the proxy\'s own', async (t) => {
  const leaks = leakCheck();
  const api = await new TestBackend({
    name: 'api',
    handler: (_req, res) => {
      res.writeHead(200, { server: 'secret/1.0', 'x-backend': 'api', 'x-keep': 'k' }).end('api');
    },
  }).start();
  const app = await new TestBackend({ name: 'app' }).start();
  const h = await startProxy({
    ...base,
    listeners: [{
      name: 'web',
      listen: '127.0.0.1:0',
      routes: [
        {
          path_prefix: '/api/',
          pool: 'api',
          strip_prefix: true,
          request_headers: { set: { 'X-Env': 'prod' }, remove: ['X-Debug'] },
          response_headers: { set: { 'Strict-Transport-Security': 'max-age=31536000' }, remove: ['Server'] },
        },
        { path_prefix: '/down/', pool: 'down', response_headers: { set: { 'X-Route': 'down' }, remove: ['Cache-Control'] } },
        { pool: 'app' },
      ],
    }],
    pools: {
      api: { health_check: FAST_CHECKS, backends: [{ name: 'api', address: api.address }] },
      app: { health_check: FAST_CHECKS, backends: [{ name: 'app', address: app.address }] },
      // Nothing listens there: every request is answered by the proxy itself (503).
      down: { health_check: FAST_CHECKS, backends: [{ name: 'gone', address: '127.0.0.1:1' }] },
    },
  });
  const port = h.port();
  const r = await request(port, { path: '/api/users/7?x=%2F&y=1', headers: { 'x-env': 'dev', 'x-debug': '1' } });
  t.equal(r.status, 200);
  t.equal(api.traffic.at(-1)?.url, '/users/7?x=%2F&y=1', 'prefix stripped, query kept as sent');
  t.equal(api.traffic.at(-1)?.headers['x-env'], 'prod', 'set replaces the client value');
  t.equal(api.traffic.at(-1)?.headers['x-debug'], undefined, 'removed');
  t.equal(r.headers.server, undefined, 'Server removed');
  t.equal(r.headers['strict-transport-security'], 'max-age=31536000');
  t.equal(r.headers['x-keep'], 'k', 'other headers untouched');

  await request(port, { path: '/%61pi/../api//v2/./items' });
  t.equal(api.traffic.at(-1)?.url, '/v2/items', 'the normalised path is what is stripped');
  await request(port, { path: '/api/' });
  t.equal(api.traffic.at(-1)?.url, '/', 'the prefix itself → /');
  const bare = await request(port, { path: '/api' });
  t.equal(bare.headers['x-backend'], 'app', '/api does not match /api/');
  t.equal(app.traffic.at(-1)?.url, '/api', 'a route without strip_prefix forwards the target as sent');

  const own = await request(port, { path: '/down/x' });
  t.equal(own.status, 503, 'the proxy answers');
  t.equal(own.headers['x-route'], 'down', 'response_headers apply to the proxy\'s own 5xx');
  t.equal(own.headers['cache-control'], undefined, 'and may remove the proxy\'s own headers');
  await h.stop();
  await Promise.all([api.close(), app.close()]);
  await leaks.assertClean(t);
});

t.test('header rules and strip_prefix apply to WebSocket handshakes', async (t) => {
  const leaks = leakCheck();
  const ws = await new WsBackend('ws').start();
  const h = await startProxy({
    ...base,
    listeners: [{
      name: 'web',
      listen: '127.0.0.1:0',
      routes: [{
        path_prefix: '/live/',
        pool: 'ws',
        strip_prefix: true,
        request_headers: { set: { 'X-Env': 'prod' }, remove: ['X-Debug'] },
        response_headers: { set: { 'X-Proxy': 'hotwarm' } },
      }],
    }],
    pools: { ws: { health_check: HTTP_CHECKS, backends: [{ name: 'ws', address: ws.address }] } },
  });
  const client = new WebSocket(`ws://127.0.0.1:${h.port()}/live/feed`, { headers: { 'x-debug': '1', 'x-env': 'dev' } });
  const upgradeHeaders = await new Promise<Record<string, string | string[] | undefined>>((resolve, reject) => {
    client.once('upgrade', (res) => resolve(res.headers));
    client.once('error', reject);
  });
  await new Promise<void>((resolve) => (client.readyState === WebSocket.OPEN ? resolve() : client.once('open', () => resolve())));
  t.equal(upgradeHeaders['x-proxy'], 'hotwarm', 'response rule on the 101');
  const seen = ws.upgrades.at(-1);
  t.equal(seen?.['x-env'], 'prod');
  t.equal(seen?.['x-debug'], undefined);
  client.close();
  await new Promise<void>((resolve) => client.once('close', () => resolve()));
  await h.stop();
  await ws.close();
  await leaks.assertClean(t);
});

t.test('per-route response_timeout and retries override the pool', async (t) => {
  const leaks = leakCheck();
  const slow = await new TestBackend({ name: 'slow', latencyMs: 400 }).start();
  // Resets every request but its health checks: a GET that may be retried elsewhere.
  const flaky = await new TestBackend({ name: 'flaky', handler: (req) => { req.socket.resetAndDestroy(); } }).start();
  const good = await new TestBackend({ name: 'good' }).start();
  const h = await startProxy({
    ...base,
    listeners: [{
      name: 'web',
      listen: '127.0.0.1:0',
      routes: [
        { path_prefix: '/poll/', pool: 'slow', response_timeout: '3s' },
        { path_prefix: '/once/', pool: 'mixed', retries: 0 },
        { path_prefix: '/slow/', pool: 'slow' },
        { pool: 'mixed' },
      ],
    }],
    pools: {
      slow: { health_check: FAST_CHECKS, response_timeout: '150ms', backends: [{ name: 'slow', address: slow.address }] },
      mixed: {
        health_check: FAST_CHECKS,
        passive: { consecutive_failures: 0 },
        retries: 2,
        backends: [{ name: 'flaky', address: flaky.address }, { name: 'good', address: good.address }],
      },
    },
  });
  const port = h.port();
  t.equal((await request(port, { path: '/slow/x' })).status, 504, 'the pool timeout');
  t.equal((await request(port, { path: '/poll/x' })).status, 200, 'the route waits longer');
  const retried = await Promise.all(Array.from({ length: 6 }, () => request(port, { path: '/x' })));
  t.same(retried.map((r) => r.status), [200, 200, 200, 200, 200, 200], 'pool retries hide the flaky backend');
  const once = await Promise.all(Array.from({ length: 6 }, () => request(port, { path: '/once/x' })));
  t.ok(once.some((r) => r.status === 502), 'retries: 0 on the route: the flaky backend\'s resets reach the client');
  await h.stop();
  await Promise.all([slow.close(), flaky.close(), good.close()]);
  await leaks.assertClean(t);
});

/** Sends a chunked body in pieces; resolves with what the proxy answered before closing. */
function chunkedUpload(port: number, path: string, chunks: number, size: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.on('connect', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n`);
      let sent = 0;
      const next = (): void => {
        if (socket.destroyed) return;
        if (sent === chunks) {
          socket.write('0\r\n\r\n');
          return;
        }
        sent++;
        socket.write(`${size.toString(16)}\r\n${'a'.repeat(size)}\r\n`);
        setTimeout(next, 20);
      };
      next();
    });
    socket.on('data', (d) => (out += d.toString()));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(out));
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}

/**
 * A request with `Expect: 100-continue`, as curl sends a large upload: the head alone, then the
 * body only once `100 Continue` arrives (a final answer first means the body is never sent).
 * Returns everything the proxy wrote until it closed.
 */
function expectContinue(port: number, path: string, body: string, host = 'x'): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let out = '';
    socket.on('connect', () => {
      socket.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (d: Buffer) => {
      const first = out === '';
      out += d.toString();
      if (first && out.startsWith('HTTP/1.1 100 ')) socket.write(body);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(out));
    setTimeout(() => socket.destroy(), 5_000).unref();
  });
}

t.test('max_body_size: 413 before forwarding by Content-Length, mid-stream when chunked; per-route override', async (t) => {
  const leaks = leakCheck();
  const app = await new TestBackend({ name: 'app' }).start();
  const h = await startProxy({
    ...base,
    listeners: [{
      name: 'web',
      listen: '127.0.0.1:0',
      max_body_size: '1KiB',
      routes: [
        { path_prefix: '/upload/', pool: 'app', max_body_size: '8KiB', response_headers: { set: { 'X-Route': 'upload' } } },
        { path_prefix: '/free/', pool: 'app', max_body_size: 0 },
        { pool: 'app' },
      ],
    }],
    pools: { app: { health_check: FAST_CHECKS, backends: [{ name: 'app', address: app.address }] } },
  });
  const port = h.port();
  const small = await request(port, { method: 'POST', path: '/x', body: 'a'.repeat(1024) });
  t.equal(small.status, 200, 'at the limit passes');
  const big = await request(port, { method: 'POST', path: '/x', body: 'a'.repeat(1025) });
  t.equal(big.status, 413);
  t.equal(big.headers.connection, 'close');
  t.equal(app.traffic.length, 1, 'nothing of the refused request reached the backend');
  const upload = await request(port, { method: 'POST', path: '/upload/x', body: 'a'.repeat(4096) });
  t.equal(upload.status, 200, 'the route allows more');
  const uploadBig = await request(port, { method: 'POST', path: '/upload/x', body: 'a'.repeat(9000) });
  t.equal(uploadBig.status, 413);
  t.equal(uploadBig.headers['x-route'], 'upload', 'response_headers on the 413');
  t.equal((await request(port, { method: 'POST', path: '/free/x', body: 'a'.repeat(20000) })).status, 200, '0 = no limit');

  // Expect: 100-continue: the 413 comes instead of `100 Continue` (the client never sends the
  // body); a request within the limit gets its 100, then the backend's answer.
  const refusedEarly = await expectContinue(port, '/x', 'a'.repeat(2048));
  t.match(refusedEarly, /^HTTP\/1\.1 413 /, 'Expect: 100-continue over the limit: 413, no 100 Continue first');
  t.notMatch(refusedEarly, / 100 Continue/);
  t.equal(app.traffic.length, 3, 'nothing of it reached the backend');
  const continued = await expectContinue(port, '/x', 'b'.repeat(512));
  t.match(continued, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /, 'within the limit: 100 Continue, then the answer');
  t.equal(app.traffic.at(-1)?.body, 'b'.repeat(512), 'the body sent after the 100 is forwarded whole');
  t.equal(app.traffic.at(-1)?.headers['expect'], undefined, 'Expect is answered by the proxy, not forwarded');

  const before = app.traffic.length;
  const chunked = await chunkedUpload(port, '/x', 10, 300);
  t.match(chunked, /^HTTP\/1\.1 413 /, 'chunked: 413 once the limit is passed');
  t.match(chunked, /connection: close/i);
  t.ok(app.traffic.slice(before).every((r) => r.body.length < 3000), 'the whole body never reached the backend (the upstream request was aborted)');
  const okChunked = await chunkedUpload(port, '/x', 3, 300);
  t.match(okChunked, /^HTTP\/1\.1 200 /, 'chunked under the limit passes');
  t.equal(app.traffic.at(-1)?.body.length, 900, 'whole body forwarded');
  await waitFor(() => h.log.access.some((l) => l['error'] === 'BODY_TOO_LARGE' && l['status'] === 413), 3_000, 'the 413 access-logged');
  t.pass('logged with its code');
  await h.stop();
  await app.close();
  await leaks.assertClean(t);
});
