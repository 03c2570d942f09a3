/**
 * The pools' side of a reload (SPEC §6), one code path for both transports (SPEC §9): a single
 * process (proxy.ts) and the primary of workers (workers/primary.ts) run it alike. Which pools
 * the new config adds, keeps and removes; the added ones' first round of checks and the kept
 * ones' prepared changes (nothing observed yet); then the swap, or the rollback. Each caller
 * adds its own side in between: listeners bound in this process, or bound by every worker.
 */
import type { ReloadPlan } from '../config/diff.js';
import type { Config, PoolConfig } from '../config/schema.js';
import type { PoolReload, PoolRuntime } from './pool-runtime.js';
import type { ProbeResult } from './probes.js';

/** The pools a reload will run, before anything is checked. */
export interface PlannedPools {
  /** New pools, built and not started. */
  readonly added: readonly PoolRuntime[];
  /** Kept pools whose config changed, with the config each will run. */
  readonly updated: readonly { readonly pool: PoolRuntime; readonly config: PoolConfig }[];
  /** Every pool after the swap, by name. */
  readonly pools: ReadonlyMap<string, PoolRuntime>;
  /** Every pool's config after the swap (what workers are sent), by name. */
  readonly configs: ReadonlyMap<string, PoolConfig>;
}

/** The pools of a reload, checked and prepared: what the swap commits or the rollback throws away. */
export interface PreparedPools {
  readonly added: readonly { readonly pool: PoolRuntime; readonly results: readonly ProbeResult[] }[];
  readonly updated: readonly { readonly pool: PoolRuntime; readonly reload: PoolReload }[];
  readonly pools: ReadonlyMap<string, PoolRuntime>;
}

/**
 * `expand` turns a pool's config into the one it runs (its DNS answers in a process that looks
 * names up; as it is in a worker), `create` builds a new pool.
 */
export function planPools(
  current: ReadonlyMap<string, PoolRuntime>,
  next: Config,
  plan: ReloadPlan,
  expand: (name: string, config: PoolConfig) => PoolConfig,
  create: (name: string, config: PoolConfig) => PoolRuntime,
): PlannedPools {
  const expanded = (name: string): PoolConfig => expand(name, next.pools[name] as PoolConfig);
  const added = plan.pools.added.map((name) => create(name, expanded(name)));
  const updated = plan.pools.updated.map(({ name }) => ({ pool: current.get(name) as PoolRuntime, config: expanded(name) }));
  const pools = new Map([...current].filter(([name]) => Object.hasOwn(next.pools, name)));
  for (const pool of added) pools.set(pool.name, pool);
  const configs = new Map([...pools].map(([name, pool]) => [name, pool.config]));
  for (const { pool, config } of updated) configs.set(pool.name, config);
  return { added, updated, pools, configs };
}

/** The added pools' first round of checks and the updated ones' new backends, checked; nothing swapped. */
export async function preparePools(planned: PlannedPools): Promise<PreparedPools> {
  const [rounds, reloads] = await Promise.all([
    Promise.all(planned.added.map((pool) => pool.firstRound())),
    Promise.all(planned.updated.map(({ pool, config }) => pool.prepareReload(config))),
  ]);
  return {
    added: planned.added.map((pool, i) => ({ pool, results: rounds[i] as ProbeResult[] })),
    updated: planned.updated.map(({ pool }, i) => ({ pool, reload: reloads[i] as PoolReload })),
    pools: planned.pools,
  };
}

/**
 * The rollback: prepared changes thrown away, added pools stopped (the running pools never saw
 * them). Also for a plan given up before its checks: its added pools, no changes prepared.
 */
export function abandonPools(prepared: { readonly added: readonly { readonly pool: PoolRuntime }[]; readonly updated: PreparedPools['updated'] }): void {
  for (const { pool, reload } of prepared.updated) pool.discard(reload);
  for (const { pool } of prepared.added) {
    pool.stop();
    pool.closeConnections('reload rolled back');
  }
}

/**
 * The swap: added pools begin with their round's results, updated ones take their new
 * backends, removed ones retire (finishing their work, held in `retired` until then).
 * Returns the pools to route to from now on.
 */
export function commitPools(prepared: PreparedPools, plan: ReloadPlan, current: ReadonlyMap<string, PoolRuntime>, retired: Set<PoolRuntime>): Map<string, PoolRuntime> {
  for (const { pool, results } of prepared.added) pool.begin(results);
  for (const { pool, reload } of prepared.updated) pool.reconfigure(reload);
  for (const name of plan.pools.removed) {
    const pool = current.get(name) as PoolRuntime;
    retired.add(pool);
    void pool.retire().then(() => retired.delete(pool));
  }
  return new Map(prepared.pools);
}
