/**
 * Throughput, latency, CPU per request and memory of each proxy over the same two nginx
 * backends: small and 100 KiB responses at 64 connections and at 1. Every repetition starts
 * fresh proxy processes and visits the proxies in turn (interleaved), so drift in the shared
 * machine spreads over all of them; figures are medians.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackendsOnce } from './shared.js';
import { startProxy, type ProxyKind, type Topology } from './proxies.js';
import { cpuMicros, LOAD_CORE, rssMb, startPinned, waitForPort, workerPid, wrk, type WrkResult } from './tools.js';

export interface Scenario {
  readonly name: string;
  readonly path: '/small' | '/big';
  readonly connections: number;
}

export const SCENARIOS: readonly Scenario[] = [
  { name: 'small c64', path: '/small', connections: 64 },
  { name: '100KiB c64', path: '/big', connections: 64 },
  { name: 'small c1', path: '/small', connections: 1 },
  { name: '100KiB c1', path: '/big', connections: 1 },
];

export interface Sample extends WrkResult {
  readonly proxy: ProxyKind;
  readonly scenario: string;
  /** CPU of the proxy's worker process per request, µs. */
  readonly cpuPerRequestUs: number;
}

export interface ThroughputRun {
  readonly samples: Sample[];
  /** RSS in MB after the load, per proxy, one value per repetition. */
  readonly rss: Record<ProxyKind, number[]>;
  /** Extra RSS per idle client connection, KB. */
  readonly idleKb: Partial<Record<ProxyKind, number>>;
}

export const TOPOLOGY: Topology = { listenPort: 19080, hot: [19081, 19082], standby: [], adminPort: 19090, checkIntervalMs: 2000 };

export async function runThroughput(dir: string, proxies: readonly ProxyKind[], reps: number, seconds: number, idleConnections: number, log: (line: string) => void): Promise<ThroughputRun> {
  await startBackendsOnce(TOPOLOGY.hot, dir);
  const run: ThroughputRun = { samples: [], rss: { hotwarm: [], haproxy: [], nginx: [], bare: [] }, idleKb: {} };
  for (let rep = 1; rep <= reps; rep++) {
    for (const proxy of proxies) {
      const started = await startProxy(proxy, TOPOLOGY, dir);
      const pid = workerPid(started.child.pid as number);
      try {
        wrk(`http://127.0.0.1:${TOPOLOGY.listenPort}/small`, 64, Math.min(3, seconds));
        for (const scenario of SCENARIOS) {
          const cpuBefore = cpuMicros(pid);
          const result = wrk(`http://127.0.0.1:${TOPOLOGY.listenPort}${scenario.path}`, scenario.connections, seconds);
          const cpu = cpuMicros(pid) - cpuBefore;
          run.samples.push({ ...result, proxy, scenario: scenario.name, cpuPerRequestUs: result.requests > 0 ? cpu / result.requests : 0 });
          log(`rep ${rep} ${proxy.padEnd(8)} ${scenario.name.padEnd(11)} ${result.rps.toFixed(0).padStart(7)} req/s  p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms  errors ${result.errors}`);
        }
        run.rss[proxy].push(rssMb(pid));
        if (rep === 1 && idleConnections > 0) {
          run.idleKb[proxy] = await idleCost(pid, idleConnections, dir);
          log(`         ${proxy.padEnd(8)} ${idleConnections} idle connections: ${run.idleKb[proxy]?.toFixed(1)} KB each`);
        }
      } finally {
        await started.stop();
      }
    }
  }
  return run;
}

const IDLE_CLIENTS = fileURLToPath(new URL('./idle-clients.js', import.meta.url));

/** Opens `count` idle keep-alive client connections (each after one request) and measures RSS growth per connection. */
async function idleCost(pid: number, count: number, dir: string): Promise<number> {
  const before = rssMb(pid);
  const readyPort = 19099;
  const clients = startPinned('idle-clients', LOAD_CORE, [process.execPath, IDLE_CLIENTS, String(TOPOLOGY.listenPort), String(count), String(readyPort)], join(dir, 'idle-clients.log'));
  try {
    await waitForPort(readyPort, 120_000);
    await new Promise((r) => setTimeout(r, 1_000));
    return ((rssMb(pid) - before) * 1024) / count;
  } finally {
    await clients.stop();
  }
}
