/**
 * `npm run bench [-- throughput|drill|defaults|h2|all|profile|workers|workers-drill] [--reps N] [--seconds S] [--idle N] [--quick]`
 *
 * `h2`: HTTP/2 against HTTP/1.1 through hotwarm and HAProxy (TLS, h2load; see h2.ts). Printed
 * only, like `defaults`: RESULTS.md keeps the numbers by hand.
 *
 * `defaults`: hotwarm's failover drill alone, with no timing keys in the pool (the settings a
 * new user runs); `--reps N` runs it N times. Printed only: RESULTS.md keeps the numbers by hand.
 * `workers`: hotwarm with 1 and 2 workers beside HAProxy and NGINX with 2 (workers.ts); printed only.
 *   `--before DIR` adds another build's hotwarm (A/B in one run), `--bare` the per-core pair
 *   (hotwarm and the bare script on one core), `--hotwarm-only` leaves HAProxy and NGINX out.
 * `profile --before DIR`: the profile of this build, then of DIR's; `--bare`: then the bare script's.
 * `workers-drill`: the failover and reload drills with hotwarm `workers: 2`, `--reps N` times
 *   (workers-drill.ts); printed only.
 *
 * hotwarm side by side with HAProxy, NGINX and a bare http-proxy script, in one run, on
 * loopback only, bounded in time. Installs haproxy, nginx and wrk when missing. Prints the
 * tables and writes them into scripts/bench/RESULTS.md between the generated-section markers.
 * Not part of `npm test`.
 */
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { failoverDrill, reloadDrill, type FailoverResult, type ReloadResult } from './drill.js';
import { h2Table, runH2 } from './h2.js';
import { profile } from './profile.js';
import { PROXIES, type ProxyKind } from './proxies.js';
import { failoverTable, reloadTable, throughputTables } from './report.js';
import { stopAll } from './shared.js';
import { runThroughput } from './throughput.js';
import { runWorkers, workersTable, type WorkersOptions } from './workers.js';
import { workersDrills } from './workers-drill.js';
import { ensureTools } from './tools.js';

const RESULTS = fileURLToPath(new URL('../../../scripts/bench/RESULTS.md', import.meta.url));
const BEGIN = '<!-- bench:begin -->';
const END = '<!-- bench:end -->';

interface Options {
  mode: 'throughput' | 'drill' | 'defaults' | 'h2' | 'all' | 'profile' | 'workers' | 'workers-drill';
  reps: number;
  seconds: number;
  idle: number;
  /** Restrict to these proxies (for quick A/B runs); default all. */
  proxies: ProxyKind[];
  /** `workers`: see workers.ts. */
  workers: WorkersOptions;
}

function parse(argv: readonly string[]): Options {
  // 9,500 idle connections: HAProxy reserves two descriptors per connection and this machine's hard
  // limit is 20,000; hotwarm's own 10k case is in test/hostile/clients.test.ts.
  const options: Options = { mode: 'all', reps: 3, seconds: 5, idle: 9_500, proxies: [...PROXIES], workers: {} };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === 'throughput' || arg === 'drill' || arg === 'defaults' || arg === 'h2' || arg === 'all' || arg === 'profile' || arg === 'workers' || arg === 'workers-drill') options.mode = arg;
    else if (arg === '--before') options.workers = { ...options.workers, before: String(argv[++i]) };
    else if (arg === '--bare') options.workers = { ...options.workers, bare: true };
    else if (arg === '--hotwarm-only') options.workers = { ...options.workers, hotwarmOnly: true };
    else if (arg === '--reps') options.reps = Number(argv[++i]);
    else if (arg === '--seconds') options.seconds = Number(argv[++i]);
    else if (arg === '--idle') options.idle = Number(argv[++i]);
    else if (arg === '--proxies') options.proxies = String(argv[++i]).split(',').filter((p): p is ProxyKind => (PROXIES as readonly string[]).includes(p));
    else if (arg === '--quick') Object.assign(options, { reps: 1, seconds: 2, idle: 1_000 });
    else throw new Error(`unknown argument ${arg}`);
  }
  return options;
}

