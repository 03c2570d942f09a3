/**
 * Drills under steady load, the same topology for each proxy: 3 hot backends + 2 standbys
 * (hotwarm warm, HAProxy and NGINX `backup`), each backend a process with a fixed service time
 * and a few worker slots, so capacity is finite and losing a backend shows.
 * - failover: `kill -9` one hot backend, restart it later; failed requests, time until the
 *   throughput is whole again (85%) and full (95%), when the warm saw its first request, and what
 *   the standbys did. `defaults`: hotwarm with no timing keys in the pool (the settings a new
 *   user runs), down long enough for the 10 s slow start to finish.
 * - reload: 10 configuration reloads; failed requests.
 * With `workers` > 1 (hotwarm), `/status` is polled every 100 ms during the drill for each
 * worker's `last_apply_ms` (the primary's publish → that worker's acknowledgement of the latest
 * snapshot): promotions, releases, slow-start steps and reload commits.
 */
import http from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDrillBackend } from './backends.js';
import { hotwarmConfig, RELOAD_SIGNAL, startProxy, type ProxyKind, type Topology } from './proxies.js';
import type { Started } from './tools.js';

const TOPO: Topology = { listenPort: 19180, hot: [19181, 19182, 19183], standby: [19184, 19185], adminPort: 0, checkIntervalMs: 500 };
const NAMES = ['hot-1', 'hot-2', 'hot-3', 'warm-1', 'warm-2'];
// 50 ms of service: the backends, not the load generator sharing their core, set the capacity.
const SERVICE_MS = 50;
const SLOTS = 4;
/** 12 in flight against 3 × 4 slots: the pool is just full; losing one hot backend costs a third. */
const CLIENTS = 12;
/** "Whole" is judged on 1 s windows stepped by 250 ms; at ~200 req/s shorter windows are mostly noise. */
const WINDOW_MS = 1_000;
const STEP_MS = 250;
const WHOLE = 0.85;
const FULL = 0.95;

interface Completion {
  readonly at: number;
  readonly ok: boolean;
  readonly backend: string;
  /** Epoch ms at which the backend received the request (its answer says), or NaN. */
  readonly arrived: number;
}

class Load {
  readonly completions: Completion[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  readonly t0 = Date.now();
  #running = true;
  readonly #workers: Promise<void>[];

  constructor(port: number) {
    this.#workers = Array.from({ length: CLIENTS }, () => this.#work(port));
  }

  now(): number {
    return Date.now() - this.t0;
  }

  async #work(port: number): Promise<void> {
    while (this.#running) {
      const reply = await new Promise<{ ok: boolean; body: string }>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent: this.#agent }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve({ ok: res.statusCode === 200 && res.complete, body: body.trim() }));
          res.on('error', () => resolve({ ok: false, body: '' }));
        });
        req.setTimeout(5_000, () => req.destroy());
        req.on('error', () => resolve({ ok: false, body: '' }));
      });
      const [backend = '', arrived = ''] = reply.body.split(' ');
      this.completions.push({ at: this.now(), ok: reply.ok, backend, arrived: Number(arrived) });
      if (!reply.ok) await new Promise((r) => setTimeout(r, 5));
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#workers);
    this.#agent.destroy();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function startBackends(dir: string): Promise<Started[]> {
  const ports = [...TOPO.hot, ...TOPO.standby];
  return Promise.all(NAMES.map((name, i) => startDrillBackend(name, ports[i] as number, dir, SERVICE_MS, SLOTS)));
}

