/**
 * Lifecycle under stress, against the real binary: reloads in a tight loop during load, SIGHUP
 * arriving during shutdown, and a reload that removes a backend holding WebSockets. Each case
 * also checks the process stays up, its descriptors return to their baseline, and no backend
 * receives more requests than clients sent.
 */
import t, { type Test } from 'tap';
import { readdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { request, type Reply } from '../helpers/client.js';
import { freePort, sleep, STEADY_CHECKS, waitFor, writeConfig } from '../helpers/harness.js';
import { owned, closeAll } from '../helpers/owned.js';
import { ProxyProcess } from '../helpers/process.js';
import { startWsBackends, type WsBackend } from '../helpers/tunnels.js';

function config(port: number, backends: readonly { name: string; address: string; weight?: number }[], pool: Record<string, unknown> = {}): Record<string, unknown> {
  // Plain entries only: a TestBackend carries fields YAML must not see.
  backends = backends.map((b) => ({ name: b.name, address: b.address, ...(b.weight === undefined ? {} : { weight: b.weight }) }));
  return {
    shutdown_timeout: '2s',
    listeners: [{ name: 'web', listen: `127.0.0.1:${port}`, pool: 'app' }],
    pools: { app: { health_check: STEADY_CHECKS, connect_timeout: '200ms', response_timeout: '3s', drain_timeout: '400ms', backends, ...pool } },
  };
}

async function start(t: Test, file: string): Promise<ProxyProcess> {
  const proxy = new ProxyProcess(['-c', file]);
  t.teardown(() => proxy.kill());
  await proxy.port('web');
  return proxy;
}

const failed = (r: Reply): boolean => r.status !== 200 || r.error !== null;

/** Open file descriptors of a process (Linux); read synchronously, for polling. */
const openFds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

t.test('reloads in a tight loop during load: no request fails, nothing leaks, nothing is duplicated', async (t) => {
  const own = owned(t);
  const backends = own(await startBackends(['a', 'b', 'c'], { latencyMs: 2 }), closeAll);
  const [a, b, c] = backends as [TestBackend, TestBackend, TestBackend];
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [a, b]));
  const proxy = await start(t, file);
  const pid = proxy.child.pid as number;
  await request(port);
  const fdsBefore = openFds(pid);

  let running = true;
  const replies: Reply[] = [];
  const agent = own(new http.Agent({ keepAlive: true, maxSockets: 4 }), (x) => x.destroy());
  const workers = [agent, agent, agent, agent, false, false, false, false].map(async (which) => {
    while (running) replies.push(await request(port, { agent: which as http.Agent | false }));
  });
  own(workers, async (w) => {
    running = false;
    await Promise.all(w);
  });
  // 30 reloads 40 ms apart: signals arrive while reloads run and must be coalesced, not dropped or
  // stacked. The 40 ms pace is the stimulus; at least 8 requests between two signals keep the
  // load overlapping the reloads however slow the machine.
  let reloadsSignalled = 0;
  for (let i = 0; i < 30; i++) {
    writeConfig(file, config(port, i % 3 === 0 ? [a, b, c] : i % 3 === 1 ? [{ name: a.name, address: a.address, weight: 3 }, b] : [b, c]));
    reloadsSignalled = proxy.events('reload').length;
    proxy.signal('SIGHUP');
    const before = replies.length;
    await sleep(40);
    await waitFor(() => replies.length >= before + 8, undefined, 'requests between two signals');
  }
  // The last signal's reload applied (one more than had been logged when it was sent), and load went on after it.
  await waitFor(() => proxy.events('reload').length > reloadsSignalled, undefined, 'the reload after the last signal');
  const repliesAtLastReload = replies.length;
  await waitFor(() => replies.length >= repliesAtLastReload + 40, undefined, 'load after the last reload');
  running = false;
  await Promise.all(workers);
  agent.destroy();

  t.ok(replies.length > 200, `${replies.length} requests during the reloads`);
  t.equal(replies.filter(failed).length, 0, 'no request failed');
  const received = backends.reduce((n, x) => n + x.traffic.length, 0);
  t.equal(received - 1, replies.length, 'backends received exactly what clients sent');
  const reloads = proxy.events('reload');
  t.ok(reloads.length >= 2 && reloads.length <= 30, `${reloads.length} reloads applied for 30 signals (coalesced)`);
  t.strictSame(reloads.filter((e) => e.ok !== true), [], 'every reload applied');
  t.equal(proxy.child.exitCode, null, 'still running');
  // A few more pooled keep-alive sockets to the backends than after the first request are expected.
  let fdsAfter = openFds(pid);
  await waitFor(() => (fdsAfter = openFds(pid)) <= fdsBefore + 8, undefined, 'descriptors back near baseline').catch(() => undefined);
  t.ok(fdsAfter <= fdsBefore + 8, `descriptors back near baseline (${fdsBefore} → ${fdsAfter})`);
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
});

