/**
 * The host as one proxy, assembled from what the workers last reported: in-flight counts per
 * backend, open connections per listener, each worker's status and gauges, and a fresh report
 * on demand (a read of /metrics or /status).
 */
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/schema.js';
import type { WorkerStatus } from '../control/admin-types.js';
import type { ListenerView } from '../control/host.js';
import type { WorkerMetricsView } from '../control/metrics.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import type { Slot } from './slot.js';

/** How long a read of /metrics or /status waits for the workers' fresh figures. */
const REFRESH_TIMEOUT_MS = 200;

/** The host-wide in-flight count of every backend, as the workers last reported (`/status`, metrics). */
export function sumInFlight(pools: ReadonlyMap<string, PoolRuntime>, slots: readonly Slot[]): void {
  for (const pool of pools.values()) for (const b of pool.backends) b.inFlight = 0;
  for (const slot of slots) {
    for (const [poolName, name, n] of slot.stats?.inFlight ?? []) {
      const backend = pools.get(poolName)?.backends.find((b) => b.name === name);
      if (backend !== undefined) backend.inFlight += n;
    }
  }
}

/** The listeners as the workers bound them; connections summed over the workers. */
export function listenerViews(config: Config, slots: readonly Slot[], addresses: ReadonlyMap<string, string>): Map<string, ListenerView> {
  const views = new Map<string, ListenerView>();
  for (const l of config.listeners) {
    let open = 0;
    for (const s of slots) for (const [name, n] of s.stats?.connections ?? []) if (name === l.name) open += n;
    const address = addresses.get(l.name) ?? null;
    views.set(l.name, { name: l.name, config: l, openConnections: open, address: () => parseAddress(address) });
  }
  return views;
}

export function workerStatuses(slots: readonly Slot[]): WorkerStatus[] {
  return slots.map((s) => ({
    id: s.id,
    pid: s.worker?.process.pid ?? null,
    up_since: s.upSince.toISOString(),
    state: s.state,
    rss_bytes: s.stats?.rssBytes ?? 0,
    in_flight: s.inFlight,
    requests: s.requestsBefore + (s.stats?.requests ?? 0),
    restarts: s.restarts,
    last_apply_ms: s.lastApplyMs,
  }));
}

export function workerGauges(slots: readonly Slot[]): WorkerMetricsView[] {
  return slots.map((s) => ({
    id: s.id,
    rssBytes: s.stats?.rssBytes ?? 0,
    cpuSeconds: s.stats?.cpuSeconds ?? 0,
    loopLagSeconds: s.stats?.loopLagSeconds ?? 0,
    inFlight: s.inFlight,
    restarts: s.restarts,
  }));
}

/** Asks every running worker for its counters and in-flight counts now; resolves when all answered (or 200 ms). */
export async function refreshReports(slots: readonly Slot[]): Promise<void> {
  await Promise.all(
    slots
      .filter((s) => s.state === 'running')
      .map((slot) => {
        const answer = slot.next('stats', REFRESH_TIMEOUT_MS);
        slot.send({ t: 'report' });
        return answer;
      }),
  );
}

/** `host:port` (`[v6]:port`) as a worker reported it; null when not listening. */
export function parseAddress(address: string | null): AddressInfo | null {
  if (address === null || address === '') return null;
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
  return { address: host, port: Number(address.slice(colon + 1)), family: host.includes(':') ? 'IPv6' : 'IPv4' };
}
