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
 *
 * `--before DIR`: the same hotwarm variants again from another build (DIR/dist/src/main.js, e.g.
 * a worktree of an earlier commit), interleaved in the same run, for before/after ratios.
 * `--bare`: hotwarm `workers: 1` and the bare http-proxy script both pinned to one core (the
 * per-core comparison), in the same run.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { startBackendsOnce } from './shared.js';
import { startProxy, type ProxyKind, type Topology } from './proxies.js';
import { cpuMicros, median, PROXY_CORE, rssMb, wrk } from './tools.js';
import { TOPOLOGY } from './throughput.js';

interface Variant {
  readonly label: string;
  readonly kind: ProxyKind;
  readonly workers: number;
  /** Default: both cores. */
  readonly core?: string;
  readonly binary?: string;
}

/** Both cores: the proxies are not pinned here. */
const ALL_CORES = '0,1';

export interface WorkersOptions {
  readonly before?: string;
  readonly bare?: boolean;
  /** Leave HAProxy and NGINX out (A/B runs of hotwarm alone). */
  readonly hotwarmOnly?: boolean;
}

function variants(options: WorkersOptions): Variant[] {
  const list: Variant[] = [
    { label: 'hotwarm workers: 1', kind: 'hotwarm', workers: 1 },
    { label: 'hotwarm workers: 2', kind: 'hotwarm', workers: 2 },
  ];
  if (options.before !== undefined) {
    const binary = `${options.before}/dist/src/main.js`;
    list.push({ label: 'before workers: 1', kind: 'hotwarm', workers: 1, binary }, { label: 'before workers: 2', kind: 'hotwarm', workers: 2, binary });
  }
  if (options.bare === true) list.push({ label: 'hotwarm workers: 1, 1 core', kind: 'hotwarm', workers: 1, core: PROXY_CORE }, { label: 'bare, 1 core', kind: 'bare', workers: 1, core: PROXY_CORE });
  if (options.hotwarmOnly !== true) list.push({ label: 'haproxy nbthread 2', kind: 'haproxy', workers: 2 }, { label: 'nginx worker_processes 2', kind: 'nginx', workers: 2 });
  return list;
}

interface Sample {
  readonly variant: string;
  readonly rps: number;
  readonly errors: number;
  readonly cpuPerRequestUs: number;
  /** The first process's (hotwarm: the primary's) share of the proxy's CPU. */
  readonly rootShare: number;
  /** RSS in MB of each process after the load, root first. */
  readonly rss: readonly number[];
  /** Private memory (USS) in MB of each process: RSS less the pages it shares (the node binary's text). */
  readonly uss: readonly number[];
}

