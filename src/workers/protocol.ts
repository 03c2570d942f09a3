/**
 * The messages between the primary and its workers (SPEC §9), over node:cluster's IPC channel.
 * One rule shapes them: nothing per request. Decisions go down as versioned snapshots, passive
 * evidence comes up at once (failures are rare), counters come up in batches every
 * {@link STATS_INTERVAL_MS}. An IPC round trip costs ~50 µs on a 2-vCPU VM.
 */
import { availableParallelism } from 'node:os';
import type { Config, PoolConfig } from '../config/schema.js';
import type { PoolState } from '../core/failover-types.js';
import type { SeriesDelta } from '../control/tally.js';

/** How often a worker reports its counters, in-flight counts and process figures. */
export const STATS_INTERVAL_MS = 100;

/** Every decision of the primary, for every pool: a worker swaps it in whole. */
export interface Snapshot {
  /** Increases with every snapshot; a worker drops one not newer than what it has. */
  readonly seq: number;
  /** The primary's `performance.timeOrigin`: serving times are on its clock. */
  readonly origin: number;
  readonly pools: readonly { readonly name: string; readonly state: PoolState }[];
}

export interface BoundAddress {
  readonly listener: string;
  /** `host:port`. */
  readonly address: string;
}

export type ToWorker =
  /** `stickyKey`: base64 of the primary's random sticky key (every worker issues the same tokens). */
  | { readonly t: 'init'; readonly id: number; readonly gen: number; readonly config: Config; readonly snapshot: Snapshot; readonly stickyKey: string }
  | { readonly t: 'snapshot'; readonly snapshot: Snapshot }
  | { readonly t: 'streak'; readonly pool: string; readonly backend: string; readonly open: boolean }
  /** The primary has counted a failure this worker reported (a snapshot came first if it changed anything). */
  | { readonly t: 'verdict'; readonly pool: string; readonly backend: string }
  /**
   * A pool's member list changed outside a reload (a DNS answer changed): the primary's
   * discovery resolved it and checks the new members; the worker swaps the list in. The
   * snapshot that follows carries the members' states.
   */
  | { readonly t: 'members'; readonly pool: string; readonly config: PoolConfig }
  | { readonly t: 'prepare'; readonly gen: number; readonly config: Config }
  | { readonly t: 'commit'; readonly gen: number; readonly snapshot: Snapshot }
  | { readonly t: 'abort'; readonly gen: number }
  | { readonly t: 'shutdown' }
  /** Report now (a scrape of /metrics or /status wants the host as of now). */
  | { readonly t: 'report' }
  /** SIGUSR1 reached the primary: open the log file again by name (logrotate). */
  | { readonly t: 'reopen' };

export interface WorkerStats {
  readonly counts: readonly SeriesDelta[];
  /** `[pool, backend, in flight]` for every backend with work. */
  readonly inFlight: readonly (readonly [string, string, number])[];
  readonly connections: readonly (readonly [string, number])[];
  readonly requests: number;
  readonly rssBytes: number;
  /** user + system, in seconds, since the worker started. */
  readonly cpuSeconds: number;
  /** Mean lateness of the worker's report timer over the last second: its event-loop lag. */
  readonly loopLagSeconds: number;
}

export type FromWorker =
  /** The worker listens for messages (cluster's `online` comes before its module has run). */
  | { readonly t: 'hello' }
  | { readonly t: 'ready'; readonly addresses: readonly BoundAddress[] }
  | { readonly t: 'failed'; readonly error: string }
  | { readonly t: 'applied'; readonly seq: number }
  | { readonly t: 'evidence'; readonly pool: string; readonly backend: string; readonly key: string; readonly ok: boolean; readonly detail: string }
  | { readonly t: 'prepared'; readonly gen: number; readonly ok: boolean; readonly code: string; readonly errors: readonly string[]; readonly addresses: readonly BoundAddress[] }
  | { readonly t: 'stats'; readonly stats: WorkerStats }
  /** Its listeners are closed (the primary holds their sockets and refuses once every worker has said so); its drain begins. */
  | { readonly t: 'draining' }
  /** Its drain is over: everything finished (`drained`), or shutdown_timeout closed the rest. */
  | { readonly t: 'stopped'; readonly outcome: 'drained' | 'timeout' }
  | { readonly t: 'event'; readonly type: string; readonly details: Readonly<Record<string, unknown>> };

/**
 * The config a worker runs: `max_conns` split evenly over the workers (each takes
 * ⌈max_conns / N⌉, SPEC §9), since each balances over its own in-flight counts.
 */
export function workerConfig(config: Config, workers: number): Config {
  if (workers <= 1) return config;
  const pools = Object.fromEntries(
    Object.entries(config.pools).map(([name, pool]) => [
      name,
      { ...pool, backends: pool.backends.map((b) => (b.max_conns === 0 ? b : { ...b, max_conns: Math.ceil(b.max_conns / workers) })) },
    ]),
  );
  return { ...config, pools };
}

/** `workers: auto` is one per CPU this process may use; a number is itself (1 = a single process). */
export function workerCount(setting: Config['workers']): number {
  return setting === 'auto' ? Math.max(1, Math.min(256, availableParallelism())) : setting;
}

/**
 * What a worker runs as a pool's config: the member list the primary resolved (DNS names in
 * `address` at their answer, one backend per discovered address), with `discover` left out:
 * the primary owns discovery (SPEC §9, one brain), the workers never look names up.
 */
export function resolvedPool(config: PoolConfig): PoolConfig {
  if (config.discover === undefined) return config;
  const { discover: _discover, ...rest } = config;
  return rest;
}

/** `config` with every pool as the primary resolved it (`pools`: the running pool configs by name). */
export function resolvedConfig(config: Config, pools: ReadonlyMap<string, PoolConfig>): Config {
  const resolved = Object.fromEntries(Object.keys(config.pools).map((name) => [name, resolvedPool(pools.get(name) ?? (config.pools[name] as PoolConfig))]));
  const { resolvers: _resolvers, ...rest } = config;
  return { ...rest, pools: resolved };
}
