/**
 * TCP listeners over real sockets (SPEC §3, §5): echo, balancing by least connections with
 * tunnels counted, retries when a backend cannot be connected to, half-close, idle timeout,
 * backend crashes and backends going down, limits — handles back to baseline after each test.
 * With workers (the contract suite runs this file with `workers: 2`) a tunnel lives in the worker
 * that accepted it: the primary sees it as in-flight (h.refresh()), not in `backend.tunnels`.
 */

/** With one process the tunnels are registered on the backend object the test holds; with workers, in a worker. */
const single = testWorkers() === 1;
import t from 'tap';
import net, { type Socket } from 'node:net';
import { leakCheck } from '../helpers/handles.js';
import { sleep, startProxy, testWorkers, waitFor } from '../helpers/harness.js';
import { TCP_CHECKS, TcpBackend, TcpClient, startTcpBackends, tcpConfig } from '../helpers/tunnels.js';
import { close, closeAll, stopProxy, owned } from '../helpers/owned.js';
import { ManualClock } from '../helpers/manual-clock.js';

t.test('TCP echo through the proxy; one access-log line per tunnel', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startTcpBackends(['echo-1'])) as [TcpBackend], closeAll);
  const h = own(await startProxy(tcpConfig([{ name: 'echo-1', address: echo.address }])), stopProxy);
  const client = TcpClient.connect(h.port());
  client.socket.write('hello ');
  await client.waitFor('hello ');
  client.socket.write('world');
  await client.waitFor('hello world');
  const backend = h.proxy.pools.get('db')?.backends[0];
  await h.refresh();
  t.equal(backend?.inFlight, 1, 'the open tunnel counts as in flight');
  t.equal(backend?.tunnels.size, single ? 1 : 0, single ? 'and is registered on its backend' : 'and is registered in the worker that carries it');
  client.socket.end();
  await client.closed;
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  await h.refresh();
  t.equal(backend?.inFlight, 0, 'released when it closed');
  t.equal(backend?.tunnels.size, 0);
  t.match(h.log.access[0], {
    listener: 'db', pool: 'db', backend: 'echo-1', tunnel: 'tcp', client: '127.0.0.1',
    bytes_in: 11, bytes_out: 11, bytes: 22, retries: 0, reason: 'closed',
  });
  t.notOk('error' in (h.log.access[0] ?? {}), 'a clean close carries no error');
  t.type(h.log.access[0]?.duration_ms, 'number');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('20 connections with one backend stopped all succeed (retried elsewhere)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startTcpBackends(['a', 'b', 'c'], { greet: true }), closeAll);
  // Checks far apart: only live traffic can notice the stopped backend.
  const h = own(await startProxy(tcpConfig(backends.map((b) => ({ name: b.name, address: b.address })), {
    health_check: { ...TCP_CHECKS, interval: '10s' },
  })), stopProxy);
  await (backends[1] as TcpBackend).kill();
  const clients = Array.from({ length: 20 }, () => TcpClient.connect(h.port()));
  await Promise.all(clients.map((c) => c.waitFor('\n')));
  const greeted = clients.map((c) => c.received.trim());
  t.equal(greeted.filter((g) => g === 'a' || g === 'c').length, 20, 'every connection reached a live backend');
  const retries = h.log.lines.filter((l) => l.msg === 'retry');
  t.ok(retries.length >= 1, `connect failures were retried (${retries.length})`);
  t.ok(retries.every((l) => l.backend === 'b' && l.error === 'UPSTREAM_CONNECT_FAILED'));
  t.equal(h.log.events('backend_down').length, 1, 'passive detection marked b down');
  for (const c of clients) c.socket.end();
  await Promise.all(clients.map((c) => c.closed));
  await waitFor(() => h.log.access.length === 20, 5_000, '20 access lines');
  t.ok(h.log.access.some((l) => (l.retries as number) > 0), 'retries are in the access log');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('half-close: the client ends its side and still receives the reply, then both close', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  // Reads until the client's end, then answers and ends (like `nc -q` or a request/response protocol).
  const server = own(await new TcpBackend('upper', {
    handler: (socket) => {
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('end', () => setTimeout(() => socket.end(`got ${text.toUpperCase()}`), 50));
    },
  }).start(), close);
  const h = own(await startProxy(tcpConfig([{ name: 'upper', address: server.address }])), stopProxy);
  const client = TcpClient.connect(h.port());
  client.socket.end('quiet please');
  await client.waitFor('got QUIET PLEASE');
  await client.closed;
  t.ok(client.ended, 'the backend end arrived as an end');
  t.equal(client.error, null);
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { reason: 'closed', bytes_in: 12, bytes_out: 16 });
  await own.stopAll();
  await leaks.assertClean(t);
});