async function main(): Promise<void> {
  const options = parse(process.argv.slice(2));
  if (options.mode === 'defaults') {
    await defaultsDrill(options.reps);
    return;
  }
  ensureTools();
  if (options.mode === 'h2') {
    await h2Bench(options.reps, options.seconds);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'hotwarm-bench-'));
  // nginx workers run as an unprivileged user and must read the 100 KiB body file.
  chmodSync(dir, 0o755);
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  log(`bench: ${options.mode}, ${options.reps} reps × ${options.seconds}s, work dir ${dir}`);
  const sections: string[] = [`Run ${new Date().toISOString()} on ${process.platform}, Node ${process.version}.`];
  try {
    if (options.mode === 'profile') {
      await profile(dir, options.seconds, log);
      // `--before DIR`: the same profile of another build, for a function-by-function comparison.
      if (options.workers.before !== undefined) await profile(dir, options.seconds, log, options.workers.before);
      if (options.workers.bare === true) await profile(dir, options.seconds, log, 'bare');
      return;
    }
    if (options.mode === 'workers-drill') {
      await workersDrills(dir, options.reps, log);
      return;
    }
    if (options.mode === 'workers') {
      const run = await runWorkers(dir, options.reps, options.seconds, log, options.workers);
      log(`\n${workersTable(run, options.reps, options.seconds)}`);
      return;
    }
    if (options.mode !== 'drill') {
      const run = await runThroughput(dir, options.proxies, options.reps, options.seconds, options.idle, log);
      sections.push('## Throughput, latency, CPU, memory', '', throughputTables(run, options.proxies, options.reps, options.seconds));
    }
    if (options.mode !== 'throughput') {
      const failover: FailoverResult[] = [];
      const reload: (ReloadResult | null)[] = [];
      for (const proxy of options.proxies) {
        log(`failover drill: ${proxy}`);
        const drill = await failoverDrill(proxy, dir);
        log(`  req/s each second (kill at 3 s, restart at 9 s): ${drill.timeline.join(' ')}`);
        failover.push(drill);
        log(`reload drill: ${proxy}`);
        reload.push(await reloadDrill(proxy, dir));
      }
      sections.push('## Failover drill', '', failoverTable(failover), '', '## Reload drill', '', reloadTable(reload));
    }
  } finally {
    await stopAll();
  }
  const generated = sections.join('\n');
  log(`\n${generated}`);
  const current = readFileSync(RESULTS, 'utf8');
  const start = current.indexOf(BEGIN);
  const end = current.indexOf(END);
  const next = start >= 0 && end > start ? `${current.slice(0, start + BEGIN.length)}\n${generated}\n${current.slice(end)}` : `${current}\n${BEGIN}\n${generated}\n${END}\n`;
  writeFileSync(RESULTS, next);
  log(`\nwritten to ${RESULTS}`);
}

/** HTTP/2 and HTTP/1.1 through hotwarm and HAProxy; prints the table. */
async function h2Bench(reps: number, seconds: number): Promise<void> {
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'hotwarm-bench-'));
  chmodSync(dir, 0o755);
  log(`bench: h2, ${reps} reps × ${seconds}s, work dir ${dir}`);
  try {
    const run = await runH2(dir, reps, seconds, log);
    log(`\nRun ${new Date().toISOString()}, Node ${process.version}.\n\n${h2Table(run, reps, seconds)}`);
  } finally {
    await stopAll();
  }
}

/** hotwarm's failover drill with default settings, `reps` times; prints one line per run. */
async function defaultsDrill(reps: number): Promise<void> {
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  const ms = (v: number | null): string => (v === null ? 'never' : `${v} ms`);
  try {
    for (let i = 0; i < reps; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'hotwarm-bench-'));
      const r = await failoverDrill('hotwarm', dir, { defaults: true });
      log(
        `run ${i + 1}: ${r.requests} requests, ${r.failed} failed; kill → promoted ${ms(r.promotedMs)}, → warm's first request ${ms(r.warmFirstMs)}, ` +
          `→ 85% ${ms(r.recoveryMs)}, → 95% ${ms(r.fullMs)}; throughput 0–5 s / 5–10 s after the kill ${r.rampShares.map((x) => `${Math.round(x * 100)}%`).join(' / ')}; ` +
          `standby requests while down ${r.standbyDuring}`,
      );
      log(`  req/s each second (kill at 3 s, restart at 17 s): ${r.timeline.join(' ')}`);
    }
  } finally {
    await stopAll();
  }
}

process.once('SIGINT', () => {
  void stopAll().then(() => process.exit(130));
});
main().catch(async (err: unknown) => {
  await stopAll();
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