t.test('SIGHUP during shutdown is ignored: the request in flight completes, exit 0', async (t) => {
  const [slow] = (await startBackends(['slow'], { latencyMs: 600 })) as [TestBackend];
  t.teardown(() => slow.close());
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [slow]));
  const proxy = await start(t, file);
  const inFlight = request(port, { timeoutMs: 5_000 });
  await waitFor(() => slow.traffic.length === 1, 2_000, 'request at the backend');
  proxy.signal('SIGTERM');
  await proxy.waitForLine((l) => l.event === 'shutdown');
  writeConfig(file, config(port, [{ name: slow.name, address: slow.address, weight: 5 }]));
  proxy.signal('SIGHUP');
  const reply = await inFlight;
  t.equal(reply.status, 200, 'the request in flight completed');
  t.equal(reply.headers.connection, 'close');
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
  t.ok(refused, 'no new connections during shutdown');
  const exit = await proxy.exited;
  t.equal(exit.code, 0);
  t.equal(proxy.events('reload').length, 0, 'no reload ran during shutdown');
  t.equal(slow.traffic.length, 1);
});

t.test('a reload that removes a backend holding WebSockets: they live until drain_timeout, new ones go elsewhere', async (t) => {
  const own = owned(t);
  const [ws1, ws2] = own((await startWsBackends(['ws-1', 'ws-2'])) as [WsBackend, WsBackend], closeAll);
  const port = await freePort();
  const file = join(t.testdir(), 'proxy.yaml');
  writeConfig(file, config(port, [{ name: 'ws-1', address: ws1.address, weight: 100 }, { name: 'ws-2', address: ws2.address }]));
  const proxy = await start(t, file);
  const open = (): Promise<WebSocket> =>
    new Promise((resolve, reject) => {
      const ws = own(new WebSocket(`ws://127.0.0.1:${port}/chat`), (x) => x.terminate());
      ws.once('open', () => resolve(ws));
      ws.once('error', reject);
    });
  const echo = (ws: WebSocket, text: string): Promise<string> =>
    new Promise((resolve) => {
      ws.once('message', (data) => resolve(String(data)));
      ws.send(text);
    });
  const held = await open();
  t.equal(await echo(held, 'hi'), 'ws-1:hi', 'the first socket lands on ws-1');
  let closeCode: number | null = null;
  held.once('close', (code) => (closeCode = code));

  writeConfig(file, config(port, [{ name: 'ws-2', address: ws2.address }]));
  proxy.signal('SIGHUP');
  await proxy.waitForLine((l) => l.event === 'reload');
  t.equal(await echo(held, 'still'), 'ws-1:still', 'the tunnel on the removed backend keeps working while it drains');
  const fresh = await open();
  t.equal(await echo(fresh, 'new'), 'ws-2:new', 'new sockets go to the remaining backend');
  // drain_timeout is 400 ms: the bound is only there so that a tunnel never closed fails the test.
  await waitFor(() => closeCode !== null, 10_000, 'the drained tunnel to close').catch(() => undefined);
  t.not(closeCode, null, `closed at drain_timeout, with the proxy still running (code ${closeCode})`);
  t.equal(await echo(fresh, 'after'), 'ws-2:after', 'the other tunnel is untouched');
  fresh.close(1000);
  t.equal(proxy.child.exitCode, null, 'still running');
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
});