/** Writes `total` bytes to `socket` respecting backpressure; `written()` tells how far it got. */
function pump(socket: Socket, total: number): { written: () => number; done: Promise<void> } {
  const chunk = Buffer.alloc(64 * 1024, 7);
  let written = 0;
  const done = new Promise<void>((resolve) => {
    const more = (): void => {
      while (written < total) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', more);
          return;
        }
      }
      resolve();
    };
    more();
  });
  return { written: () => written, done };
}

t.test('backpressure both ways: a side that does not read holds the other back', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  // Well above what the kernel buffers on loopback (~7 MiB each way were seen in flight).
  const TOTAL = 24 * 1024 * 1024;
  let backendSocket: Socket | null = null;
  // The connection that says hello is the tunnel's (health checks connect too).
  const server = own(await new TcpBackend('bulk', { handler: (socket) => socket.once('data', () => (backendSocket = socket)) }).start(), close);
  const h = own(await startProxy(tcpConfig([{ name: 'bulk', address: server.address }])), stopProxy);
  const client = net.connect(h.port(), '127.0.0.1');
  await new Promise((resolve) => client.once('connect', resolve));
  client.write('!');
  await waitFor(() => backendSocket !== null, 5_000, 'backend connection');
  const backend = backendSocket as unknown as Socket;

  // Backend → client, while the client does not read.
  client.pause();
  const down = pump(backend, TOTAL);
  // The scenario, not a wait for anything: 300 ms of not reading. A loaded machine moves fewer
  // bytes in that time, which only makes an unbounded queue harder to miss, never a false alarm.
  await sleep(300);
  const heldDown = down.written();
  t.ok(heldDown < (TOTAL * 2) / 3, `the backend was held back at ${(heldDown / 2 ** 20).toFixed(1)} MiB of 24`);
  let received = 0;
  client.on('data', (d: Buffer) => (received += d.length));
  client.resume();
  await down.done;
  await waitFor(() => received === TOTAL, 10_000, 'all bytes at the client');

  // Client → backend, while the backend does not read.
  backend.pause();
  const up = pump(client, TOTAL);
  await sleep(300); // 300 ms of not reading, as above
  const heldUp = up.written();
  t.ok(heldUp < (TOTAL * 2) / 3, `the client was held back at ${(heldUp / 2 ** 20).toFixed(1)} MiB of 24`);
  let arrived = 0;
  backend.on('data', (d: Buffer) => (arrived += d.length));
  backend.resume();
  await up.done;
  await waitFor(() => arrived === TOTAL, 10_000, 'all bytes at the backend');

  client.end();
  backend.end();
  await new Promise((resolve) => client.once('close', resolve));
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { reason: 'closed', bytes_in: TOTAL + 1, bytes_out: TOTAL });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('tunnel_idle_timeout closes a quiet tunnel; traffic either way keeps it open (simulated time)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startTcpBackends(['echo'])) as [TcpBackend], closeAll);
  // The tunnel's idle timer runs on the pool's clock: here simulated, so "150 ms of quiet" is
  // exactly that however busy the machine is. Bytes still cross real sockets.
  const clock = new ManualClock();
  const h = own(await startProxy(tcpConfig([{ name: 'echo', address: echo.address }], { tunnel_idle_timeout: '200ms' }), { clock }), stopProxy);
  const client = TcpClient.connect(h.port());
  for (let i = 0; i < 5; i++) {
    client.socket.write(`${i}`);
    await client.waitFor('01234'.slice(0, i + 1));
    await clock.advance(150); // less than the timeout since the last byte: stays open
    t.notOk(client.isClosed, `open after byte ${i} and 150 ms of quiet`);
  }
  t.equal(client.received, '01234', 'bytes every 150 ms for 750 ms in all: open throughout');
  await clock.advance(49);
  t.notOk(client.isClosed, '199 ms after the last byte: still open');
  await clock.advance(1);
  await client.closed;
  t.pass('200 ms after the last byte: closed');
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { reason: 'idle_timeout', error: 'TUNNEL_IDLE_TIMEOUT', bytes_in: 5, bytes_out: 5 }, 'closed for silence');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('tunnel_idle_timeout: 0s means no limit (simulated time)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startTcpBackends(['echo'])) as [TcpBackend], closeAll);
  const clock = new ManualClock();
  const h = own(await startProxy(tcpConfig([{ name: 'echo', address: echo.address }], { tunnel_idle_timeout: '0s', health_check: { ...TCP_CHECKS, interval: '10s' } }), { clock }), stopProxy);
  const timersBefore = clock.pending;
  const client = TcpClient.connect(h.port());
  client.socket.write('x');
  await client.waitFor('x');
  t.equal(clock.pending, timersBefore, 'no idle timer was started for the tunnel');
  // An hour of silence (checks run meanwhile: their timers are on the same clock).
  await clock.advance(3_600_000);
  t.ok(clock.now() >= 3_600_000, 'an hour passed');
  client.socket.write('y');
  await client.waitFor('xy');
  t.notOk(client.isClosed, 'still open, and still carries bytes');
  client.socket.end();
  await client.closed;
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a backend crash closes its tunnels and the clients see the close', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startTcpBackends(['echo'])) as [TcpBackend], closeAll);
  const h = own(await startProxy(tcpConfig([{ name: 'echo', address: echo.address }])), stopProxy);
  const clients = [0, 1, 2].map(() => TcpClient.connect(h.port()));
  for (const c of clients) c.socket.write('ping');
  await Promise.all(clients.map((c) => c.waitFor('ping')));
  const backend = h.proxy.pools.get('db')?.backends[0];
  await h.refresh();
  t.equal(backend?.inFlight, 3);
  await echo.kill();
  await Promise.all(clients.map((c) => c.closed));
  t.ok(clients.every((c) => c.error === 'ECONNRESET'), 'the reset crossed the proxy as a reset');
  await waitFor(() => h.log.access.length === 3, 5_000, 'access lines');
  t.ok(h.log.access.every((l) => l.reason === 'backend_reset' && l.error === 'TUNNEL_UPSTREAM_RESET'));
  await h.refresh();
  t.equal(backend?.inFlight, 0);
  t.equal(backend?.tunnels.size, 0);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a backend marked down by its checks has its open tunnels closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startTcpBackends(['echo'])) as [TcpBackend], closeAll);
  const h = own(await startProxy(tcpConfig([{ name: 'echo', address: echo.address }])), stopProxy);
  const client = TcpClient.connect(h.port());
  client.socket.write('ping');
  await client.waitFor('ping');
  // The process still holds the connection, but new connections are refused: checks fail.
  await echo.stopListening();
  await client.closed;
  t.equal(h.log.events('backend_down').length, 1);
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { reason: 'backend down', error: 'TUNNEL_CLOSED' });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a released warm keeps its tunnels until drain_timeout, then they are closed (simulated time)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const hot = own(await new TcpBackend('hot', { greet: true }).start(), close);
  const warm = own(await new TcpBackend('warm', { greet: true }).start(), close);
  // Checks, the failback and the drain all run on simulated time; probes and tunnels on real sockets.
  const clock = new ManualClock();
  const STEP = 50;
  const h = own(await startProxy(tcpConfig(
    [{ name: 'hot', address: hot.address }, { name: 'warm', address: warm.address, role: 'warm' }],
    { drain_timeout: '300ms', failover: { failback_hold: '0s', slow_start: '0s' } },
  ), { clock }), stopProxy);
  const hotPort = hot.port;
  await hot.close();
  await clock.advanceUntil(() => h.log.events('promoted').length === 1, STEP, 5_000, 'warm promoted');
  const client = TcpClient.connect(h.port());
  await client.waitFor('warm\n');
  await hot.start(hotPort);
  await clock.advanceUntil(() => h.log.events('released').length === 1, STEP, 5_000, 'warm released');
  // The release came in during the last step: at most STEP ms of simulated time ago.
  client.socket.write('still served');
  await client.waitFor('still served');
  await clock.advance(300 - STEP - 1);
  t.notOk(client.isClosed, 'less than drain_timeout after the release: the tunnel outlives it');
  client.socket.write(' still');
  await client.waitFor('still served still');
  await clock.advance(STEP + 1);
  await client.closed;
  t.pass('drain_timeout after the release: closed');
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { backend: 'warm', reason: 'drain timeout', error: 'TUNNEL_CLOSED' });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('tunnels count in least connections: new connections avoid the backend holding many', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const a = own(await new TcpBackend('a', { greet: true }).start(), close);
  const b = own(new TcpBackend('b', { greet: true }), close);
  await b.start();
  const bPort = b.port;
  await b.close(); // down at startup: a takes the first tunnels alone
  const h = own(await startProxy(tcpConfig(
    [{ name: 'a', address: a.address }, { name: 'b', address: `127.0.0.1:${bPort}` }],
    { failover: { slow_start: '0s' } },
  )), stopProxy);
  const first = [0, 1, 2, 3].map(() => TcpClient.connect(h.port()));
  await Promise.all(first.map((c) => c.waitFor('\n')));
  t.strictSame(first.map((c) => c.received.trim()), ['a', 'a', 'a', 'a']);
  await b.start(bPort);
  await waitFor(() => h.log.events('backend_up').some((e) => e.backend === 'b'), 5_000, 'b up');
  await h.refresh();
  const next = [0, 1, 2, 3].map(() => TcpClient.connect(h.port()));
  await Promise.all(next.map((c) => c.waitFor('\n')));
  const [ba, bb] = h.proxy.pools.get('db')?.backends ?? [];
  await h.refresh();
  if (single) {
    // In-flight caps: a backend holds at most ⌊(total + 1) × share⌋ + 1, so with a at 4 the next 3 must go to b.
    t.strictSame(next.slice(0, 3).map((c) => c.received.trim()), ['b', 'b', 'b'], 'a holds 4 tunnels: the next ones go to b');
    t.ok((ba?.inFlight ?? 0) <= 5 && (bb?.inFlight ?? 0) >= 3, `in flight a ${ba?.inFlight}, b ${bb?.inFlight}`);
  } else {
    // Each worker balances over its own tunnels (README: per worker), so how the connections were
    // handed out decides: even a worker that got none of a's 4 and all of the next 4 sends half to b.
    const toB = next.filter((c) => c.received.trim() === 'b').length;
    t.ok(toB >= 2, `a holds 4 tunnels over the workers: ${toB} of the next 4 go to b`);
    t.equal(ba?.inFlight, 8 - toB, 'the host view counts a\'s tunnels in every worker');
    t.equal(bb?.inFlight, toB, 'the host view counts every worker\'s tunnels');
  }
  t.equal((ba?.inFlight ?? 0) + (bb?.inFlight ?? 0), 8);
  for (const c of [...first, ...next]) c.socket.end();
  await Promise.all([...first, ...next].map((c) => c.closed));
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('nothing serving: the client is closed at once', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const gone = new TcpBackend('gone');
  await gone.start();
  const address = gone.address;
  await gone.close();
  const h = own(await startProxy(tcpConfig([{ name: 'gone', address }])), stopProxy);
  const client = TcpClient.connect(h.port());
  await client.closed;
  t.notOk(h.log.lines.some((l) => l.msg === 'retry'), 'closed without waiting: no backend was tried');
  t.equal(client.received, '');
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { tunnel: 'tcp', backend: null, reason: 'not_connected', error: 'NO_SERVING_BACKEND', bytes: 0 });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('every backend refuses: retries run out and the client is closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own(await startTcpBackends(['a', 'b']), closeAll);
  const h = own(await startProxy(tcpConfig(backends.map((b) => ({ name: b.name, address: b.address })), {
    retries: 1,
    health_check: { ...TCP_CHECKS, interval: '10s', fall: 3 },
  })), stopProxy);
  await Promise.all(backends.map((b) => b.close()));
  const client = TcpClient.connect(h.port());
  await client.closed;
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { reason: 'not_connected', error: 'UPSTREAM_CONNECT_FAILED', retries: 1 });
  // With workers: a periodic report made during the attempts would still say 1.
  await h.refresh();
  t.equal(h.proxy.pools.get('db')?.backends.reduce((n, b) => n + b.inFlight, 0), 0, 'nothing left in flight');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('max_connections: connections beyond the limit are closed', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startTcpBackends(['echo'])) as [TcpBackend], closeAll);
  const h = own(await startProxy(tcpConfig([{ name: 'echo', address: echo.address }], {}, { max_connections: 2 })), stopProxy);
  if (!single) {
    // max_connections holds per worker (README): the host takes at most 2 × workers, and a
    // connection handed to a worker at its limit is dropped even if another has room.
    const workers = testWorkers();
    const clients: TcpClient[] = [];
    for (let i = 0; i <= 2 * workers; i++) {
      const c = TcpClient.connect(h.port());
      clients.push(c);
      c.socket.write('in');
      await Promise.race([c.waitFor('in').catch(() => undefined), c.closed]);
    }
    const served = clients.filter((c) => !c.isClosed && c.received === 'in').length;
    t.ok(served >= 2 && served <= 2 * workers, `${served} connections held (2 per worker at most)`);
    t.ok(clients.some((c) => c.isClosed && c.received === ''), 'a connection beyond a worker\'s limit was dropped');
    for (const c of clients) c.socket.end();
    await Promise.all(clients.map((c) => c.closed));
    await own.stopAll();
    await leaks.assertClean(t);
    return;
  }
  const open = [0, 1].map(() => TcpClient.connect(h.port()));
  for (const c of open) c.socket.write('in');
  await Promise.all(open.map((c) => c.waitFor('in')));
  const third = TcpClient.connect(h.port());
  await third.closed;
  t.equal(third.received, '', 'the third connection was dropped');
  t.notOk(open.some((c) => c.isClosed), 'the first two stay open');
  for (const c of open) c.socket.end();
  await Promise.all(open.map((c) => c.closed));
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('shutdown closes open tunnels at shutdown_timeout', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [echo] = own((await startTcpBackends(['echo'])) as [TcpBackend], closeAll);
  const h = own(await startProxy(tcpConfig([{ name: 'echo', address: echo.address }], { tunnel_idle_timeout: '0s' })), stopProxy);
  const client = TcpClient.connect(h.port());
  client.socket.write('x');
  await client.waitFor('x');
  const started = Date.now();
  await h.stop();
  await client.closed;
  const took = Date.now() - started;
  t.ok(took >= 400, `not before shutdown_timeout (${took}ms)`);
  t.match(h.log.events('shutdown').at(-1), { phase: 'stopped', outcome: 'timeout' }, 'closed at shutdown_timeout');
  // With workers the line comes through the worker's stdout pipe, which may still hold it when
  // the primary has seen the worker exit.
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { reason: 'shutdown', error: 'TUNNEL_CLOSED' });
  await own.stopAll();
  await leaks.assertClean(t);
});