export interface FailoverResult {
  readonly proxy: ProxyKind;
  readonly requests: number;
  readonly failed: number;
  /** ms from the kill until throughput stays ≥ 85% of before; null = not within the window. */
  readonly recoveryMs: number | null;
  /** ms from the kill until throughput stays ≥ 95% of before; null = not within the window. */
  readonly fullMs: number | null;
  /** ms from the kill until a warm backend received its first request; null = never. */
  readonly warmFirstMs: number | null;
  /** hotwarm: ms from the kill to the `promoted` event (its log); null otherwise. */
  readonly promotedMs: number | null;
  /** Throughput while the backend was down, as a share of before. */
  readonly degradedShare: number;
  /** Throughput in the 5 s after the kill and the 5 s after those, as shares of before (the slow-start ramp). */
  readonly rampShares: readonly [number, number];
  /** Requests served by each standby while the hot backend was down, and after it returned. */
  readonly standbyDuring: number;
  readonly standbyAfter: number;
  /** Successful requests per second over the whole drill, for the log: where the dips are. */
  readonly timeline: readonly number[];
  /** With workers: each worker's snapshot apply times seen during the drill, ms, by worker id. */
  readonly applies: ReadonlyMap<number, readonly number[]>;
}

export interface DrillOptions {
  /** hotwarm with no timing keys in the pool. */
  readonly defaults?: boolean;
  /** hotwarm `workers` (default 1). */
  readonly workers?: number;
}

/** The admin port of a drill with workers (for `/status`). */
const DRILL_ADMIN_PORT = 19189;

/** Each worker's distinct `last_apply_ms` readings while it runs; stop() returns them by worker id. */
function watchApplies(adminPort: number): { stop(): Promise<Map<number, number[]>> } {
  const seen = new Map<number, number[]>();
  let running = true;
  const poll = async (): Promise<void> => {
    while (running) {
      try {
        const status = JSON.parse(await get(adminPort, '/status')) as { workers?: { id: number; last_apply_ms: number | null }[] };
        for (const w of status.workers ?? []) {
          const list = seen.get(w.id) ?? [];
          if (w.last_apply_ms !== null && list.at(-1) !== w.last_apply_ms) list.push(w.last_apply_ms);
          seen.set(w.id, list);
        }
      } catch {
        // the admin API is not up yet, or already gone
      }
      await sleep(100);
    }
  };
  const polling = poll();
  return {
    async stop() {
      running = false;
      await polling;
      return seen;
    },
  };
}

