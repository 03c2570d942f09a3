/** Turns benchmark runs into the RESULTS.md tables: medians, and every figure as ratios. */
import type { ProxyKind } from './proxies.js';
import type { FailoverResult, ReloadResult } from './drill.js';
import { SCENARIOS, type ThroughputRun } from './throughput.js';
import { median } from './tools.js';

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toFixed(digits) : '–');
const ratio = (a: number, b: number): string => (b > 0 && Number.isFinite(a) ? `${(a / b).toFixed(2)}×` : '–');

interface Figures {
  rps: number;
  p50: number;
  p99: number;
  cpu: number;
  errors: number;
}

function figures(run: ThroughputRun, proxy: ProxyKind, scenario: string): Figures {
  const samples = run.samples.filter((s) => s.proxy === proxy && s.scenario === scenario);
  return {
    rps: median(samples.map((s) => s.rps)),
    p50: median(samples.map((s) => s.p50Ms)),
    p99: median(samples.map((s) => s.p99Ms)),
    cpu: median(samples.map((s) => s.cpuPerRequestUs)),
    errors: samples.reduce((n, s) => n + s.errors, 0),
  };
}

export function throughputTables(run: ThroughputRun, proxies: readonly ProxyKind[], reps: number, seconds: number): string {
  const lines: string[] = [];
  lines.push(`Medians of ${reps} interleaved repetitions, wrk -t1 for ${seconds}s per run, each proxy pinned to core 1,`);
  lines.push('wrk and nginx backends on core 0. Ratios: ×HAProxy and ×bare (the bare http-proxy script).');
  for (const scenario of SCENARIOS) {
    const base = figures(run, 'haproxy', scenario.name);
    const bare = figures(run, 'bare', scenario.name);
    lines.push('', `### ${scenario.name}`, '');
    lines.push('| proxy | req/s | ×HAProxy | ×bare | p50 ms | ×HAProxy | p99 ms | ×HAProxy | CPU µs/req | ×HAProxy | ×bare | errors |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const proxy of proxies) {
      const f = figures(run, proxy, scenario.name);
      lines.push(
        `| ${proxy} | ${fmt(f.rps)} | ${ratio(f.rps, base.rps)} | ${ratio(f.rps, bare.rps)} | ${fmt(f.p50, 2)} | ${ratio(f.p50, base.p50)} | ${fmt(f.p99, 2)} | ${ratio(f.p99, base.p99)} | ${fmt(f.cpu, 1)} | ${ratio(f.cpu, base.cpu)} | ${ratio(f.cpu, bare.cpu)} | ${f.errors} |`,
      );
    }
  }
  lines.push('', '### Memory', '');
  lines.push('| proxy | RSS after load, MB | ×HAProxy | ×bare | per idle client connection, KB |');
  lines.push('|---|---|---|---|---|');
  const rss = (p: ProxyKind) => median(run.rss[p]);
  for (const proxy of proxies) {
    lines.push(`| ${proxy} | ${fmt(rss(proxy), 1)} | ${ratio(rss(proxy), rss('haproxy'))} | ${ratio(rss(proxy), rss('bare'))} | ${fmt(run.idleKb[proxy] ?? NaN, 1)} |`);
  }
  return lines.join('\n');
}

export function failoverTable(results: readonly FailoverResult[]): string {
  const lines = [
    '3 hot + 2 standby backends (each 4 worker slots × 50 ms: 240 req/s for the three hot ones), 12 clients; `kill -9` of one hot backend after 3 s, restarted 6 s later.',
    '"whole again": every 1 s window (stepped by 250 ms) from then until the restart has ≥ 85% of the throughput before the kill.',
    '',
    '| proxy | requests | failed | whole again after | full (95%) after | warm\'s first request after | throughput while down | standby requests while down | standby requests after failback |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    lines.push(
      `| ${r.proxy} | ${r.requests} | ${r.failed} | ${r.recoveryMs === null ? 'not within 6 s' : `${r.recoveryMs} ms`} | ${r.fullMs === null ? 'not within 6 s' : `${r.fullMs} ms`} | ${r.warmFirstMs === null ? '–' : `${r.warmFirstMs} ms`} | ${(r.degradedShare * 100).toFixed(0)}% | ${r.standbyDuring} | ${r.standbyAfter} |`,
    );
  }
  return lines.join('\n');
}

export function reloadTable(results: readonly (ReloadResult | null)[]): string {
  const lines = ['10 reloads, 400 ms apart, under 12 clients (hotwarm: SIGHUP with a changed file; HAProxy: SIGUSR2 to the master; NGINX: SIGHUP).', '', '| proxy | requests | failed |', '|---|---|---|'];
  for (const r of results) if (r !== null) lines.push(`| ${r.proxy} | ${r.requests} | ${r.failed} |`);
  return lines.join('\n');
}
