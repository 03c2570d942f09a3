/**
 * WebSocket over HTTP listeners, with real `ws` servers and clients (SPEC §3–5): echo and clean
 * close, in-flight accounting, retries, a client reset before the 101, non-101 answers passed
 * back as HTTP, either side closing the other — handles back to baseline after each test.
 */
import t from 'tap';
import http, { type IncomingHttpHeaders } from 'node:http';
import net, { type Socket } from 'node:net';
import { WebSocket } from 'ws';
import { TestBackend } from '../helpers/backend.js';
import { rawRequest, request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { simpleConfig, startProxy, testWorkers, waitFor, type BackendSpec } from '../helpers/harness.js';
import { HTTP_CHECKS, WsBackend, startWsBackends } from '../helpers/tunnels.js';
import { close, closeAll, stopProxy, owned } from '../helpers/owned.js';

// With workers (the contract suite runs this file with `workers: 2`) a tunnel lives in the worker
// that accepted it: the primary counts it in flight (h.refresh()), and access lines of different
// connections may come from different workers, in any order between them.
const single = testWorkers() === 1;

/** simpleConfig with health checks that tolerate a loaded machine. */
const wsConfig = (backends: readonly BackendSpec[], pool: Record<string, unknown> = {}, listener: Record<string, unknown> = {}) =>
  simpleConfig(backends, { health_check: HTTP_CHECKS, ...pool }, listener);

const UPGRADE_HEADERS = {
  connection: 'Upgrade',
  upgrade: 'websocket',
  'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
  'sec-websocket-version': '13',
};

const RAW_UPGRADE = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** Opens a ws client and resolves once it is open (rejects on error). */
function open(port: number, path = '/'): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket): Promise<string> {
  return new Promise((resolve) => ws.once('message', (data) => resolve(String(data))));
}

function closed(ws: WebSocket): Promise<number> {
  return new Promise((resolve) => {
    if (ws.readyState === WebSocket.CLOSED) resolve(1006);
    else ws.once('close', (code) => resolve(code));
  });
}

interface UpgradeAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly upgraded: boolean;
}

/** Sends an upgrade request with Node's client; a non-101 answer arrives as a response. */
function upgradeRequest(port: number, path: string): Promise<UpgradeAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: UPGRADE_HEADERS, agent: false });
    req.on('upgrade', (res, socket: Socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '', upgraded: true });
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, upgraded: false }));
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('WebSocket echo of several messages, then a clean 1000 close', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startWsBackends(['ws-1'])) as [WsBackend], closeAll);
  const h = own(await startProxy(wsConfig([{ name: 'ws-1', address: echo.address }])), stopProxy);
  const ws = await open(h.port(), '/chat?token=secret');
  const backend = h.proxy.pools.get('app')?.backends[0];
  await h.refresh();
  t.equal(backend?.inFlight, 1, 'the open WebSocket counts as in flight');
  t.equal(backend?.tunnels.size, single ? 1 : 0, single ? 'registered on its backend' : 'registered in its worker');
  for (const text of ['one', 'two', 'three']) {
    const reply = nextMessage(ws);
    ws.send(text);
    t.equal(await reply, `ws-1:${text}`);
  }
  const binary = new Promise<Buffer>((resolve) => ws.once('message', (data) => resolve(data as Buffer)));
  ws.send(Buffer.from([0, 1, 2, 255]));
  t.strictSame([...(await binary)], [0, 1, 2, 255], 'binary frames pass untouched');
  const code = closed(ws);
  ws.close(1000, 'bye');
  t.equal(await code, 1000, 'the client saw a clean close');
  await waitFor(() => echo.closeCodes.length === 1, 5_000, 'backend close');
  t.strictSame(echo.closeCodes, [1000], 'the backend saw the 1000 too');
  const seen = echo.upgrades[0] ?? {};
  t.equal(seen['x-forwarded-for'], '127.0.0.1');
  t.equal(seen['x-forwarded-proto'], 'http');
  t.equal(seen.upgrade, 'websocket');
  t.equal(seen.connection, 'upgrade');
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], {
    listener: 'web', pool: 'app', backend: 'ws-1', tunnel: 'websocket', method: 'GET', path: '/chat', status: 101, reason: 'closed', retries: 0,
  });
  t.ok((h.log.access[0]?.bytes_in as number) > 0 && (h.log.access[0]?.bytes_out as number) > 0, 'bytes counted both ways');
  await h.refresh();
  t.equal(backend?.inFlight, 0);
  t.equal(backend?.tunnels.size, 0);
  await own.stopAll();
  await leaks.assertClean(t);
});

