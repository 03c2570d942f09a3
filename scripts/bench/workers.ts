/**
 * `npm run bench -- workers`: hotwarm `workers: 1` and `workers: 2` side by side with HAProxy
 * `nbthread 2` and NGINX `worker_processes 2`, small responses at 64 connections. The proxies may
 * use both cores (unpinned); wrk and the nginx backends stay pinned to core 0 as in the other
 * tables, so every proxy shares that core with them. Interleaved repetitions, medians.
 *
 * Per run: req/s, CPU µs per request summed over every process of the proxy (hotwarm: primary
 * and workers), the primary's share of that CPU, RSS per process. Then, for hotwarm with 2
 * workers: how long a promotion decided by the primary takes to be applied by every worker
 * (publish → applied, as each worker acknowledges it; `/status` `last_apply_ms`).
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startBackendsOnce } from './shared.js';
import { startProxy, type ProxyKind, type Topology } from './proxies.js';
import { cpuMicros, median, rssMb, wrk } from './tools.js';
import { TOPOLOGY } from './throughput.js';

interface Variant {
  readonly label: string;
  readonly kind: ProxyKind;
  readonly workers: number;
}

const VARIANTS: readonly Variant[] = [
  { label: 'hotwarm workers: 1', kind: 'hotwarm', workers: 1 },
  { label: 'hotwarm workers: 2', kind: 'hotwarm', workers: 2 },
  { label: 'haproxy nbthread 2', kind: 'haproxy', workers: 2 },
  { label: 'nginx worker_processes 2', kind: 'nginx', workers: 2 },
];

/** Both cores: the proxies are not pinned here. */
const ALL_CORES = '0,1';

interface Sample {
  readonly variant: string;
  readonly rps: number;
  readonly errors: number;
  readonly cpuPerRequestUs: number;
  /** The first process's (hotwarm: the primary's) share of the proxy's CPU. */
  readonly rootShare: number;
  /** RSS in MB of each process after the load, root first. */
  readonly rss: readonly number[];
}

/** `pid` and every descendant (the proxy's process tree). */
function tree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    // gone
  }
  return [pid, ...children.flatMap(tree)];
}

function cpuOf(pids: readonly number[]): number[] {
  return pids.map((pid) => {
    try {
      return cpuMicros(pid);
    } catch {
      return 0;
    }
  });
}

