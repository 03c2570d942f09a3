/**
 * The listener contract (SPEC §6–7): what every listener kind — HTTP, HTTPS, TCP, TLS — must do
 * through the one `Listener` interface a reload and a shutdown drive: bind, count connections,
 * hold what it accepts until opened, abandon, drain with a deadline, close. Written once and
 * run over each kind (hono runs one router suite over all its routers the same way). Real
 * sockets on port 0, a real pool and forwarders under the listener; each case ends with every
 * socket, server and timer back to its baseline.
 */
import type { Test } from 'tap';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { HttpForwarder } from '../../src/forward/http.js';
import { WebSocketForwarder } from '../../src/forward/websocket.js';
import { createListener } from '../../src/listeners/create.js';
import type { Listener } from '../../src/listeners/listener.js';
import { systemClock } from '../../src/upstream/clock.js';
import { PoolRuntime } from '../../src/upstream/pool-runtime.js';
import { leakCheck } from './handles.js';
import { waitFor } from './harness.js';
import { LogSink } from './log-sink.js';
import { close, owned, type Owned } from './owned.js';
import type { KindBackend, ListenerKind } from './listener-kinds.js';

interface Setup {
  readonly listener: Listener;
  readonly backend: KindBackend;
  readonly own: Owned;
  /** A connected client, destroyed with the test. */
  client(port: number): Promise<Duplex>;
}

/** One listener of `kind` over a pool of one backend, built as the proxy builds it; nothing bound yet. */
async function setup(t: Test, kind: ListenerKind): Promise<Setup> {
  const own = owned(t);
  const backend = own(await kind.startBackend(), close);
  const text = stringify({
    listeners: [{ name: 'contract', listen: '127.0.0.1:0', pool: 'app', ...kind.listener }],
    pools: { app: { health_check: { protocol: 'tcp', interval: '1h', timeout: '1s' }, backends: [{ name: 'b0', address: backend.address }] } },
  });
  const config = await parseConfig(text, 'contract.yaml', { env: {} });
  const logger = new LogSink().logger('debug');
  const pool = own(new PoolRuntime('app', config.pools.app as never, { events: { emit: () => undefined }, logger, clock: systemClock }), (p) => {
    p.stop();
    p.closeConnections('test over');
  });
  await pool.start();
  const onDone = (): void => undefined;
  const listener = createListener(config.listeners[0] as never, new Map([['app', pool]]), {
    forwarder: new HttpForwarder({ onDone }),
    upgrades: new WebSocketForwarder({ onDone, onTunnel: onDone }),
    logger,
    onDone,
    onTunnel: onDone,
  });
  own(listener, async (l) => {
    l.closeAllConnections();
    await l.stopAccepting();
  });
  const client = async (port: number) => own(await kind.connect(port), (s) => s.destroy());
  return { listener, backend, own, client };
}

const closed = (socket: Duplex): Promise<void> => new Promise((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

/** Whether a new connection to `port` is refused. */
function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });
}

export function listenerContract(t: Test, kind: ListenerKind): void {
  t.test(`${kind.name}: binds port 0, counts its connections, and closes to its baseline`, async (t) => {
    const leaks = leakCheck();
    const { listener, own, client } = await setup(t, kind);
    const { port } = await listener.listen();
    t.ok(port > 0, 'bound');
    t.equal(listener.address()?.port, port);
    const clients = await Promise.all([client(port), client(port), client(port)]);
    await waitFor(() => listener.openConnections === 3, undefined, 'three connections counted');
    t.ok((await kind.exchange(clients[0] as Duplex)).length > 0, 'served');
    (clients[1] as Duplex).destroy();
    await waitFor(() => listener.openConnections === 2, undefined, 'a closed one uncounted');
    listener.closeAllConnections();
    await listener.stopAccepting();
    await waitFor(() => listener.openConnections === 0, undefined, 'nothing open');
    t.pass('closeAllConnections + stopAccepting: nothing open');
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: held, what it accepts waits until open()`, async (t) => {
    const leaks = leakCheck();
    const { listener, backend, own, client } = await setup(t, kind);
    listener.hold();
    const { port } = await listener.listen();
    const socket = await client(port);
    const answer = kind.exchange(socket);
    await waitFor(() => listener.openConnections === 1, undefined, 'the connection accepted');
    t.equal(backend.seen, 0, 'nothing forwarded while held');
    listener.open();
    t.ok((await answer).length > 0, 'served once opened');
    t.equal(backend.seen, 1);
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: abandoned while held, it closes what it accepted and stops listening`, async (t) => {
    const leaks = leakCheck();
    const { listener, backend, own, client } = await setup(t, kind);
    listener.hold();
    const { port } = await listener.listen();
    const socket = await client(port);
    void kind.exchange(socket).catch(() => undefined);
    await waitFor(() => listener.openConnections === 1, undefined, 'the connection accepted');
    await listener.abandon();
    await closed(socket);
    t.ok(socket.destroyed, 'the accepted connection is closed');
    t.equal(backend.seen, 0, 'nothing was forwarded');
    t.ok(await refused(port), 'new connections are refused');
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: draining, it refuses new connections and lets what is in progress finish`, async (t) => {
    const leaks = leakCheck();
    const { listener, backend, own, client } = await setup(t, kind);
    const { port } = await listener.listen();
    const busy = await client(port);
    const finish = await kind.begin(busy, backend);
    await waitFor(() => backend.seen === 1, undefined, 'the exchange at the backend');
    let drained = false;
    const drain = listener.drain(60_000).then(() => (drained = true));
    t.ok(listener.closing, 'closing while it drains');
    t.ok(await refused(port), 'new connections are refused at once');
    t.notOk(drained, 'the drain waits for the exchange in progress');
    t.ok((await finish()).length > 0, 'the exchange in progress completes');
    await drain;
    await waitFor(() => listener.openConnections === 0, undefined, 'nothing open');
    t.pass('the drain ended with the last connection');
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: draining, what is still open at the deadline is closed`, async (t) => {
    const leaks = leakCheck();
    const { listener, backend, own, client } = await setup(t, kind);
    const { port } = await listener.listen();
    const busy = await client(port);
    void (await kind.begin(busy, backend));
    await waitFor(() => backend.seen === 1, undefined, 'the exchange at the backend');
    // HTTP: a keep-alive connection after its exchange; TCP: a tunnel (never idle).
    const idle = await client(port);
    await kind.exchange(idle);
    await waitFor(() => listener.openConnections === 2, undefined, 'both connections accepted');
    const drain = listener.drain(300);
    if (kind.idleClosesOnDrain) {
      await closed(idle);
      t.notOk(busy.destroyed, 'an idle connection closes at once, the busy one is left to finish');
    }
    await drain;
    await Promise.all([closed(busy), closed(idle)]);
    await waitFor(() => listener.openConnections === 0, undefined, 'nothing open');
    t.pass('everything closed by the deadline');
    await own.stopAll();
    await leaks.assertClean(t);
  });
}
