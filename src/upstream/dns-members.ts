/**
 * Pools' member lists as DNS makes them (SPEC §12), for whichever process owns the decisions:
 * one process, or the primary of `workers: N` (SPEC §9: the workers never look names up; they
 * take the lists the primary resolved).
 *
 * Reloads and DNS updates both change member lists in two steps (prepare, then swap): they take
 * turns ({@link DnsMembers.take}), so neither swaps in a list built on members the other has
 * replaced. A changed answer goes through the pool's reload path — new addresses checked before
 * they serve, vanished ones drained like backends a reload removed.
 */
import type { Config, PoolConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { Clock } from './clock.js';
import type { EventSink } from './contracts.js';
import { Discovery } from './discovery.js';
import type { PoolRuntime } from './pool-runtime.js';

export interface DnsMembersDeps {
  readonly events: EventSink;
  readonly logger: Logger;
  readonly clock: Clock;
  /** The running pools and config, read when an answer arrives. */
  readonly pools: () => ReadonlyMap<string, PoolRuntime>;
  readonly config: () => Config;
  /** Whether member lists may change now (not while starting or stopping). */
  readonly running: () => boolean;
  /** A pool took a new member list from DNS (the primary tells its workers). */
  readonly onFollowed?: (pool: PoolRuntime) => void;
}

export class DnsMembers {
  readonly #deps: DnsMembersDeps;
  readonly #discovery: Discovery;
  #turns: Promise<void> = Promise.resolve();

  constructor(deps: DnsMembersDeps) {
    this.#deps = deps;
    this.#discovery = new Discovery({ events: deps.events, logger: deps.logger, clock: deps.clock, onLookup: (pool) => void this.#follow(pool) });
  }

  /** Looks up every name of `config` not known yet (startup, a reload adding names). */
  resolveNew(config: Config): Promise<void> {
    return this.#discovery.resolveNew(config);
  }

  /** Follows `config`'s names and intervals (at start and after each reload). */
  configure(config: Config): void {
    this.#discovery.configure(config);
  }

  /** Pool `name`'s member list with the answers known now (discovery.ts `expand`). */
  expand(name: string, config: PoolConfig): PoolConfig {
    return this.#discovery.expand(name, config);
  }

  stop(): void {
    this.#discovery.stop();
  }

  /** Waits for the pools' member lists to be free; the returned function frees them again. */
  async take(): Promise<() => void> {
    let release = (): void => undefined;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const before = this.#turns;
    this.#turns = before.then(() => mine);
    await before;
    return release;
  }

  /** A pool's names were looked up again: a member list that differs goes through the reload path. */
  async #follow(name: string): Promise<void> {
    const release = await this.take();
    try {
      const pool = this.#deps.pools().get(name);
      const config = this.#deps.config().pools[name];
      if (!this.#deps.running() || pool === undefined || config === undefined) return;
      const next = this.#discovery.expand(name, config);
      if (sameMembers(pool.config.backends, next.backends)) return;
      const reload = await pool.prepareReload(next);
      if (this.#deps.running() && this.#deps.pools().get(name) === pool && this.#deps.config().pools[name] === config) {
        pool.reconfigure(reload);
        this.#deps.onFollowed?.(pool);
      } else pool.discard(reload);
    } finally {
      release();
    }
  }
}

/** Same backends in the same order with the same settings: nothing for a DNS update to apply. */
function sameMembers(a: PoolConfig['backends'], b: PoolConfig['backends']): boolean {
  return (
    a.length === b.length &&
    a.every((x, i) => {
      const y = b[i];
      return y !== undefined && x.name === y.name && x.address.host === y.address.host && x.address.port === y.address.port && x.role === y.role && x.weight === y.weight && x.max_conns === y.max_conns;
    })
  );
}