/** Private_Clean + Private_Dirty of `pid`, MB (0 when unreadable). */
function ussMb(pid: number): number {
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kb = [...rollup.matchAll(/^Private_(?:Clean|Dirty):\s+(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
    return kb / 1024;
  } catch {
    return 0;
  }
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
  readonly variants: readonly string[];
  /** Promotion apply latency per worker, ms (max over the workers, per promotion). */
  readonly applyMs: number[];
}

export async function runWorkers(dir: string, reps: number, seconds: number, log: (line: string) => void, options: WorkersOptions = {}): Promise<WorkersRun> {
  await startBackendsOnce(TOPOLOGY.hot, dir);
  const samples: Sample[] = [];
  const list = variants(options);
  for (let rep = 1; rep <= reps; rep++) {
    for (const v of list) {
      const started = await startProxy(v.kind, TOPOLOGY, dir, { workers: v.workers, core: v.core ?? ALL_CORES, ...(v.binary === undefined ? {} : { binary: v.binary }) });
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
          uss: pids.map(ussMb),
        };
        samples.push(sample);
        log(`rep ${rep} ${v.label.padEnd(26)} ${result.rps.toFixed(0).padStart(7)} req/s  ${sample.cpuPerRequestUs.toFixed(1)} µs/req  root ${(sample.rootShare * 100).toFixed(1)}%  rss ${sample.rss.map((r) => r.toFixed(0)).join('/')} MB  uss ${sample.uss.map((r) => r.toFixed(0)).join('/')} MB  errors ${result.errors}`);
      } finally {
        await started.stop();
      }
    }
  }
  return { samples, variants: list.map((v) => v.label), applyMs: await applyLatency(dir, log) };
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
    '(both cores) unless "1 core"; wrk and the two nginx backends pinned to core 0, so every proxy shares that core with them.',
    'CPU µs/req is summed over every process of the proxy; "root share" is the first process\'s part of it',
    '(hotwarm: the primary; nginx and HAProxy -W: the master). RSS and USS (private memory) per process after the',
    'load, root first; "host" = the USS summed plus the shared pages once (what the processes take together).',
    '',
    '| proxy | req/s | ×workers: 1 | CPU µs/req | ×workers: 1 | root share | RSS MB per process | RSS total | USS MB per process | host MB | errors |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  const of = (label: string): Sample[] => run.samples.filter((x) => x.variant === label);
  const rpsOf = (label: string): number => median(of(label).map((x) => x.rps));
  const cpuOf = (label: string): number => median(of(label).map((x) => x.cpuPerRequestUs));
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const rssTotal = (label: string): number => median(of(label).map((x) => sum(x.rss)));
  const host = (x: Sample): number => sum(x.uss) + Math.max(0, ...x.rss.map((r, i) => r - (x.uss[i] ?? 0)));
  const hostOf = (label: string): number => median(of(label).map(host));
  for (const label of run.variants) {
    const s = of(label);
    if (s.length === 0) continue;
    // Ratios against the same build's `workers: 1`.
    const base = label.startsWith('before') ? 'before workers: 1' : 'hotwarm workers: 1';
    const last = s.at(-1) as Sample;
    const share = median(s.map((x) => x.rootShare));
    lines.push(
      `| ${label} | ${rpsOf(label).toFixed(0)} | ${(rpsOf(label) / rpsOf(base)).toFixed(2)}× | ${cpuOf(label).toFixed(1)} | ${(cpuOf(label) / cpuOf(base)).toFixed(2)}× | ${(share * 100).toFixed(1)}% | ` +
        `${last.rss.map((r) => r.toFixed(0)).join(' / ')} | ${rssTotal(label).toFixed(0)} | ${last.uss.map((r) => r.toFixed(0)).join(' / ')} | ${hostOf(label).toFixed(0)} | ${s.reduce((n, x) => n + x.errors, 0)} |`,
    );
  }
  const w1 = 'hotwarm workers: 1';
  const w2 = 'hotwarm workers: 2';
  lines.push('', `Targets: workers: 2 ${(rpsOf(w2) / rpsOf(w1)).toFixed(2)}× the req/s of workers: 1 (≥ 1.5×), ${(cpuOf(w2) / cpuOf(w1)).toFixed(2)}× the CPU per request (≤ 1.1×); RSS total ${(rssTotal(w2) / rssTotal(w1)).toFixed(2)}× one process (≤ 2.2×), host memory ${(hostOf(w2) / hostOf(w1)).toFixed(2)}×.`);
  if (of('bare, 1 core').length > 0) {
    const one = 'hotwarm workers: 1, 1 core';
    lines.push(`Per core: hotwarm ${(rpsOf(one) / rpsOf('bare, 1 core')).toFixed(2)}× the bare http-proxy script's req/s, ${(cpuOf(one) / cpuOf('bare, 1 core')).toFixed(2)}× its CPU per request (target ≥ 0.95× req/s).`);
  }
  if (of('before workers: 1').length > 0) {
    for (const n of [1, 2]) {
      const [now, then] = [`hotwarm workers: ${n}`, `before workers: ${n}`];
      lines.push(`After / before, workers: ${n}: req/s ${(rpsOf(now) / rpsOf(then)).toFixed(2)}×, CPU µs/req ${(cpuOf(now) / cpuOf(then)).toFixed(2)}×, RSS total ${(rssTotal(now) / rssTotal(then)).toFixed(2)}× (${rssTotal(then).toFixed(0)} → ${rssTotal(now).toFixed(0)} MB).`);
    }
  }
  const apply = run.applyMs.filter(Number.isFinite);
  lines.push('', `Promotion applied by every worker (slowest of 2, publish → acknowledged, ${apply.length} promote/demote actions): median ${median(apply).toFixed(2)} ms, max ${Math.max(...apply).toFixed(2)} ms.`);
  return lines.join('\n');
}
