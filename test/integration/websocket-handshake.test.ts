/**
 * WebSocket opening handshakes checked both ways (RFC 6455 §4, SPEC §5), over real sockets.
 * Client side: every defect is answered by the proxy (400, or 426 with the version it speaks)
 * and the backend receives not one byte. Backend side: a 101 that does not complete the
 * handshake is a 502, and nothing crosses in either direction — not the backend's bytes after
 * its 101, not the client's bytes sent after its request.
 */
import t from 'tap';
import net from 'node:net';
import { WebSocket } from 'ws';
import { acceptFor } from '../../src/forward/ws-handshake.js';
import { rawRequest } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { simpleConfig, startProxy, waitFor } from '../helpers/harness.js';
import { TCP_CHECKS, WsBackend } from '../helpers/tunnels.js';
import { close, stopProxy, owned } from '../helpers/owned.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';

/**
 * A raw TCP backend that records every byte it receives, per connection; health checks are
 * TCP connects (they send nothing). `answer` writes to connections that sent something.
 */
class RecordingBackend {
  readonly received: Buffer[] = [];
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  port = 0;

  constructor(answer: ((socket: net.Socket, head: string) => void) | null = null) {
    this.#server = net.createServer((socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
      let answered = false;
      let text = '';
      socket.on('data', (d: Buffer) => {
        this.received.push(d);
        text += d.toString('latin1');
        if (!answered && answer !== null && text.includes('\r\n\r\n')) {
          answered = true;
          answer(socket, text);
        }
      });
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  get bytes(): string {
    return Buffer.concat(this.received).toString('latin1');
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

function handshake(lines: Record<string, string | null> = {}, requestLine = 'GET /chat HTTP/1.1'): string {
  const headers: Record<string, string | null> = {
    Host: 'app.test',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': KEY,
    'Sec-WebSocket-Version': '13',
    ...lines,
  };
  let text = `${requestLine}\r\n`;
  for (const [name, value] of Object.entries(headers)) if (value !== null) text += `${name}: ${value}\r\n`;
  return `${text}\r\n`;
}

t.test('client handshake defects: 400 (426 for another version), nothing reaches the backend', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backend = await new RecordingBackend().start();
  const h = own(await startProxy(simpleConfig([{ name: 'raw', address: backend.address }], { health_check: TCP_CHECKS })), stopProxy);
  const cases: [string, string, number, string][] = [
    ['POST', handshake({}, 'POST /chat HTTP/1.1'), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['HTTP/1.0', handshake({}, 'GET /chat HTTP/1.0'), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['Upgrade: h2c', handshake({ Upgrade: 'h2c' }), 400, 'BAD_REQUEST'],
    ['no Connection: upgrade', handshake({ Connection: 'keep-alive' }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['no Connection at all', handshake({ Connection: null }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['no key', handshake({ 'Sec-WebSocket-Key': null }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['key of 15 bytes', handshake({ 'Sec-WebSocket-Key': Buffer.alloc(15, 7).toString('base64') }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['key of 17 bytes', handshake({ 'Sec-WebSocket-Key': Buffer.alloc(17, 7).toString('base64') }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['key not base64', handshake({ 'Sec-WebSocket-Key': 'not*base64*at*all*here==' }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['no version', handshake({ 'Sec-WebSocket-Version': null }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['version not a number', handshake({ 'Sec-WebSocket-Version': 'thirteen' }), 400, 'WEBSOCKET_BAD_HANDSHAKE'],
    ['with a body', handshake({ 'Content-Length': '5' }).concat('hello'), 400, 'BAD_REQUEST'],
    ['version 8', handshake({ 'Sec-WebSocket-Version': '8' }), 426, 'WEBSOCKET_VERSION_UNSUPPORTED'],
  ];
  for (const [what, request, status, code] of cases) {
    const before = h.log.access.length;
    const reply = await rawRequest(h.port(), request);
    t.match(reply, new RegExp(`^HTTP/1\\.1 ${status} `), `${what}: ${status}`);
    if (status === 426) {
      t.match(reply, /\r\nsec-websocket-version: 13\r\n/i, `${what}: the version we speak`);
      t.match(reply, /\r\nupgrade: websocket\r\n/i);
    }
    await waitFor(() => h.log.access.length === before + 1, 5_000, `${what}: access line`);
    t.match(h.log.access[before], { status, error: code, backend: null }, `${what}: logged as ${code}`);
  }
  t.equal(backend.received.length, 0, 'the backend received zero bytes');
  await h.stop();
  await backend.close();
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a well-formed handshake in other case and token lists is accepted', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const echo = own(await new WsBackend('ws').start(), close);
  const h = own(await startProxy(simpleConfig([{ name: 'ws', address: echo.address }], { health_check: TCP_CHECKS })), stopProxy);
  const socket = net.connect(h.port(), '127.0.0.1');
  let received = '';
  socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
  socket.write(handshake({ Upgrade: 'WebSocket', Connection: 'keep-alive, Upgrade' }));
  await waitFor(() => received.includes('\r\n\r\n'), 5_000, 'answer');
  t.match(received, /^HTTP\/1\.1 101 /);
  t.match(received, new RegExp(`\\r\\nsec-websocket-accept: ${acceptFor(KEY).replaceAll('+', '\\+')}\\r\\n`, 'i'));
  socket.destroy();
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  await own.stopAll();
  await leaks.assertClean(t);
});

const EARLY_FRAME = Buffer.from([0x81, 0x85, 1, 2, 3, 4, 0x69, 0x67, 0x6f, 0x68, 0x6e]); // masked "hello"

t.test('a backend 101 that does not complete the handshake: 502, nothing tunnelled either way', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const good = `Sec-WebSocket-Accept: ${acceptFor(KEY)}\r\n`;
  const answers: [string, string][] = [
    ['no Upgrade header', `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n${good}\r\n`],
    ['Upgrade: h2c', `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n${good}\r\n`],
    ['no Sec-WebSocket-Accept', 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'],
    ['an accept for another key', `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${acceptFor('AAAAAAAAAAAAAAAAAAAAAA==')}\r\n\r\n`],
    ['the key echoed back', `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${KEY}\r\n\r\n`],
  ];
  for (const [what, answer] of answers) {
    const backend = await new RecordingBackend((socket) => {
      // The bad 101, then data as if the tunnel were open.
      socket.write(answer);
      socket.write('BACKEND-SECRET-DATA');
    }).start();
    const h = own(await startProxy(simpleConfig([{ name: 'bad', address: backend.address }], { health_check: TCP_CHECKS })), stopProxy);
    // The client's frame follows its request at once, before any answer.
    const reply = await rawRequest(h.port(), Buffer.concat([Buffer.from(handshake()), EARLY_FRAME]));
    t.match(reply, /^HTTP\/1\.1 502 /, `${what}: 502`);
    t.notMatch(reply, /BACKEND-SECRET-DATA|101/, `${what}: none of the backend's bytes reached the client`);
    t.equal(backend.bytes.indexOf('\r\n\r\n'), backend.bytes.length - 4, `${what}: the backend got the request head and nothing after it`);
    t.match(backend.bytes, /^GET \/chat HTTP\/1\.1\r\n/);
    await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
    t.match(h.log.access[0], { status: 502, error: 'UPGRADE_BAD_RESPONSE', backend: 'bad' }, `${what}: logged`);
    t.notOk(h.log.access.some((l) => 'tunnel' in l), `${what}: no tunnel`);
    await h.refresh();
    t.equal(h.proxy.pools.get('app')?.backends[0]?.inFlight, 0, `${what}: in-flight released`);
    await h.stop();
    await backend.close();
  }
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('ws clients still connect through the proxy (a real handshake both ways)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const echo = own(await new WsBackend('ws').start(), close);
  const h = own(await startProxy(simpleConfig([{ name: 'ws', address: echo.address }], { health_check: TCP_CHECKS })), stopProxy);
  const ws = new WebSocket(`ws://127.0.0.1:${h.port()}/`);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const reply = new Promise<string>((resolve) => ws.once('message', (d) => resolve(String(d))));
  ws.send('hi');
  t.equal(await reply, 'ws:hi');
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.close(1000);
  t.equal(await closed, 1000);
  await own.stopAll();
  await leaks.assertClean(t);
});
