/**
 * The pools' side of a reload, without sockets: which pools a new config adds, keeps and
 * removes, what each is sent, and what the swap and the rollback do to them. One process and
 * the primary of workers run this same code (pool-set-reload.ts).
 */
import t from 'tap';
import { diffConfig } from '../../../src/config/diff.js';
import { parseConfig } from '../../../src/config/load.js';
import type { Config, PoolConfig } from '../../../src/config/schema.js';
import type { PoolRuntime } from '../../../src/upstream/pool-runtime.js';
import { abandonPools, commitPools, planPools, preparePools } from '../../../src/upstream/pool-set-reload.js';

function yaml(pools: string): string {
  return `listeners: [{ name: web, listen: "127.0.0.1:0", pool: kept }]\npools:\n${pools}`;
}

const OLD = yaml(`
  kept: { backends: [{ name: k, address: "127.0.0.1:1" }] }
  changed: { backends: [{ name: c, address: "127.0.0.1:2" }] }
  gone: { backends: [{ name: g, address: "127.0.0.1:3" }] }
`);
const NEXT = yaml(`
  kept: { backends: [{ name: k, address: "127.0.0.1:1" }] }
  changed: { backends: [{ name: c, address: "127.0.0.1:2" }, { name: c2, address: "127.0.0.1:4" }] }
  fresh: { backends: [{ name: f, address: "127.0.0.1:5" }] }
`);

/** A pool that records what is done to it; `retire` resolves when the test says so. */
class FakePool {
  readonly calls: string[] = [];
  finishRetiring: () => void = () => undefined;
  constructor(
    readonly name: string,
    readonly config: PoolConfig,
  ) {}
  firstRound(): Promise<string[]> {
    this.calls.push('firstRound');
    return Promise.resolve([`round of ${this.name}`]);
  }
  prepareReload(config: PoolConfig): Promise<{ config: PoolConfig }> {
    this.calls.push(`prepareReload ${config.backends.map((b) => b.name).join(',')}`);
    return Promise.resolve({ config });
  }
  begin(results: readonly string[]): void {
    this.calls.push(`begin ${results.join(',')}`);
  }
  reconfigure(): void {
    this.calls.push('reconfigure');
  }
  discard(): void {
    this.calls.push('discard');
  }
  stop(): void {
    this.calls.push('stop');
  }
  closeConnections(reason: string): void {
    this.calls.push(`closeConnections ${reason}`);
  }
  retire(): Promise<void> {
    this.calls.push('retire');
    return new Promise((resolve) => (this.finishRetiring = resolve));
  }
}

async function setup(): Promise<{ old: Config; next: Config; current: Map<string, PoolRuntime>; fakes: Map<string, FakePool> }> {
  const old = await parseConfig(OLD, 'proxy.yaml', { env: {} });
  const next = await parseConfig(NEXT, 'proxy.yaml', { env: {} });
  const fakes = new Map(Object.entries(old.pools).map(([name, config]) => [name, new FakePool(name, config)]));
  return { old, next, current: new Map([...fakes].map(([name, fake]) => [name, fake as unknown as PoolRuntime])), fakes };
}

/** `expand` marks the configs it returns, as DNS answers would change them. */
const expand = (_name: string, config: PoolConfig): PoolConfig => ({ ...config, backends: config.backends.map((b) => ({ ...b, name: `${b.name}*` })) });

t.test('plan: added pools built from the expanded config, kept ones kept, removed ones left out', async (t) => {
  const { old, next, current, fakes } = await setup();
  const built: FakePool[] = [];
  const planned = planPools(current, next, diffConfig(old, next), expand, (name, config) => {
    const pool = new FakePool(name, config);
    built.push(pool);
    return pool as unknown as PoolRuntime;
  });
  t.strictSame(built.map((p) => p.name), ['fresh'], 'only the added pool is built');
  t.strictSame(built[0]?.config.backends.map((b) => b.name), ['f*'], 'with its expanded config');
  t.strictSame([...planned.pools.keys()].sort(), ['changed', 'fresh', 'kept']);
  t.equal(planned.pools.get('kept'), current.get('kept'), 'a kept pool keeps its runtime (and its state)');
  t.strictSame(planned.updated.map((u) => u.pool.name), ['changed']);
  t.strictSame(planned.configs.get('changed')?.backends.map((b) => b.name), ['c*', 'c2*'], 'an updated pool is sent its new, expanded config');
  t.equal(planned.configs.get('kept'), current.get('kept')?.config, 'an unchanged pool is sent the config it runs');
  for (const fake of fakes.values()) t.strictSame(fake.calls, [], `${fake.name}: nothing done to a running pool while planning`);
});

t.test('prepare then commit: checks, then begin, reconfigure and retire; retired until retiring ends', async (t) => {
  const { old, next, current, fakes } = await setup();
  const plan = diffConfig(old, next);
  let fresh: FakePool | undefined;
  const planned = planPools(current, next, plan, expand, (name, config) => (fresh = new FakePool(name, config)) as unknown as PoolRuntime);
  const prepared = await preparePools(planned);
  t.strictSame(fresh?.calls, ['firstRound']);
  t.strictSame(fakes.get('changed')?.calls, ['prepareReload c*,c2*']);
  const retired = new Set<PoolRuntime>();
  const pools = commitPools(prepared, plan, current, retired);
  t.strictSame([...pools.keys()].sort(), ['changed', 'fresh', 'kept']);
  t.strictSame(fresh?.calls, ['firstRound', 'begin round of fresh'], 'the added pool begins with its own round');
  t.strictSame(fakes.get('changed')?.calls, ['prepareReload c*,c2*', 'reconfigure']);
  t.strictSame(fakes.get('gone')?.calls, ['retire']);
  t.strictSame(fakes.get('kept')?.calls, [], 'an unchanged pool is not touched');
  t.ok(retired.has(current.get('gone') as PoolRuntime), 'the removed pool is held while it finishes its work');
  fakes.get('gone')?.finishRetiring();
  await new Promise((r) => setImmediate(r));
  t.equal(retired.size, 0, 'and let go once it has');
});

t.test('prepare then abandon: prepared changes discarded, added pools stopped, nothing else touched', async (t) => {
  const { old, next, current, fakes } = await setup();
  let fresh: FakePool | undefined;
  const planned = planPools(current, next, diffConfig(old, next), expand, (name, config) => (fresh = new FakePool(name, config)) as unknown as PoolRuntime);
  abandonPools(await preparePools(planned));
  t.strictSame(fresh?.calls, ['firstRound', 'stop', 'closeConnections reload rolled back']);
  t.strictSame(fakes.get('changed')?.calls, ['prepareReload c*,c2*', 'discard']);
  t.strictSame(fakes.get('gone')?.calls, [], 'a pool the reload would have removed keeps running');
  t.strictSame(fakes.get('kept')?.calls, []);
});
