/**
 * The exchange contract (SPEC §4–5): what every exchange the proxy forwards — HTTP/1.1, HTTP/2,
 * WebSocket upgrade — must do when a backend or the client fails, written once and run over each
 * kind (hono runs one router suite over all its routers the same way). Real sockets on port 0:
 * scripted raw backends, the real proxy, the kind's own client; each case ends with every
 * socket, server and timer back to its baseline.
 */
import type { Test } from 'tap';
import net from 'node:net';
import { leakCheck } from './handles.js';
import { startProxy, waitFor, type Harness } from './harness.js';
import { close, owned, stopProxy, type Owned } from './owned.js';
import { RawBackend, type Script } from './raw-backend.js';
import { answer, type ExchangeKind } from './exchange-kinds.js';

/** Checks pass at startup (tcp) and then stay quiet, so faults meet live traffic only. */
const QUIET = { protocol: 'tcp', interval: '1h', timeout: '1s' } as const;

const hang: Script = () => undefined;

/** Answers a head and 4 of the 10 body bytes it announced, then closes (a FIN: a reset could overtake the bytes). */
const cutMidBody: Script = (socket) => {
  socket.end('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf');
};

interface Setup {
  readonly h: Harness;
  readonly backends: RawBackend[];
  readonly own: Owned;
}

/** Raw backends (the first weighted so it is chosen first), one proxy over them with `pool` settings. */
async function setup(t: Test, kind: ExchangeKind, scripts: readonly Script[], pool: Record<string, unknown>): Promise<Setup> {
  const own = owned(t);
  const backends: RawBackend[] = [];
  for (const script of scripts) backends.push(own(await new RawBackend(script).start(), close));
  const config = {
    log: { level: 'debug' },
    shutdown_timeout: '500ms',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app', ...kind.listener }],
    pools: {
      app: {
        health_check: QUIET,
        passive: { consecutive_failures: 0 },
        connect_timeout: '1s',
        response_timeout: '5s',
        backends: backends.map((b, i) => ({ name: `b${i}`, address: b.address, weight: i === 0 ? 10 : 1 })),
        ...pool,
      },
    },
  };
  const h = own(await startProxy(config), stopProxy);
  return { h, backends, own };
}

async function accessLine(h: Harness): Promise<Record<string, unknown>> {
  await waitFor(() => h.log.access.length === 1, undefined, 'the access line');
  return h.log.access[0] as Record<string, unknown>;
}

/** In-flight per backend; with workers, as the primary knows it once every worker has reported since now. */
async function inFlight(h: Harness): Promise<number[]> {
  await h.refresh();
  return (h.proxy.pools.get('app')?.backends ?? []).map((b) => b.inFlight);
}

/** A port nothing listens on: bound, then closed. */
async function deadAddress(): Promise<string> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return `127.0.0.1:${port}`;
}

export function exchangeContract(t: Test, kind: ExchangeKind): void {
  t.test(`${kind.name}: a backend refusing the connection is retried on the next one`, async (t) => {
    const leaks = leakCheck();
    const { h, backends, own } = await setup(t, kind, [answer, answer], { retries: 1 });
    await (backends[0] as RawBackend).close();
    const seen = await kind.exchange(h.port());
    t.equal(seen.status, kind.served, 'served by the second backend');
    t.equal(backends[1]?.requests.length, 1);
    t.match(await accessLine(h), { backend: 'b1', retries: 1 });
    t.strictSame(await inFlight(h), [0, 0], 'nothing left in flight');
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: a body cut short by the backend reaches the client cut short, and is not retried`, async (t) => {
    const leaks = leakCheck();
    const { h, backends, own } = await setup(t, kind, [cutMidBody, answer], { retries: 2 });
    const seen = await kind.exchange(h.port());
    t.equal(seen.status, 200, 'the head went through');
    t.ok(seen.cut, 'the client sees the body cut short, never a complete one');
    t.equal(backends[1]?.requests.length, 0, 'no retry once bytes reached the client');
    t.match(await accessLine(h), { backend: 'b0', retries: 0, error: 'UPSTREAM_RESET_MID_BODY' });
    t.strictSame(await inFlight(h), [0, 0], 'nothing left in flight');
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: a client that goes away is recorded, and its backend connection released`, async (t) => {
    const leaks = leakCheck();
    const { h, backends, own } = await setup(t, kind, [hang], {});
    const backend = backends[0] as RawBackend;
    const abort = await kind.open(h.port());
    await waitFor(() => backend.requests.length === 1, undefined, 'the request at the backend');
    abort();
    t.match(await accessLine(h), { status: 499, error: 'CLIENT_ABORTED', backend: 'b0' });
    await waitFor(() => backend.open === 0, undefined, 'the backend connection closed');
    t.strictSame(await inFlight(h), [0], 'in-flight released');
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: no answer within response_timeout abandons the attempt with 504`, async (t) => {
    const leaks = leakCheck();
    const { h, backends, own } = await setup(t, kind, [hang], { retries: 0, response_timeout: '300ms' });
    const seen = await kind.exchange(h.port());
    t.equal(seen.status, 504);
    t.equal(seen.headers['retry-after'], undefined, 'a timeout says nothing of when to come back');
    t.match(await accessLine(h), { status: 504, error: 'UPSTREAM_RESPONSE_TIMEOUT' });
    await waitFor(() => (backends[0] as RawBackend).open === 0, undefined, 'the abandoned connection closed');
    t.strictSame(await inFlight(h), [0], 'in-flight released');
    await own.stopAll();
    await leaks.assertClean(t);
  });

  t.test(`${kind.name}: Retry-After when nothing serves, not when the one backend tried failed`, async (t) => {
    const leaks = leakCheck();
    const own = owned(t);
    const config = (address: string) => ({
      log: { level: 'debug' },
      listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app', ...kind.listener }],
      pools: { app: { health_check: QUIET, passive: { consecutive_failures: 0 }, retries: 0, backends: [{ name: 'b0', address }] } },
    });
    // Down from the startup check on: nothing serves.
    const down = own(await startProxy(config(await deadAddress())), stopProxy);
    const none = await kind.exchange(down.port());
    t.equal(none.status, 503);
    t.ok(Number(none.headers['retry-after']) >= 1, 'Retry-After present');
    t.match(await accessLine(down), { status: 503, error: 'NO_SERVING_BACKEND', backend: null });
    // Stopped before the next starts: with workers, two primaries in this one test process share
    // node:cluster, whose listening handles are keyed by address and listen order, so the second
    // proxy's `127.0.0.1:0` would join the first one's port (one hotwarm per process never does).
    await stopProxy(down);
    // Up at startup, gone when asked: the one attempt fails and nothing is left to try.
    const gone = own(await new RawBackend(answer).start(), close);
    const h = own(await startProxy(config(gone.address)), stopProxy);
    await gone.close();
    const failed = await kind.exchange(h.port());
    t.equal(failed.status, 502);
    t.equal(failed.headers['retry-after'], undefined, 'no Retry-After on a 502');
    t.match(await accessLine(h), { status: 502, error: 'UPSTREAM_CONNECT_FAILED', backend: 'b0' });
    await own.stopAll();
    await leaks.assertClean(t);
  });
}
