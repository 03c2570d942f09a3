/**
 * Backends that fail in every way a real one does: refusing, hanging, closing or resetting at
 * each stage, malformed heads, trailing garbage, dribbling headers, stale keep-alive
 * connections, flapping health. The client always gets a clean answer or a closed connection,
 * never a hang or a truncated body presented as complete; nothing leaks.
 */
import t, { type Test } from 'tap';
import http from 'node:http';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { rawRequest, request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { simpleConfig, startProxy, waitFor } from '../helpers/harness.js';
import { ok, RawBackend, type Script } from '../helpers/raw-backend.js';
import { close, closeAll, stopProxy, owned } from '../helpers/owned.js';

/** Checks pass at startup (tcp) and then stay quiet, so faults meet live traffic only. */
const QUIET = { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' }, response_timeout: '300ms', passive: { consecutive_failures: 0 } };

/** A proxy over one scripted raw backend; both stopped with the test, or earlier by `stop()`. */
async function single(t: Test, script: Script) {
  const own = owned(t);
  const raw = own(await new RawBackend(script).start(), close);
  const h = own(await startProxy(simpleConfig([{ name: 'raw', address: raw.address }], QUIET)), stopProxy);
  return { raw, h, stop: own.stopAll };
}

const faults: [string, Script, number | 'closed'][] = [
  ['accept and hang', () => undefined, 504],
  ['FIN before any byte', (s) => s.end(), 502],
  ['RST before any byte', (s) => s.resetAndDestroy(), 502],
  ['RST in the middle of the status line', (s) => {
    s.write('HTTP/1.1 20', () => s.resetAndDestroy()); // once the bytes are out
  }, 502],
  ['malformed status line', (s) => s.write('HTTP/1.1 abc OK\r\nContent-Length: 0\r\n\r\n'), 502],
  ['garbage instead of a response', (s) => s.write('garbage garbage\r\n\r\n'), 502],
  ['header without a colon', (s) => s.write('HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 2\r\n\r\nok'), 502],
  ['negative Content-Length', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok'), 502],
  ['CL and TE both', (s) => s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'), 502],
  // Node's client closes such a request with neither a response nor an error.
  ['101 to a request that asked for no upgrade', (s) => s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nraw'), 502],
  ['headers dribbled one byte at a time', (s) => {
    const text = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok';
    let i = 0;
    const timer = setInterval(() => {
      if (s.destroyed || i >= text.length) clearInterval(timer);
      else s.write(text[i++] as string);
    }, 100);
  }, 504],
  ['RST in the middle of the body', (s) => {
    s.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial', () => s.resetAndDestroy());
  }, 'closed'],
  ['FIN in the middle of a chunked body', (s) => {
    s.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\npartial\r\n', () => s.end());
  }, 'closed'],
];

for (const [name, script, expected] of faults) {
  t.test(`backend fault: ${name}`, async (t) => {
    const leaks = leakCheck();
    const { raw, h, stop } = await single(t, script);
    const reply = await request(h.port(), { path: '/x' });
    t.not(reply.error, 'client timeout', 'answered, not hung (response_timeout is 300 ms; the client waits 30 s)');
    if (expected === 'closed') {
      t.equal(reply.status, 200, 'the head had been forwarded');
      t.not(reply.error, null, `the client sees the connection fail (${reply.error})`);
      t.notMatch(reply.body, /\r\n0\r\n/, 'no fake final chunk');
    } else {
      t.equal(reply.status, expected);
      t.notMatch(reply.body, /127\.0\.0\.1|ECONN|HPE_|Error|stack/, 'generic body');
    }
    t.ok(raw.requests.length <= 1, 'one client request, at most one backend request (only a stale connection is retried on the same backend)');
    t.equal((await rawRequest(h.port(), 'GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n')).length > 0, true, 'proxy still answers');
    await stop();
    await leaks.assertClean(t);
  });
}

t.test('extra bytes after a Content-Length body are never delivered', async (t) => {
  const leaks = leakCheck();
  const { raw, h, stop } = await single(t, (s, head) => {
    if (head.includes('/first')) s.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled');
    else ok(s, 'second');
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  t.teardown(() => agent.destroy());
  const first = await request(h.port(), { path: '/first', agent });
  const second = await request(h.port(), { path: '/second', agent });
  t.equal(first.body, 'ok');
  t.equal(second.body, 'second', 'the next response is the backend answer to the next request');
  agent.destroy();
  await stop();
  await leaks.assertClean(t);
});

t.test('a complete response followed by bytes that do not parse is delivered whole, the bytes never', async (t) => {
  const cases: [string, string, number, string][] = [
    ['a body on a 204', 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello', 204, ''],
    ['a body on a 304', 'HTTP/1.1 304 Not Modified\r\nETag: "x"\r\n\r\nhello', 304, ''],
    ['garbage past Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokgarbage\r\n\r\n', 200, 'ok'],
  ];
  for (const [name, response, status, body] of cases) {
    const leaks = leakCheck();
    const { raw, h, stop } = await single(t, (s) => s.write(response));
    const reply = await request(h.port(), { path: '/x' });
    t.match(reply, { status, body, error: null }, `${name}: the response as sent, complete`);
    t.notMatch(reply.body, /hello|garbage/, `${name}: the extra bytes never reach the client`);
    if (status === 204) t.equal(reply.headers['content-length'], undefined, 'a 204 is passed on without the Content-Length it must not have');
    await stop();
    await leaks.assertClean(t);
  }
});

t.test('stale pooled connection (keep-alive race): a GET is retried on a fresh connection, even with one backend', async (t) => {
  const leaks = leakCheck();
  // The backend answers the first request with keep-alive, then closes that connection when the next request arrives on it.
  const { raw, h, stop } = await single(t, (s, _head, index) => {
    if (index === 0) ok(s, 'one');
    else if (raw.connections === 1) s.destroy();
    else ok(s, 'two');
  });
  t.equal((await request(h.port())).body, 'one');
  const second = await request(h.port());
  t.equal(second.status, 200);
  t.equal(second.body, 'two');
  t.equal(raw.connections, 2, 'a fresh upstream connection was opened');
  t.equal(h.log.events('backend_down').length, 0, 'not held against the backend');
  await stop();
  await leaks.assertClean(t);
});

t.test('a refusing backend is retried elsewhere; alone it gives 502 at once', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['b'])) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig([{ name: 'b', address: b.address }], QUIET)), stopProxy);
  await b.kill();
  const reply = await request(h.port());
  t.equal(reply.status, 502);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a flapping health endpoint does not flip state (rise/fall), a streak does', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  let n = 0;
  let mode: 'flap' | 'down' = 'flap';
  const b = own(await new TestBackend({ name: 'flappy', health: () => (mode === 'down' ? 500 : n++ % 2 === 0 ? 200 : 500) }).start(), close);
  const c = own(await new TestBackend({ name: 'steady' }).start(), close);
  const h = own(await startProxy(simpleConfig([{ name: 'flappy', address: b.address }, { name: 'steady', address: c.address }], {
    // A generous timeout: a check that times out on a busy machine would be a failure of its own
    // and could sit next to a 500, which is a real streak.
    health_check: { protocol: 'http', path: '/healthz', interval: '50ms', timeout: '1s', rise: 2, fall: 2 },
  })), stopProxy);
  await waitFor(() => n >= 8, 5_000, 'eight alternating checks');
  t.pass(`flappy alternated through ${n} checks`);
  t.equal(h.log.events('backend_down').filter((e) => e.backend === 'flappy').length, 0, 'alternating results never reach fall 2');
  mode = 'down';
  await waitFor(() => h.log.events('backend_down').some((e) => e.backend === 'flappy'), 2000, 'down after a streak');
  t.pass('two failures in a row take it down');
  await own.stopAll();
  await leaks.assertClean(t);
});