function get(port: number, path: string, method = 'GET'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface WorkersRun {
  readonly samples: Sample[];
  /** Promotion apply latency per worker, ms (max over the workers, per promotion). */
  readonly applyMs: number[];
}

export async function runWorkers(dir: string, reps: number, seconds: number, log: (line: string) => void): Promise<WorkersRun> {
  await startBackendsOnce(TOPOLOGY.hot, dir);
  const samples: Sample[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    for (const v of VARIANTS) {
      const started = await startProxy(v.kind, TOPOLOGY, dir, { workers: v.workers, core: ALL_CORES });
      try {
        // Workers announce themselves after the port opens: give them a moment, then warm up.
        await new Promise((r) => setTimeout(r, v.kind === 'hotwarm' ? 1_500 : 300));
        wrk(`http://127.0.0.1:${TOPOLOGY.listenPort}/small`, 64, Math.min(3, seconds));
        const pids = tree(started.child.pid as number);
        const before = cpuOf(pids);
        const result = wrk(`http://127.0.0.1:${TOPOLOGY.listenPort}/small`, 64, seconds);
        const used = cpuOf(pids).map((c, i) => c - (before[i] ?? 0));
        const total = used.reduce((a, b) => a + b, 0);
        const sample: Sample = {
          variant: v.label,
          rps: result.rps,
          errors: result.errors,
          cpuPerRequestUs: result.requests > 0 ? total / result.requests : 0,
          rootShare: total > 0 ? (used[0] ?? 0) / total : 0,
          rss: pids.map((pid) => {
            try {
              return rssMb(pid);
            } catch {
              return 0;
            }
          }),
        };
        samples.push(sample);
        log(`rep ${rep} ${v.label.padEnd(26)} ${result.rps.toFixed(0).padStart(7)} req/s  ${sample.cpuPerRequestUs.toFixed(1)} µs/req  root ${(sample.rootShare * 100).toFixed(1)}%  rss ${sample.rss.map((r) => r.toFixed(0)).join('/')} MB  errors ${result.errors}`);
      } finally {
        await started.stop();
      }
    }
  }
  return { samples, applyMs: await applyLatency(dir, log) };
}

/** Promote / demote a standby warm 10 times through the admin API; each time, the slowest worker's apply. */
async function applyLatency(dir: string, log: (line: string) => void): Promise<number[]> {
  const topo: Topology = { ...TOPOLOGY, standby: [TOPOLOGY.hot[1] as number], hot: [TOPOLOGY.hot[0] as number] };
  const started = await startProxy('hotwarm', topo, dir, { workers: 2, core: ALL_CORES });
  const out: number[] = [];
  try {
    await new Promise((r) => setTimeout(r, 3_000));
    for (let i = 0; i < 10; i++) {
      const action = i % 2 === 0 ? 'promote' : 'demote';
      await get(topo.adminPort, `/pools/app/backends/warm-1/${action}`, 'POST');
      await new Promise((r) => setTimeout(r, 200));
      const status = JSON.parse(await get(topo.adminPort, '/status')) as { workers: { last_apply_ms: number | null }[] };
      const worst = Math.max(...status.workers.map((w) => w.last_apply_ms ?? Infinity));
      out.push(worst);
    }
    log(`promotion apply latency (slowest worker, publish → applied): ${out.map((n) => n.toFixed(2)).join(' ')} ms`);
  } finally {
    await started.stop();
  }
  return out;
}

export function workersTable(run: WorkersRun, reps: number, seconds: number): string {
  const lines = [
    `Small responses, wrk -t1 -c64 for ${seconds}s, medians of ${reps} interleaved repetitions. Proxies unpinned`,
    '(both cores); wrk and the two nginx backends pinned to core 0, so every proxy shares that core with them.',
    'CPU µs/req is summed over every process of the proxy; "root share" is the first process\'s part of it',
    '(hotwarm: the primary; nginx and HAProxy -W: the master). RSS per process after the load, root first.',
    '',
    '| proxy | req/s | ×workers: 1 | CPU µs/req | ×workers: 1 | root share | RSS MB per process | RSS total | errors |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const base = run.samples.filter((s) => s.variant === 'hotwarm workers: 1');
  const baseRps = median(base.map((s) => s.rps));
  const baseCpu = median(base.map((s) => s.cpuPerRequestUs));
  for (const v of VARIANTS) {
    const s = run.samples.filter((x) => x.variant === v.label);
    if (s.length === 0) continue;
    const rps = median(s.map((x) => x.rps));
    const cpu = median(s.map((x) => x.cpuPerRequestUs));
    const share = median(s.map((x) => x.rootShare));
    const last = s.at(-1) as Sample;
    const rss = last.rss.map((r) => r.toFixed(0)).join(' / ');
    const total = last.rss.reduce((a, b) => a + b, 0);
    lines.push(`| ${v.label} | ${rps.toFixed(0)} | ${(rps / baseRps).toFixed(2)}× | ${cpu.toFixed(1)} | ${(cpu / baseCpu).toFixed(2)}× | ${(share * 100).toFixed(1)}% | ${rss} | ${total.toFixed(0)} | ${s.reduce((n, x) => n + x.errors, 0)} |`);
  }
  const apply = run.applyMs.filter(Number.isFinite);
  lines.push('', `Promotion applied by every worker (slowest of 2, publish → acknowledged, ${apply.length} promote/demote actions): median ${median(apply).toFixed(2)} ms, max ${Math.max(...apply).toFixed(2)} ms.`);
  return lines.join('\n');
}
