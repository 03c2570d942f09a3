/**
 * The event stream's self-defence over real sockets: a peer that stops answering pings is cut,
 * a peer that stops reading is dropped once its buffer passes the bound, others are unaffected.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import WebSocket from 'ws';
import { EventStream, type EventStreamOptions } from '../../src/control/event-stream.js';
import { EventLog } from '../../src/control/events.js';
import { leakCheck } from '../helpers/handles.js';
import { waitFor } from '../helpers/harness.js';
import { LogSink } from '../helpers/log-sink.js';

/** An event stream on its own server, closed with the test (closing twice is allowed). */
async function serve(t: Test, options: EventStreamOptions) {
  const events = new EventLog(new LogSink().logger('error'));
  const stream = new EventStream(events, options);
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  server.on('upgrade', (req, socket, head) => stream.accept(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const served = {
    events,
    stream,
    port,
    async close() {
      stream.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  t.teardown(() => served.close());
  return served;
}

/** A peer that completes the handshake by hand and then does nothing: no pongs, no reads. */
function silentPeer(t: Test, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    t.teardown(() => socket.destroy());
    socket.on('error', () => undefined);
    socket.once('connect', () =>
      socket.write(
        'GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: hotwarm.v1\r\n\r\n',
      ),
    );
    socket.once('data', (d: Buffer) => {
      if (d.toString().startsWith('HTTP/1.1 101')) resolve(socket);
      else reject(new Error(d.toString()));
    });
  });
}

interface Peer {
  readonly ws: WebSocket;
  readonly received: string[];
  /** Resolves once `count` messages have arrived. */
  until(count: number): Promise<void>;
}

function wsPeer(t: Test, port: number): Promise<Peer> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/events/stream`, ['hotwarm.v1']);
  t.teardown(() => ws.terminate());
  const received: string[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (d: Buffer) => {
    received.push(d.toString());
    wake?.();
  });
  const until = async (count: number): Promise<void> => {
    while (received.length < count) await new Promise<void>((resolve) => (wake = resolve));
    wake = null;
  };
  return new Promise((resolve) => ws.once('open', () => resolve({ ws, received, until })));
}

t.test('a peer that stops answering pings is cut; a live one stays', async (t) => {
  const leaks = leakCheck();
  // 500 ms, not less: the live peer answers pings from this same event loop, which a loaded
  // machine can stall for a few hundred milliseconds; the silent one is still cut within a second.
  const s = await serve(t, { heartbeatMs: 500 });
  const silent = await silentPeer(t, s.port);
  const live = await wsPeer(t, s.port);
  t.equal(s.stream.clients, 2);
  const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()));
  await closed;
  await waitFor(() => s.stream.clients === 1, 1_000, 'the server to forget the silent peer');
  t.equal(s.stream.clients, 1, 'the silent peer was terminated');
  s.events.emit('admin', { pool: 'app', backend: 'a', action: 'drain' });
  await waitFor(() => live.received.length === 1, 1_000, 'the live peer gets events');
  t.match(JSON.parse(live.received[0] ?? '{}'), { type: 'admin', seq: 1 });
  t.equal(live.ws.protocol, 'hotwarm.v1');
  live.ws.terminate();
  await waitFor(() => s.stream.clients === 0, 1_000, 'the live peer left');
  await s.close();
  await leaks.assertClean(t);
});

t.test('a peer that stops reading is dropped once its send buffer passes the bound', async (t) => {
  const leaks = leakCheck();
  const s = await serve(t, { maxBufferedBytes: 256 * 1024, heartbeatMs: 60_000 });
  const slow = await silentPeer(t, s.port);
  slow.pause();
  const fast = await wsPeer(t, s.port);
  const detail = 'x'.repeat(32 * 1024);
  let sent = 0;
  // One event at a time, each read by the fast peer before the next: only the slow one lags.
  while (s.stream.clients === 2 && sent < 1_000) {
    s.events.emit('spill', { pool: 'app', backend: 'spare-1', detail });
    sent++;
    await fast.until(sent);
  }
  t.equal(s.stream.clients, 1, `the slow peer was dropped after ${sent} events (${Math.round((sent * detail.length) / 1024 / 1024)} MiB)`);
  t.equal(fast.received.length, sent, 'the fast peer got every event');
  slow.destroy();
  fast.ws.terminate();
  await waitFor(() => s.stream.clients === 0, 1_000, 'everyone left');
  await s.close();
  await leaks.assertClean(t);
});

t.test('full, close, and messages from peers are capped', async (t) => {
  const leaks = leakCheck();
  const s = await serve(t, { maxClients: 1 });
  t.equal(s.stream.full, false);
  const peer = await wsPeer(t, s.port);
  t.equal(s.stream.full, true, 'one peer fills a stream of one');
  const closed = new Promise<number>((resolve) => peer.ws.once('close', (code) => resolve(code)));
  peer.ws.send('x'.repeat(8 * 1024));
  t.equal(await closed, 1009, 'a message over maxPayload closes the peer (1009)');
  const again = await wsPeer(t, s.port);
  const cut = new Promise<void>((resolve) => again.ws.once('close', () => resolve()));
  await s.close();
  await cut;
  t.equal(s.stream.clients, 0, 'close() cuts every peer');
  await leaks.assertClean(t);
});
