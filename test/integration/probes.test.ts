/**
 * Health probes against real sockets: a stall of our own event loop (a GC pause, a busy host) is
 * not held against the backend — the reply that arrived meanwhile is read before the timeout is
 * judged — while a backend that really does not answer still times out.
 */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import type { HealthCheckConfig } from '../../src/config/schema.js';
import { probe } from '../../src/upstream/probes.js';
import { leakCheck } from '../helpers/handles.js';
import { owned } from '../helpers/owned.js';

/** Blocks this process's event loop, as a long GC pause or a starved core would. */
function stall(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy
  }
}

function check(protocol: 'http' | 'tcp', timeout: number): HealthCheckConfig {
  return { protocol, path: '/healthz', timeout, interval: 1_000, rise: 1, fall: 1, expect_status: { min: 200, max: 399 } } as HealthCheckConfig;
}

async function listen(server: net.Server): Promise<{ host: string; port: number; address: string }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return { host: '127.0.0.1', port, address: `127.0.0.1:${port}` };
}

t.test('a reply that arrived while our loop was blocked past the timeout counts (http and tcp)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const server = own(http.createServer((_req, res) => res.end('ok')), (s) => new Promise((r) => s.close(r)));
  const target = await listen(server);
  for (const protocol of ['http', 'tcp'] as const) {
    const result = probe(target, check(protocol, 100));
    stall(300);
    const { ok, detail } = await result;
    t.ok(ok, `${protocol}: the backend answered (${detail})`);
  }
  server.closeAllConnections();
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a backend that never answers still times out, with or without a stall of ours', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  // Accepts and never answers: the HTTP probe waits for a response that does not come.
  const sockets: net.Socket[] = [];
  const silent = own(net.createServer((s) => sockets.push(s)), (s) => new Promise((r) => s.close(r)));
  const target = await listen(silent);

  const started = performance.now();
  const plain = await probe(target, check('http', 100));
  t.same([plain.ok, plain.detail], [false, 'timeout after 100ms'], 'timed out');
  t.ok(performance.now() - started >= 95, 'not before its timeout');

  const stalled = probe(target, check('http', 100));
  stall(250);
  const result = await stalled;
  t.same([result.ok, result.detail], [false, 'timeout after 100ms'], 'after a stall of ours too: the extra time was given once');
  t.ok(result.durationMs >= 250 && result.durationMs < 5_000, `and it ended (${result.durationMs.toFixed(0)} ms)`);

  for (const s of sockets) s.destroy();
  await own.stopAll();
  await leaks.assertClean(t);
});