/** A backend that takes upgrade requests and never answers them (it answers plain requests, for checks). */
async function silentUpgrades(): Promise<{ address: string; held: Socket[]; closed: Promise<void>[]; stop(): Promise<void> }> {
  const held: Socket[] = [];
  const closedSockets: Promise<void>[] = [];
  const server = http.createServer((_req, res) => res.end('ok'));
  server.on('upgrade', (_req, socket: Socket) => {
    held.push(socket);
    closedSockets.push(new Promise((resolve) => socket.once('close', () => resolve())));
    socket.on('error', () => undefined);
    // Reads (and drops) what comes, so it notices when the proxy closes the connection.
    socket.on('end', () => socket.end());
    socket.resume();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    address: `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    held,
    closed: closedSockets,
    async stop() {
      for (const socket of held) socket.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

t.test('a client reset before the 101: no crash, the upstream socket is closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const silent = own(await silentUpgrades(), (s) => s.stop());
  const h = own(await startProxy(wsConfig([{ name: 'slow', address: silent.address }], { response_timeout: '5s' })), stopProxy);
  const client = net.connect(h.port(), '127.0.0.1');
  client.on('error', () => undefined);
  client.write(RAW_UPGRADE('/hang'));
  await waitFor(() => silent.held.length === 1, 5_000, 'upgrade at the backend');
  const backend = h.proxy.pools.get('app')?.backends[0];
  await h.refresh();
  t.equal(backend?.inFlight, 1, 'a pending upgrade is in flight');
  client.resetAndDestroy();
  await silent.closed[0];
  t.pass('the upstream socket was closed');
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { backend: 'slow', path: '/hang', status: 499, error: 'CLIENT_ABORTED' });
  await h.refresh();
  t.equal(backend?.inFlight, 0);
  t.equal((await request(h.port())).status, 200, 'the proxy still serves');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('no answer to the upgrade within response_timeout: 504, upstream closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const silent = own(await silentUpgrades(), (s) => s.stop());
  const h = own(await startProxy(wsConfig([{ name: 'slow', address: silent.address }], { response_timeout: '200ms' })), stopProxy);
  const answer = await upgradeRequest(h.port(), '/late');
  t.match(answer, { status: 504, upgraded: false });
  await silent.closed[0];
  t.pass('the upstream socket was closed');
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { status: 504, error: 'UPSTREAM_RESPONSE_TIMEOUT', retries: 0 });
  await h.refresh();
  t.equal(h.proxy.pools.get('app')?.backends[0]?.inFlight, 0);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a backend that answers an upgrade with 426 or 200 is answered back as HTTP', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const refuse = own(await new TestBackend({
    name: 'refuse',
    handler: (_req, res) => {
      // Chunked on purpose: the body must reach the client intact, framed anew.
      res.writeHead(426, 'Upgrade Required', { 'x-reason': 'old-protocol', 'content-type': 'text/plain' });
      res.write('upgrade ');
      res.end('required');
    },
  }).start(), close);
  const plain = own(await new TestBackend({ name: 'plain' }).start(), close);
  const pool = (b: TestBackend) => ({ health_check: HTTP_CHECKS, backends: [{ name: b.name, address: b.address }] });
  const h = own(await startProxy({
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ path_prefix: '/refuse', pool: 'refuse' }, { pool: 'plain' }] }],
    pools: { refuse: pool(refuse), plain: pool(plain) },
  }), stopProxy);
  const refused = await upgradeRequest(h.port(), '/refuse');
  t.match(refused, { status: 426, upgraded: false, body: 'upgrade required' });
  t.equal(refused.headers['x-reason'], 'old-protocol', 'end-to-end headers are passed back');
  t.equal(refused.headers.connection, 'close');
  t.equal(refused.headers.upgrade, undefined, 'no Upgrade header on a refused upgrade');
  const ok = await upgradeRequest(h.port(), '/');
  t.match(ok, { status: 200, upgraded: false, body: 'plain' });
  t.equal(ok.headers['x-backend'], 'plain');
  t.equal(ok.headers['transfer-encoding'], undefined, 'the chunked body went out decoded, delimited by the close');
  // The ws client gives up on a non-101 answer: no tunnel.
  await t.rejects(open(h.port(), '/refuse'), /Unexpected server response: 426/);
  await waitFor(() => h.log.access.length === 3, 5_000, 'access lines');
  t.match(h.log.access.find((l) => l.backend === 'refuse'), { backend: 'refuse', status: 426, error: 'UPGRADE_REFUSED', bytes: 16 });
  t.match(h.log.access.find((l) => l.backend === 'plain'), { backend: 'plain', status: 200, error: 'UPGRADE_REFUSED' });
  t.notOk(h.log.access.some((l) => 'tunnel' in l), 'nothing was tunnelled');
  await h.refresh();
  t.ok([...h.proxy.pools.values()].every((p) => p.backends.every((b) => b.inFlight === 0)));
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a backend that cannot be connected to: the upgrade is retried on another', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startWsBackends(['a', 'b']), closeAll);
  const h = own(await startProxy(wsConfig(backends.map((b) => ({ name: b.name, address: b.address })), {
    health_check: { ...HTTP_CHECKS, interval: '10s' },
  })), stopProxy);
  await (backends[0] as WsBackend).kill();
  const clients = await Promise.all([0, 1, 2, 3, 4, 5].map(() => open(h.port())));
  const replies = await Promise.all(clients.map((ws) => {
    const reply = nextMessage(ws);
    ws.send('hi');
    return reply;
  }));
  t.strictSame(replies, Array(6).fill('b:hi'), 'every upgrade reached the live backend');
  t.ok(h.log.lines.some((l) => l.msg === 'retry' && l.backend === 'a' && l.error === 'UPSTREAM_CONNECT_FAILED'), 'retried');
  await h.refresh();
  t.equal(h.proxy.pools.get('app')?.backends[1]?.inFlight, 6, 'six tunnels in flight on b');
  await Promise.all(clients.map((ws) => {
    const done = closed(ws);
    ws.close(1000);
    return done;
  }));
  await waitFor(() => h.log.access.length === 6, 5_000, 'access lines');
  t.ok(h.log.access.some((l) => (l.retries as number) > 0));
  await own.stopAll();
  await leaks.assertClean(t);
});

/** A client text frame (masked, as RFC 6455 requires of clients) for short texts. */
function maskedTextFrame(text: string): Buffer {
  const payload = Buffer.from(text);
  const mask = Buffer.from([1, 2, 3, 4]);
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)));
  return Buffer.concat([Buffer.from([0x81, 0x80 | payload.length]), mask, masked]);
}

t.test('an upgrade after requests on a keep-alive connection is not cut by idle_timeout', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startWsBackends(['ws'])) as [WsBackend], closeAll);
  const h = own(await startProxy(wsConfig([{ name: 'ws', address: echo.address }], {}, { idle_timeout: '150ms' })), stopProxy);
  const socket = own(net.connect(h.port(), '127.0.0.1'), (s) => s.destroy());
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.write('GET / HTTP/1.1\r\nHost: app.test\r\n\r\n');
  await waitFor(() => received.includes('\r\n0\r\n\r\n'), 5_000, 'first response');
  socket.write(RAW_UPGRADE('/after'));
  await waitFor(() => received.includes('HTTP/1.1 101 Switching Protocols'), 5_000, '101');
  // A stretch of silence longer than idle_timeout (the scenario, not a wait for anything).
  await new Promise((resolve) => setTimeout(resolve, 400));
  t.notOk(socket.destroyed, 'the tunnel outlived the keep-alive idle_timeout');
  socket.write(maskedTextFrame('hi'));
  await waitFor(() => received.includes('ws:hi'), 5_000, 'echo');
  t.pass('and still carries frames');
  socket.destroy();
  await waitFor(() => h.log.access.length === 2, 5_000, 'access lines');
  t.match(h.log.access[1], { tunnel: 'websocket', path: '/after', status: 101 });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('either side closing closes the other', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startWsBackends(['ws'])) as [WsBackend], closeAll);
  const h = own(await startProxy(wsConfig([{ name: 'ws', address: echo.address }])), stopProxy);

  const first = await open(h.port());
  await waitFor(() => echo.clients.size === 1, 5_000, 'backend side open');
  const firstClosed = closed(first);
  for (const peer of echo.clients) peer.terminate();
  t.equal(await firstClosed, 1006, 'the backend dropped: the client sees the connection close');

  const second = await open(h.port());
  await waitFor(() => echo.clients.size === 1, 5_000, 'backend side open');
  second.terminate();
  await waitFor(() => echo.closeCodes.length === 2, 5_000, 'backend close');
  t.equal(echo.closeCodes[1], 1006, 'the client dropped: the backend sees the connection close');

  await waitFor(() => h.log.access.length === 2, 5_000, 'access lines');
  await h.refresh();
  t.equal(h.proxy.pools.get('app')?.backends[0]?.inFlight, 0);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('no serving backend: 503 with Retry-After; non-GET and non-websocket upgrades: 400', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const gone = own(await new WsBackend('gone').start(), close);
  const address = gone.address;
  await gone.close();
  const h = own(await startProxy(wsConfig([{ name: 'gone', address }])), stopProxy);
  const answer = await upgradeRequest(h.port(), '/');
  t.match(answer, { status: 503, upgraded: false });
  t.equal(answer.headers['retry-after'], '1');
  t.match(await rawRequest(h.port(), RAW_UPGRADE('/').replace('GET', 'POST')), /^HTTP\/1\.1 400 /);
  t.match(await rawRequest(h.port(), RAW_UPGRADE('/').replace('Upgrade: websocket', 'Upgrade: h2c')), /^HTTP\/1\.1 400 /);
  await waitFor(() => h.log.access.length === 3, 5_000, 'access lines');
  t.match(h.log.access.find((l) => l.status === 503), { status: 503, error: 'NO_SERVING_BACKEND', backend: null });
  t.match(h.log.access.find((l) => l.method === 'POST'), { method: 'POST', status: 400, error: 'WEBSOCKET_BAD_HANDSHAKE', backend: null });
  t.match(h.log.access.find((l) => l.method === 'GET' && l.status === 400), { method: 'GET', status: 400, error: 'BAD_REQUEST', backend: null });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('shutdown closes open WebSockets at shutdown_timeout', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startWsBackends(['ws'])) as [WsBackend], closeAll);
  const h = own(await startProxy({ ...wsConfig([{ name: 'ws', address: echo.address }]), shutdown_timeout: '300ms' }), stopProxy);
  const ws = await open(h.port());
  const code = closed(ws);
  const stopping = h.stop();
  t.equal(await code, 1006, 'the open WebSocket was closed');
  await stopping;
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { tunnel: 'websocket', reason: 'shutdown', error: 'TUNNEL_CLOSED' });
  await own.stopAll();
  await leaks.assertClean(t);
});
