/**
 * The primary's decisions, out to the workers: every state change as one versioned
 * {@link Snapshot} (coalesced per tick), a pool's new member list before the snapshot that names
 * it, a starting worker's config and first snapshot, and what a worker that became ready missed.
 */
import type { Config, PoolConfig } from '../config/schema.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { resolvedConfig, resolvedPool, workerConfig, type FromWorker, type Snapshot } from './protocol.js';
import type { Slot } from './slot.js';

/** A worker's reply to a reload's prepare step: new listeners are bound, nothing checked. */
const WORKER_PREPARE_TIMEOUT_MS = 30_000;

/** What a worker was given at init: a member list or a decision that changes before it is ready reaches it then. */
export interface InitSent {
  readonly lists: ReadonlyMap<string, PoolConfig>;
  readonly seq: number;
}

export interface FanOutOptions {
  readonly slots: readonly Slot[];
  readonly pools: () => ReadonlyMap<string, PoolRuntime>;
  readonly config: () => Config;
  readonly gen: () => number;
  readonly stopped: () => boolean;
  /** Drawn once per start and handed to every worker: sticky pools without secret_env share it. */
  readonly stickyKey: string;
}

export class DecisionFanOut {
  readonly #options: FanOutOptions;
  readonly #slots: readonly Slot[];
  #seq = 0;
  #publishQueued = false;
  /** The seq of the newest snapshot sent to the running workers. */
  #lastSent = 0;
  /** seq → when it was published (`performance.now()`), for the apply latency in `/status`. */
  readonly #published = new Map<number, number>();

  constructor(options: FanOutOptions) {
    this.#options = options;
    this.#slots = options.slots;
  }

  /** A config as a worker takes it: pools with these member lists resolved, `max_conns` split. */
  configFor(config: Config, lists: ReadonlyMap<string, PoolConfig>): Config {
    return workerConfig(resolvedConfig(config, lists), this.#slots.length);
  }

  /** A worker said hello: its config (the pools' member lists as they are now) and the current snapshot. */
  init(slot: Slot): InitSent {
    const snapshot = this.#snapshot();
    const lists = this.#lists();
    slot.send({ t: 'init', id: slot.id, gen: this.#options.gen(), config: this.configFor(this.#options.config(), lists), snapshot, stickyKey: this.#options.stickyKey });
    return { lists, seq: snapshot.seq };
  }

  /** A worker now ready: what changed since its init (snapshots go to running workers only) is sent now. */
  catchUp(slot: Slot, sent: InitSent | null): void {
    if (sent === null) return;
    for (const pool of this.#options.pools().values()) {
      const given = sent.lists.get(pool.name);
      if (given !== undefined && given !== pool.config && slot.gen === this.#options.gen()) this.sendMembers(pool, slot);
    }
    if (this.#seq > sent.seq) slot.send({ t: 'snapshot', snapshot: this.#snapshot() });
  }

  /**
   * A pool took a new member list from DNS: every worker gets it now, before the snapshot its
   * transition queued (a microtask), so no snapshot names a member a worker does not have.
   * A worker still starting took its list with its config when it was sent; one sent earlier is
   * brought up to date when it is ready ({@link catchUp}).
   */
  sendMembers(pool: PoolRuntime, only?: Slot): void {
    const config = resolvedPool(workerConfig({ ...this.#options.config(), pools: { [pool.name]: pool.config } }, this.#slots.length).pools[pool.name] as PoolConfig);
    for (const slot of only === undefined ? this.#slots : [only]) if (slot.state === 'running') slot.send({ t: 'members', pool: pool.name, config });
  }

  /** Transitions within one tick (a reload, a check round) go out as one snapshot. */
  queuePublish(): void {
    if (this.#publishQueued) return;
    this.#publishQueued = true;
    queueMicrotask(() => {
      this.#publishQueued = false;
      if (this.#options.stopped()) return;
      const snapshot = this.#snapshot();
      this.#lastSent = snapshot.seq;
      for (const slot of this.#slots) if (slot.state === 'running') slot.send({ t: 'snapshot', snapshot });
    });
  }

  /**
   * A reload's prepare step: these workers bind what `config` (generation `gen`) adds. Resolves
   * with each one's reply, null for one that died or did not answer in time.
   */
  prepare(slots: readonly Slot[], gen: number, config: Config): Promise<(Extract<FromWorker, { t: 'prepared' }> | null)[]> {
    return Promise.all(
      slots.map((slot) => {
        const reply = slot.next('prepared', WORKER_PREPARE_TIMEOUT_MS);
        slot.send({ t: 'prepare', gen, config });
        return reply;
      }),
    );
  }

  /** A reload's swap: these workers commit generation `gen` with the snapshot made now. */
  commit(slots: readonly Slot[], gen: number): void {
    const snapshot = this.#snapshot();
    this.#lastSent = snapshot.seq;
    for (const slot of slots) {
      slot.send({ t: 'commit', gen, snapshot });
      slot.gen = gen;
    }
  }

  /** A worker applied snapshot `seq`: how long that took since it was published. */
  applied(slot: Slot, seq: number): void {
    slot.appliedSeq = Math.max(slot.appliedSeq, seq);
    const at = this.#published.get(seq);
    if (at !== undefined) slot.lastApplyMs = Math.round((performance.now() - at) * 1000) / 1000;
  }

  /** Resolves once every running worker has applied the newest snapshot (or `timeoutMs` passed). */
  async settled(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    // A snapshot queued in this tick goes out first.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.#slots.some((s) => s.state === 'running' && s.appliedSeq < this.#lastSent) && performance.now() < deadline) {
      await new Promise<void>((resolve) => setTimeout(resolve, 2));
    }
  }

  #lists(): Map<string, PoolConfig> {
    return new Map([...this.#options.pools()].map(([name, pool]) => [name, pool.config]));
  }

  #snapshot(): Snapshot {
    const seq = ++this.#seq;
    this.#published.set(seq, performance.now());
    // Only the latest few are needed for the apply latency.
    if (this.#published.size > 64) this.#published.delete(seq - 64);
    return { seq, origin: performance.timeOrigin, pools: [...this.#options.pools().values()].map((p) => ({ name: p.name, state: p.core.state })) };
  }
}