function get(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.setTimeout(2_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function topologyFor(workers: number, base: Topology): Topology {
  return workers > 1 ? { ...base, adminPort: DRILL_ADMIN_PORT } : base;
}

export async function failoverDrill(proxy: ProxyKind, dir: string, options: DrillOptions = {}): Promise<FailoverResult> {
  const defaults = options.defaults === true;
  // With defaults: down for 14 s (detection + the 10 s slow start), so "full" can be seen.
  const downMs = defaults ? 14_000 : 6_000;
  const backends = await startBackends(dir);
  const workers = options.workers ?? 1;
  const topo: Topology = topologyFor(workers, { ...TOPO, defaults });
  const started = await startProxy(proxy, topo, dir, { accessLog: false, workers });
  const applies = workers > 1 ? watchApplies(topo.adminPort) : null;
  const logFile = join(dir, `${proxy}.log`);
  const logStart = readLog(logFile).length;
  const load = new Load(TOPO.listenPort);
  try {
    await sleep(3_000);
    const killAt = load.now();
    const killEpoch = load.t0 + killAt;
    await (backends[1] as Started).stop('SIGKILL');
    await sleep(downMs);
    const restartAt = load.now();
    backends[1] = await startDrillBackend('hot-2', TOPO.hot[1] as number, dir, SERVICE_MS, SLOTS);
    await sleep(5_000);
    await load.stop();
    const applied = (await applies?.stop()) ?? new Map<number, number[]>();
    const c = load.completions;
    const rate = (from: number, to: number): number => c.filter((x) => x.ok && x.at >= from && x.at < to).length / ((to - from) / 1000);
    const baseline = rate(1_000, killAt);
    const stays = (share: number): number | null => {
      for (let t = killAt; t <= restartAt - WINDOW_MS; t += STEP_MS) {
        let whole = true;
        for (let u = t; u <= restartAt - WINDOW_MS; u += STEP_MS) if (rate(u, u + WINDOW_MS) < share * baseline) whole = false;
        if (whole) return t - killAt;
      }
      return null;
    };
    const standby = (from: number, to: number) => c.filter((x) => x.ok && x.at >= from && x.at < to && x.backend.startsWith('warm')).length;
    let warmFirst = Infinity;
    for (const x of c) if (x.backend.startsWith('warm') && x.arrived < warmFirst) warmFirst = x.arrived;
    return {
      proxy,
      requests: c.length,
      failed: c.filter((x) => !x.ok).length,
      recoveryMs: stays(WHOLE),
      fullMs: stays(FULL),
      warmFirstMs: Number.isFinite(warmFirst) ? warmFirst - killEpoch : null,
      promotedMs: proxy === 'hotwarm' ? eventAfter(readLog(logFile).slice(logStart), 'promoted', killEpoch) : null,
      degradedShare: rate(killAt + 1_500, restartAt) / baseline,
      rampShares: [rate(killAt, killAt + 5_000) / baseline, rate(killAt + 5_000, killAt + 10_000) / baseline],
      standbyDuring: standby(killAt, restartAt),
      standbyAfter: standby(restartAt + 4_000, Infinity),
      timeline: Array.from({ length: Math.ceil(load.now() / 1_000) }, (_, i) => Math.round(rate(i * 1_000, (i + 1) * 1_000))),
      applies: applied,
    };
  } finally {
    await applies?.stop();
    await load.stop();
    await started.stop();
    await Promise.all(backends.map((b) => b.stop('SIGKILL')));
  }
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

/** ms from `sinceEpoch` to the first `event` line of a hotwarm log, or null. */
function eventAfter(log: string, event: string, sinceEpoch: number): number | null {
  for (const line of log.split('\n')) {
    if (!line.includes(`"type":"${event}"`)) continue;
    const time = /"time":"([^"]+)"/.exec(line)?.[1];
    if (time !== undefined) return Date.parse(time) - sinceEpoch;
  }
  return null;
}

export interface ReloadResult {
  readonly proxy: ProxyKind;
  readonly reloads: number;
  readonly requests: number;
  readonly failed: number;
  /** With workers: each worker's snapshot apply times seen during the drill, ms, by worker id. */
  readonly applies: ReadonlyMap<number, readonly number[]>;
}

export async function reloadDrill(proxy: ProxyKind, dir: string, options: DrillOptions = {}): Promise<ReloadResult | null> {
  const signal = RELOAD_SIGNAL[proxy];
  if (signal === null) return null;
  const workers = options.workers ?? 1;
  const topo = topologyFor(workers, TOPO);
  const backends = await startBackends(dir);
  const started = await startProxy(proxy, topo, dir, { accessLog: false, workers });
  const applies = workers > 1 ? watchApplies(topo.adminPort) : null;
  const load = new Load(TOPO.listenPort);
  try {
    await sleep(1_000);
    for (let i = 0; i < 10; i++) {
      // hotwarm: a real change each time (alternate check intervals), not just the same file again.
      if (proxy === 'hotwarm') writeFileSync(join(dir, 'hotwarm.yaml'), hotwarmConfig({ ...topo, checkIntervalMs: i % 2 === 0 ? 400 : 500 }, false, workers));
      started.child.kill(signal);
      await sleep(400);
    }
    await sleep(1_000);
    await load.stop();
    const applied = (await applies?.stop()) ?? new Map<number, number[]>();
    return { proxy, reloads: 10, requests: load.completions.length, failed: load.completions.filter((x) => !x.ok).length, applies: applied };
  } finally {
    await applies?.stop();
    await load.stop();
    await started.stop();
    await Promise.all(backends.map((b) => b.stop('SIGKILL')));
  }
}
