/**
 * Hostile input on raw sockets: every smuggling or confusion vector is answered with the right
 * 4xx/5xx and the recording backend receives nothing; the process stays up and no handle leaks.
 */
import t from 'tap';
import http from 'node:http';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { rawRequest } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { backendSpecs, simpleConfig, startProxy } from '../helpers/harness.js';
import { ok, RawBackend } from '../helpers/raw-backend.js';
import { close, closeAll, stopProxy, owned } from '../helpers/owned.js';

const POST = 'POST / HTTP/1.1\r\nHost: a\r\n';
const GET = (extra = '') => `GET / HTTP/1.1\r\nHost: a\r\n${extra}\r\n`;
const UPGRADE = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

const CASES: [string, string, number][] = [
  // Content-Length / Transfer-Encoding conflicts
  ['CL then TE', `${POST}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE then CL', `${POST}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n`, 400],
  ['duplicate CL, same value', `${POST}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc`, 400],
  ['duplicate CL, other value', `${POST}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd`, 400],
  ['CL +3', `${POST}Content-Length: +3\r\n\r\nabc`, 400],
  ['CL 0x3', `${POST}Content-Length: 0x3\r\n\r\nabc`, 400],
  ['CL -1', `${POST}Content-Length: -1\r\n\r\nabc`, 400],
  ['CL "3, 3"', `${POST}Content-Length: 3, 3\r\n\r\nabc`, 400],
  ['CL empty', `${POST}Content-Length: \r\n\r\nabc`, 400],
  ['CL huge', `${POST}Content-Length: 99999999999999999999999\r\n\r\nabc`, 400],
  // Transfer-Encoding disguises
  ['TE chunked, identity', `${POST}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
  ['TE doubled lines', `${POST}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE xchunked', `${POST}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE leading control byte', `${POST}Transfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE folded', `${POST}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE gzip, chunked', `${POST}Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n`, 400],
  ['TE identity, chunked', `${POST}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n`, 400],
  // framing of the head itself
  ['obs-fold', GET('X-A: b\r\n c\r\n'), 400],
  ['bare LF line ends', 'GET / HTTP/1.1\nHost: a\n\n', 400],
  ['bare LF in a header', 'GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n', 400],
  ['bare CR in a header', 'GET / HTTP/1.1\r\nHost: a\rX: y\r\n\r\n', 400],
  ['NUL in a header name', GET('X\0A: y\r\n'), 400],
  ['NUL in a header value', GET('XA: y\0z\r\n'), 400],
  ['NUL in the URL', 'GET /a\0b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['space before the colon', GET('X-A : b\r\n'), 400],
  // chunked bodies
  ['bad chunk size', `${POST}Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n`, 400],
  ['chunk size overflow', `${POST}Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff1\r\nabc\r\n0\r\n\r\n`, 400],
  ['huge chunk extension', `${POST}Transfer-Encoding: chunked\r\n\r\n3;${'x'.repeat(20_000)}\r\nabc\r\n0\r\n\r\n`, 400],
  // size limits: never a silently truncated header set
  ['20 KiB header', GET(`X-Big: ${'a'.repeat(20 * 1024)}\r\n`), 431],
  ['2,000 small headers', GET(Array.from({ length: 2000 }, (_, i) => `h${i}: v\r\n`).join('')), 431],
  // Host and request-target
  ['missing Host', 'GET / HTTP/1.1\r\n\r\n', 400],
  ['duplicate Host', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400],
  ['Host a/b@c', 'GET / HTTP/1.1\r\nHost: a/b@c\r\n\r\n', 400],
  ['absolute-form naming another host', 'GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['* outside OPTIONS', 'GET * HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['fragment in the target', 'GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n', 400],
  ['HTTP/0.9', 'GET /\r\n\r\n', 400],
  ['TE on HTTP/1.0', 'POST / HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n', 400],
  ['Host port beyond 65535', 'GET / HTTP/1.1\r\nHost: a:99999\r\n\r\n', 400],
  ['HTTP/1.2', 'GET / HTTP/1.2\r\nHost: a\r\n\r\n', 400],
  ['HTTP/2.0 on HTTP/1', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505],
  ['HTTP/3.1', 'GET / HTTP/3.1\r\nHost: a\r\n\r\n', 400],
  // aliasing through underscores
  ['Content_Length', `${POST}Content_Length: 3\r\n\r\nabc`, 400],
  ['Transfer_Encoding', `${POST}Transfer_Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ['X_Forwarded_For', GET('X_Forwarded_For: 1.2.3.4\r\n'), 400],
  // not proxied
  ['CONNECT', 'CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n', 405],
  ['WebSocket handshake with a Content-Length body', `GET /ws HTTP/1.1\r\nHost: a\r\n${UPGRADE}Content-Length: 24\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n`, 400],
  ['WebSocket handshake with a chunked body', `GET /ws HTTP/1.1\r\nHost: a\r\n${UPGRADE}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n`, 400],
];

t.test('malformed and smuggling-shaped requests', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['recorder'])) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  for (const [name, raw, status] of CASES) {
    const out = await rawRequest(h.port(), raw);
    t.match(out, new RegExp(`^HTTP/1\\.1 ${status} `), `${name} → ${status}`);
    t.notMatch(out, /recorder|Error|at \w+ \(/, `${name}: no backend output, no stack`);
  }
  t.equal((await rawRequest(h.port(), GET('Connection: close\r\n'))).split('\r\n')[0], 'HTTP/1.1 200 OK', 'still serving afterwards');
  // That good request, sent last, is a marker: whatever had been forwarded before it was there first.
  t.equal(b.traffic.length, 1, 'the recording backend received nothing but the last, good request');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('pipelined requests are answered in order', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['b'], {
    handler: (req, res) => {
      // Later requests answer faster: order must come from the proxy, not from timing.
      const n = Number(req.url?.slice(1));
      setTimeout(() => res.end(`r${n}`), (5 - n) * 20);
    },
  })) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  const raw = [1, 2, 3, 4].map((n) => `GET /${n} HTTP/1.1\r\nHost: a\r\n${n === 4 ? 'Connection: close\r\n' : ''}\r\n`).join('');
  const out = await rawRequest(h.port(), raw, 30_000); // the proxy closes after the 4th (Connection: close)
  const bodies = [...out.matchAll(/\r\n\r\n(r\d)/g)].map((m) => m[1]);
  t.strictSame(bodies, ['r1', 'r2', 'r3', 'r4']);
  t.equal(b.traffic.length, 4, 'exactly the requests sent');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a malformed or upgrade request pipelined behind others is refused after their answers, in order', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['b'], {
    handler: (req, res) => {
      setTimeout(() => res.end(`r${req.url?.slice(1)}`), 60);
    },
  })) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  const upgrade = `GET /ws HTTP/1.1\r\nHost: a\r\n${UPGRADE}\r\n`;
  const tails: [string, string][] = [
    ['a malformed request line', 'G@T /x HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a body that runs into garbage', 'GET /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n'],
    ['a WebSocket upgrade', upgrade],
  ];
  for (const [name, tail] of tails) {
    b.received.length = 0;
    const out = await rawRequest(h.port(), `GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n${tail}`, 30_000);
    const statuses = [...out.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((m) => m[1]);
    const bodies = [...out.matchAll(/\r\n\r\n(r\d)/g)].map((m) => m[1]);
    const forwarded = name === 'a body that runs into garbage' ? ['/1', '/2', '/3'] : ['/1', '/2'];
    t.strictSame(statuses.slice(0, 2), ['200', '200'], `${name}: the earlier requests are answered first`);
    t.strictSame(bodies.slice(0, 2), ['r1', 'r2'], `${name}: in order`);
    t.equal(statuses.at(-1), '400', `${name}: then refused, and the connection closed`);
    t.strictSame(b.traffic.map((r) => r.url), forwarded, `${name}: nothing else reached the backend`);
  }
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('Expect: 100-continue answered 417 by a backend does not poison the pooled connection', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  // A raw backend that answers 417 to anything carrying Expect (without reading the body) and 200
  // otherwise; RawBackend frames requests by Content-Length, so leftover body bytes would show up
  // as a request line of their own.
  const raw = own(await new RawBackend((socket, head) => {
    if (/\r\nexpect:/i.test(head)) socket.write('HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n');
    else ok(socket);
  }).start(), close);
  const port = raw.port;
  const h = own(await startProxy(simpleConfig([{ name: 'raw', address: `127.0.0.1:${port}` }], { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' } })), stopProxy);
  const agent = own(new http.Agent({ keepAlive: true, maxSockets: 1 }), (a) => a.destroy());
  const first = await new Promise<number>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: h.port(), method: 'POST', path: '/upload', agent, headers: { expect: '100-continue', 'content-length': '5' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('continue', () => req.end('HELLO'));
    req.on('error', () => resolve(0));
  });
  t.equal(first, 200, 'the proxy answered 100-continue itself and forwarded the body without Expect');
  const second = await new Promise<number>((resolve) => {
    http.get({ host: '127.0.0.1', port: h.port(), path: '/next', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
  });
  t.equal(second, 200);
  t.strictSame(raw.requests.map((h) => h.split('\r\n')[0]), ['POST /upload HTTP/1.1', 'GET /next HTTP/1.1'], 'no body bytes were read as a request');
  await own.stopAll();
  await leaks.assertClean(t);
});
