/**
 * The HTTP path over real sockets (SPEC §3–5): balancing shares, routing, retries on connect
 * failure, the http-proxy traps the wrapper closes, and handles back to baseline after each test.
 */
import t from 'tap';
import http from 'node:http';
import net from 'node:net';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { load, rawRequest, request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { backendSpecs, simpleConfig, startProxy, testWorkers, waitFor } from '../helpers/harness.js';
import { closeAll, stopProxy, owned } from '../helpers/owned.js';

t.test('weights 5:4:3 at equal latency share requests 5/12, 4/12, 3/12', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['a', 'b', 'c'], { latencyMs: 20 }), closeAll);
  const weights = [5, 4, 3];
  // The shares are under test, not response_timeout: 24 clients, the proxy and three backends
  // share one event loop, and on a loaded machine a 20 ms answer took past the usual 1 s, a 504.
  const h = own(await startProxy(simpleConfig(backendSpecs(backends, (_, i) => ({ weight: weights[i] })), { response_timeout: '10s' })), stopProxy);
  const agent = own(new http.Agent({ keepAlive: true, maxSockets: 24 }), (a) => a.destroy());
  const replies = await load(24, 960, () => request(h.port(), { agent }));
  t.strictSame(replies.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.error ?? ''}`), [], 'no failed request');
  const total = backends.reduce((n, b) => n + b.traffic.length, 0);
  t.equal(total, 960, 'backends received exactly what clients sent');
  backends.forEach((b, i) => {
    const share = b.traffic.length / total;
    const want = (weights[i] as number) / 12;
    t.ok(Math.abs(share - want) < 0.04, `${b.name}: ${(share * 100).toFixed(1)}% ≈ ${(want * 100).toFixed(1)}%`);
  });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a slower backend gets fewer requests (least connections)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startBackends(['fast-1', 'fast-2', 'slow'], { latencyMs: 5 }), closeAll);
  // Far slower than the fast ones even when a busy machine stretches their 5 ms to 15-20 ms.
  (backends[2] as TestBackend).latencyMs = 150;
  const h = own(await startProxy(simpleConfig(backendSpecs(backends))), stopProxy);
  const agent = own(new http.Agent({ keepAlive: true, maxSockets: 12 }), (a) => a.destroy());
  await load(12, 600, () => request(h.port(), { agent }));
  const [f1, f2, slow] = backends.map((b) => b.traffic.length) as [number, number, number];
  t.ok(slow < f1 / 2 && slow < f2 / 2, `slow backend got ${slow} vs ${f1} and ${f2}`);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('routes: exact host + path prefix, wildcard host, catch-all; first match wins', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [api, wild, app] = own(await startBackends(['api', 'wild', 'app']) as [TestBackend, TestBackend, TestBackend], closeAll);
  const pool = (b: TestBackend) => ({ health_check: { protocol: 'tcp', interval: '100ms', timeout: '100ms' }, backends: [{ name: b.name, address: b.address }] });
  const h = own(await startProxy({
    listeners: [{
      name: 'web',
      listen: '127.0.0.1:0',
      routes: [
        { host: 'api.example.com', path_prefix: '/v1/', pool: 'api' },
        { host: '*.example.com', pool: 'wild' },
        { pool: 'app' },
      ],
    }],
    pools: { api: pool(api), wild: pool(wild), app: pool(app) },
  }), stopProxy);
  const via = async (host: string, path: string) => (await request(h.port(), { path, headers: { host } })).headers['x-backend'];
  t.equal(await via('api.example.com', '/v1/users'), 'api');
  t.equal(await via('API.example.com:8080', '/v1/users'), 'api', 'host case and port ignored');
  t.equal(await via('api.example.com', '/v2/users'), 'wild', 'path prefix not matched: next rule');
  t.equal(await via('www.example.com', '/'), 'wild');
  t.equal(await via('example.com', '/'), 'app', 'wildcard does not match the bare domain');
  t.equal(await via('other.org', '/v1/users'), 'app');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('no route: 404 and nothing forwarded', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [api] = own(await startBackends(['api']) as [TestBackend], closeAll);
  const h = own(await startProxy({
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ host: 'api.example.com', pool: 'api' }] }],
    pools: { api: { backends: [{ name: 'api', address: api.address }] } },
  }), stopProxy);
  const reply = await request(h.port(), { headers: { host: 'other.example.com' } });
  t.equal(reply.status, 404);
  t.equal(api.traffic.length, 0);
  await own.stopAll();
  await leaks.assertClean(t);
});

/** Health checks that pass at startup and then stay quiet, so live traffic meets the dead backend. */
const QUIET_CHECKS = { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' } };

t.test('a refused backend is retried elsewhere: GET, and POST with its body intact', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const echo = (_req: http.IncomingMessage, res: http.ServerResponse, body: string) => {
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`echo:${body}`);
  };
  const [dead, alive] = own(await startBackends(['dead', 'alive'], { handler: echo }) as [TestBackend, TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([dead, alive], (_, i) => ({ weight: i === 0 ? 10 : 1 })), { ...QUIET_CHECKS, passive: { consecutive_failures: 0 } })), stopProxy);
  await dead.kill();
  const get = await request(h.port());
  t.equal(get.status, 200, 'GET served by the other backend');
  t.equal(get.body, 'echo:');
  const post = await request(h.port(), { method: 'POST', body: 'x'.repeat(5000) + 'END', headers: { 'content-type': 'text/plain' } });
  t.equal(post.status, 200, 'POST retried after connect failure');
  t.equal(post.body, `echo:${'x'.repeat(5000)}END`, 'body intact on the second backend');
  const chunked = await new Promise<string>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: h.port(), method: 'PUT', path: '/', agent: false }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(`${res.statusCode} ${body}`));
    });
    own(req, (x) => x.destroy());
    req.write('part1-');
    // The rest follows once the proxy gave up on the dead backend: replayed part, then live.
    void waitFor(() => h.log.lines.filter((l) => l.msg === 'retry').length >= 3, undefined, 'the retry')
      .catch(() => undefined)
      .then(() => req.end('part2'));
  });
  t.equal(chunked, '200 echo:part1-part2', 'streamed chunked body replayed, then followed live');
  const retries = h.log.lines.filter((l) => l.msg === 'retry');
  t.equal(retries.length, 3, 'every retry is logged');
  t.match(retries[0], { backend: 'dead', error: 'UPSTREAM_CONNECT_FAILED' });
  await waitFor(() => h.log.access.length === 3, undefined, 'the access lines');
  t.match(h.log.access.find((l) => l.method === 'POST'), { status: 200, retries: 1, backend: 'alive' });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('passive detection: consecutive connect failures mark a backend down at once', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [dead, alive] = own(await startBackends(['dead', 'alive']) as [TestBackend, TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([dead, alive], (_, i) => ({ weight: i === 0 ? 10 : 1 })), { ...QUIET_CHECKS, passive: { consecutive_failures: 2 } })), stopProxy);
  await dead.kill();
  for (let i = 0; i < 4; i++) t.equal((await request(h.port())).status, 200);
  const down = h.log.events('backend_down');
  t.equal(down.length, 1, 'marked down once');
  t.match(down[0], { backend: 'dead', source: 'passive' });
  t.equal(h.log.lines.filter((l) => l.msg === 'retry').length, 2, 'after two failures no request is sent to it any more');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('backend resets mid-body: the client connection is closed, never a complete-looking response', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own(await startBackends(['b'], {
    handler: (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      // Reset once the bytes have left the backend (the write callback), mid-body.
      res.write('0123456789', () => res.socket?.resetAndDestroy());
    },
  }) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  const reply = await request(h.port());
  t.equal(reply.status, 200, 'the head was already forwarded');
  t.not(reply.error, null, `client sees the failure (${reply.error})`);
  t.equal(reply.body, '0123456789');
  // Chunked: the proxy must not write the final 0-chunk.
  b.handler = (_req, res) => {
    res.writeHead(200);
    res.write('partial', () => res.socket?.resetAndDestroy());
  };
  const raw = await rawRequest(h.port(), 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
  t.match(raw, /partial/);
  t.notMatch(raw, /\r\n0\r\n\r\n$/, 'no terminating chunk after the reset');
  await waitFor(() => h.log.access.length >= 2);
  t.match(h.log.access[0], { error: 'UPSTREAM_RESET_MID_BODY' });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('slow backend: 504 after response_timeout, not a hang', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  // The backend answers only when released, after the test has its reply: a 504 can only come from the timeout.
  let release = (): void => undefined;
  const held = new Promise<void>((resolve) => (release = resolve));
  own(held, () => release());
  const [b] = own(await startBackends(['b'], { handler: async (_req, res) => {
    await held;
    res.end('late');
  } }) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]), { response_timeout: '200ms' })), stopProxy);
  const reply = await request(h.port());
  t.equal(reply.status, 504, 'answered at the timeout, while the backend still held the request');
  await waitFor(() => h.log.access.length === 1, undefined, 'the access line');
  t.match(h.log.access[0], { status: 504, error: 'UPSTREAM_RESPONSE_TIMEOUT' });
  release();
  t.notMatch(reply.body, /127\.0\.0\.1|ECONN|Error/, 'no internals in the body');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('client abort closes the upstream request', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  let upstreamClosed = false;
  const [b] = own(await startBackends(['b'], {
    handler: (req) => {
      req.socket.once('close', () => (upstreamClosed = true));
    },
  }) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]), { response_timeout: '5s' })), stopProxy);
  const socket = own(net.connect(h.port(), '127.0.0.1'), (s) => s.destroy());
  socket.write('GET /slow HTTP/1.1\r\nHost: a\r\n\r\n');
  await waitFor(() => b.traffic.length === 1);
  socket.destroy();
  await waitFor(() => upstreamClosed, 2000, 'upstream request closed');
  t.ok(upstreamClosed, 'the backend saw the request go away');
  await waitFor(() => h.log.access.length === 1);
  t.match(h.log.access[0], { status: 499, error: 'CLIENT_ABORTED' });
  await h.refresh();
  t.equal(h.proxy.pools.get('app')?.backends[0]?.inFlight, 0, 'in-flight released');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('hop-by-hop headers stripped both ways; X-Forwarded-* set by the proxy', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own(await startBackends(['b'], {
    handler: (_req, res) => {
      res.writeHead(200, { connection: 'keep-alive, x-internal', 'x-internal': 'secret', 'keep-alive': 'timeout=5', 'x-ok': '1' }).end('ok');
    },
  }) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  const reply = await request(h.port(), {
    headers: { host: 'app.example', connection: 'x-drop', 'x-drop': '1', 'keep-alive': '1', 'x-forwarded-for': '6.6.6.6', te: 'trailers' },
  });
  t.equal(reply.status, 200);
  t.equal(reply.headers['x-internal'], undefined, 'response header listed in Connection removed');
  t.equal(reply.headers['x-ok'], '1');
  const seen = b.traffic[0]?.headers ?? {};
  t.equal(seen['x-drop'], undefined);
  t.equal(seen['keep-alive'], undefined);
  t.equal(seen.te, undefined);
  t.equal(seen['x-forwarded-for'], '127.0.0.1', 'spoofed X-Forwarded-For replaced');
  t.equal(seen['x-forwarded-host'], 'app.example');
  t.equal(seen['x-forwarded-proto'], 'http');
  t.equal(seen.host, 'app.example', 'Host passed unchanged');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('keep-alive upstream: many requests reuse few backend connections', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own(await startBackends(['b']) as [TestBackend], closeAll);
  let connections = 0;
  // One check an hour: its timeout is generous, because a first check lost to a loaded machine
  // would leave the backend down for the whole test.
  const h = own(await startProxy(simpleConfig(backendSpecs([b]), { health_check: { protocol: 'tcp', interval: '1h', timeout: '5s' } })), stopProxy);
  const seen = new Set<string>();
  b.handler = (req, res) => {
    const key = `${req.socket.remotePort}`;
    if (!seen.has(key)) {
      seen.add(key);
      connections++;
    }
    res.end('ok');
  };
  const statuses = new Set<number>();
  for (let i = 0; i < 50; i++) statuses.add((await request(h.port())).status);
  t.same([...statuses], [200], 'every request answered by the backend');
  // Keep-alive pools are per process: with workers each keeps its own (at most one each here).
  const workers = testWorkers();
  if (workers === 1) t.equal(connections, 1, 'sequential requests share one pooled upstream connection');
  else t.ok(connections >= 1 && connections <= workers, `each worker reuses its one pooled upstream connection (${connections} for ${workers} workers)`);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('strict input: smuggling-shaped requests get 400/431/505 and reach no backend', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own(await startBackends(['b']) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  const cases: [string, string, number][] = [
    ['CL+TE', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
    ['duplicate CL', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400],
    ['invalid CL', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc', 400],
    ['TE gzip, chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n', 400],
    ['TE xchunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n', 400],
    ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
    ['absolute-form other host', 'GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n', 400],
    ['oversized head', `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`, 431],
    ['too many headers', `GET / HTTP/1.1\r\nHost: a\r\n${Array.from({ length: 2000 }, (_, i) => `h${i}: v\r\n`).join('')}\r\n`, 431],
    ['HTTP/2.0 request line', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
    ['missing Host', 'GET / HTTP/1.1\r\n\r\n', 400],
  ];
  for (const [name, raw, status] of cases) {
    const out = await rawRequest(h.port(), raw);
    t.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), `${name} → ${status}`);
  }
  t.equal(b.traffic.length, 0, 'the backend received nothing');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('nothing serving: 503 with Retry-After at once', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const b = own(new TestBackend({ name: 'gone' }), (x) => x.kill());
  await b.start();
  await b.kill();
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  const reply = await request(h.port());
  t.equal(reply.status, 503);
  t.ok(Number(reply.headers['retry-after']) >= 1, 'Retry-After present');
  await waitFor(() => h.log.access.length === 1, undefined, 'the access line');
  t.match(h.log.access[0], { status: 503, backend: null, retries: 0 }, 'no waiting on dead backends: none was tried');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('listen failure: start() rejects with LISTEN_FAILED and leaves nothing open', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const blocker = own(net.createServer(), (s) => new Promise((resolve) => s.close(resolve)));
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as net.AddressInfo).port;
  const [b] = own(await startBackends(['b']) as [TestBackend], closeAll);
  await t.rejects(startProxy(simpleConfig(backendSpecs([b]), {}, { listen: `127.0.0.1:${port}` })), { code: 'LISTEN_FAILED' });
  await own.stopAll();
  await leaks.assertClean(t);
});
