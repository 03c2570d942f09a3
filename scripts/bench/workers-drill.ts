/**
 * `npm run bench -- workers-drill [--reps N]`: the failover and reload drills (drill.ts) with
 * hotwarm `workers: 2`, N times each: failed requests (target 0), kill → promoted, the warm's
 * first request, and each worker's snapshot apply times during the drill (publish → applied).
 */
import { failoverDrill, reloadDrill } from './drill.js';
import { median } from './tools.js';

const WORKERS = 2;

function applied(applies: ReadonlyMap<number, readonly number[]>): string {
  const parts = [...applies].sort(([a], [b]) => a - b).map(([id, ms]) => (ms.length === 0 ? `worker ${id}: none` : `worker ${id}: ${ms.length} applies, median ${median([...ms]).toFixed(2)} ms, max ${Math.max(...ms).toFixed(2)} ms`));
  return parts.length === 0 ? 'no apply seen' : parts.join('; ');
}

export async function workersDrills(dir: string, reps: number, log: (line: string) => void): Promise<void> {
  const ms = (v: number | null): string => (v === null ? 'never' : `${v} ms`);
  const failed = { failover: [] as number[], reload: [] as number[] };
  const all: number[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    const f = await failoverDrill('hotwarm', dir, { workers: WORKERS });
    failed.failover.push(f.failed);
    for (const list of f.applies.values()) all.push(...list);
    log(`failover ${rep}: ${f.requests} requests, ${f.failed} failed; kill → promoted ${ms(f.promotedMs)}, → warm's first request ${ms(f.warmFirstMs)}, → 85% ${ms(f.recoveryMs)}; standby requests while down ${f.standbyDuring}, after failback ${f.standbyAfter}`);
    log(`  req/s each second (kill at 3 s, restart at 9 s): ${f.timeline.join(' ')}`);
    log(`  snapshot applies: ${applied(f.applies)}`);
    const r = await reloadDrill('hotwarm', dir, { workers: WORKERS });
    if (r === null) continue;
    failed.reload.push(r.failed);
    for (const list of r.applies.values()) all.push(...list);
    log(`reload ${rep}: ${r.reloads} reloads (SIGHUP, 400 ms apart), ${r.requests} requests, ${r.failed} failed; snapshot applies: ${applied(r.applies)}`);
  }
  const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);
  log(`\nworkers: ${WORKERS}, ${reps} reps: failover drill ${sum(failed.failover)} failed (${failed.failover.join(', ')}); reload drill ${sum(failed.reload)} failed (${failed.reload.join(', ')}); ` +
    `snapshot applies seen: ${all.length}, median ${all.length > 0 ? median(all).toFixed(2) : '–'} ms, max ${all.length > 0 ? Math.max(...all).toFixed(2) : '–'} ms.`);
}
