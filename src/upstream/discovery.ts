/**
 * Backends from DNS (SPEC §12): `discover` entries (A/AAAA with a port, or SRV) and DNS names
 * in a listed backend's `address`, looked up at start and every `resolve_interval`.
 *
 * This module only looks names up and remembers the answers. What a pool's member list is —
 * the listed backends with their names resolved, plus one backend per discovered address — is
 * {@link Discovery.expand}; the proxy applies a changed list through the pool's reload path
 * (prepareReload → reconfigure), so a new address is checked before it serves and a vanished
 * one drains exactly like a backend a reload removed.
 *
 * Answers (HAProxy `resolvers`, Envoy STRICT_DNS): a server failure or timeout keeps the last
 * answer; NXDOMAIN or an empty answer empties it only after {@link EMPTY_LOOKUPS_TO_DRAIN}
 * lookups in a row say so (a name briefly missing while a service is redeployed does not drain
 * a pool). Every failed lookup is a `discovery_failed` event and is counted.
 */
import { Resolver, lookup } from 'node:dns/promises';
import type { BackendConfig, Config, PoolConfig } from '../config/schema.js';
import { isDnsName, isSrvName } from '../config/dns-names.js';
import type { Clock, Scheduled } from './clock.js';
import type { EventSink } from './contracts.js';
import type { Logger } from '../log.js';

/** At most this many addresses per name are used (the lowest, in address order, so the choice is stable). */
export const MAX_ADDRESSES_PER_NAME = 256;
/** Empty answers / NXDOMAIN in a row before a name's addresses drain. */
export const EMPTY_LOOKUPS_TO_DRAIN = 3;
/** Per query and server, and tries per server (c-ares). */
const LOOKUP_TIMEOUT_MS = 1_000;
const LOOKUP_TRIES = 2;
/** getaddrinfo (names in `address` without `resolvers`) has no timeout of its own. */
const SYSTEM_LOOKUP_TIMEOUT_MS = 5_000;

/** Why a lookup gave no addresses; the `result` label of `hotwarm_discovery_failures_total`. */
export const LOOKUP_FAILURES = ['nxdomain', 'empty', 'timeout', 'servfail', 'refused', 'error'] as const;
export type LookupFailure = (typeof LOOKUP_FAILURES)[number];

/** One address of an answer: SRV answers carry their port and weight. */
interface Target {
  readonly host: string;
  readonly port: number | null;
  readonly weight: number | null;
}

type Outcome = { readonly ok: true; readonly targets: readonly Target[] } | { readonly ok: false; readonly failure: LookupFailure; readonly code: string };

type QueryKind = 'srv' | 'a' | 'address';

interface Query {
  readonly kind: QueryKind;
  readonly name: string;
}

interface Answer {
  targets: readonly Target[];
  /** NXDOMAIN / empty answers in a row. */
  empty: number;
}

export interface DiscoveryDeps {
  readonly events: EventSink;
  readonly logger: Logger;
  /** A pool's answers were looked up again (they may or may not have changed). */
  readonly onLookup: (pool: string) => void;
  /** Whose timers run the re-resolve every `resolve_interval`. */
  readonly clock: Clock;
}

class LookupError extends Error {
  readonly failure: LookupFailure;
  readonly code: string;

  constructor(failure: LookupFailure, code: string) {
    super(code);
    this.failure = failure;
    this.code = code;
  }
}

export class Discovery {
  readonly #deps: DiscoveryDeps;
  readonly #logger: Logger;
  #resolver = new Resolver({ timeout: LOOKUP_TIMEOUT_MS, tries: LOOKUP_TRIES });
  #servers: readonly string[] | null = null;
  /** `pool \0 kind \0 name` → the answer in use. */
  readonly #answers = new Map<string, Answer>();
  readonly #timers = new Map<string, Scheduled>();
  /** The interval each pool's running timer was set with. */
  readonly #intervals = new Map<string, number>();
  #config: Config | null = null;
  #stopped = false;

  constructor(deps: DiscoveryDeps) {
    this.#deps = deps;
    this.#logger = deps.logger.child({ component: 'discovery' });
  }

  /** Follows `config` (at start and after each reload): resolvers, names, and each pool's interval. */
  configure(config: Config): void {
    this.#config = config;
    this.#useServers(config.resolvers ?? null);
    const used = new Set<string>();
    for (const [pool, poolConfig] of Object.entries(config.pools)) for (const q of queries(poolConfig)) used.add(key(pool, q));
    for (const k of this.#answers.keys()) if (!used.has(k)) this.#answers.delete(k);
    // A pool keeps its running timer when its interval stays: frequent reloads must not
    // postpone its lookups again and again.
    for (const [pool, timer] of this.#timers) {
      if (this.#stopped || this.#intervals.get(pool) !== config.pools[pool]?.resolve_interval || queries(config.pools[pool] as PoolConfig).length === 0) {
        timer.cancel();
        this.#timers.delete(pool);
      }
    }
    if (this.#stopped) return;
    for (const [pool, poolConfig] of Object.entries(config.pools)) {
      if (queries(poolConfig).length > 0 && !this.#timers.has(pool)) this.#schedule(pool, poolConfig.resolve_interval);
    }
  }

  /** Looks up, once, every name of `config` that has no answer yet (startup, a reload adding names). */
  async resolveNew(config: Config): Promise<void> {
    this.#useServers(config.resolvers ?? null);
    const pending: Promise<void>[] = [];
    for (const [pool, poolConfig] of Object.entries(config.pools)) {
      for (const q of queries(poolConfig)) if (!this.#answers.has(key(pool, q))) pending.push(this.#lookupInto(pool, q));
    }
    await Promise.all(pending);
  }

  /**
   * The member list of `pool` as it runs: listed backends with a DNS name in `address` at the
   * first address of their answer (as written while there is none), then one backend per
   * discovered address, named `<dns>/<ip>:<port>`.
   */
  expand(pool: string, config: PoolConfig): PoolConfig {
    if (queries(config).length === 0) return config;
    const backends: BackendConfig[] = config.backends.map((b) => {
      if (!isDnsName(b.address.host)) return b;
      const first = this.#answers.get(key(pool, { kind: 'address', name: b.address.host }))?.targets[0];
      return first === undefined ? b : { ...b, address: { host: first.host, port: b.address.port } };
    });
    const names = new Set(backends.map((b) => b.name));
    for (const entry of config.discover ?? []) {
      const srv = isSrvName(entry.dns);
      for (const target of this.#answers.get(key(pool, { kind: srv ? 'srv' : 'a', name: entry.dns }))?.targets ?? []) {
        const port = target.port ?? entry.port ?? 0;
        const name = `${entry.dns}/${target.host.includes(':') ? `[${target.host}]` : target.host}:${port}`;
        if (names.has(name)) continue;
        names.add(name);
        const weight = srv ? Math.max(1, Math.min(256, target.weight ?? 1)) : (entry.weight ?? 1);
        backends.push({ name, address: { host: target.host, port }, weight, max_conns: entry.max_conns, role: entry.role });
      }
    }
    return Object.freeze({ ...config, backends: Object.freeze(backends) });
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) timer.cancel();
    this.#timers.clear();
  }

  #schedule(pool: string, intervalMs: number): void {
    this.#intervals.set(pool, intervalMs);
    const timer = this.#deps.clock.schedule(
      intervalMs,
      () => {
        void this.#refresh(pool).finally(() => {
          // Reconfigured or stopped meanwhile: the new config has its own timer (or none).
          if (this.#timers.get(pool) !== timer || this.#stopped) return;
          this.#schedule(pool, intervalMs);
        });
      },
      true,
    );
    this.#timers.set(pool, timer);
  }

  async #refresh(pool: string): Promise<void> {
    const config = this.#config?.pools[pool];
    if (config === undefined) return;
    await Promise.all(queries(config).map((q) => this.#lookupInto(pool, q)));
    if (!this.#stopped && this.#config?.pools[pool] === config) this.#deps.onLookup(pool);
  }

  async #lookupInto(pool: string, query: Query): Promise<void> {
    const outcome = await this.#lookup(query);
    const k = key(pool, query);
    const answer = this.#answers.get(k) ?? { targets: [], empty: 0 };
    this.#answers.set(k, answer);
    if (outcome.ok) {
      answer.empty = 0;
      answer.targets = this.#capped(query, outcome.targets);
      return;
    }
    let kept = answer.targets.length;
    if (outcome.failure === 'nxdomain' || outcome.failure === 'empty') {
      answer.empty++;
      if (answer.empty >= EMPTY_LOOKUPS_TO_DRAIN) {
        answer.targets = [];
        kept = 0;
      }
    }
    this.#deps.events.emit('discovery_failed', {
      pool,
      dns: query.name,
      query: query.kind,
      result: outcome.failure,
      code: outcome.code,
      // What the pool keeps using: the last answer, or nothing once it has drained.
      kept_addresses: kept,
      ...(outcome.failure === 'nxdomain' || outcome.failure === 'empty' ? { empty_in_a_row: answer.empty } : {}),
    });
  }

  /**
   * Discovered answers sorted by address (DNS servers rotate their order) and cut at the cap.
   * A name in `address` keeps the answer's order: its first address is the one used.
   */
  #capped(query: Query, targets: readonly Target[]): readonly Target[] {
    if (query.kind === 'address') return targets;
    const sorted = [...targets].sort((a, b) => compare(a.host, b.host) || (a.port ?? 0) - (b.port ?? 0));
    if (sorted.length <= MAX_ADDRESSES_PER_NAME) return sorted;
    this.#logger.warn({ dns: query.name, addresses: sorted.length, used: MAX_ADDRESSES_PER_NAME }, 'DNS answer has more addresses than are used');
    return sorted.slice(0, MAX_ADDRESSES_PER_NAME);
  }

  #useServers(servers: readonly string[] | null): void {
    if (sameList(servers, this.#servers)) return;
    this.#servers = servers;
    this.#resolver = new Resolver({ timeout: LOOKUP_TIMEOUT_MS, tries: LOOKUP_TRIES });
    if (servers !== null) this.#resolver.setServers([...servers]);
  }

  async #lookup(query: Query): Promise<Outcome> {
    try {
      switch (query.kind) {
        case 'a':
          return { ok: true, targets: await this.#addresses(query.name) };
        case 'address':
          return { ok: true, targets: this.#servers === null ? await systemLookup(query.name) : await this.#addresses(query.name) };
        case 'srv':
          return { ok: true, targets: await this.#srv(query.name) };
      }
    } catch (err) {
      const failure = err instanceof LookupError ? err : asLookupError(err);
      return { ok: false, failure: failure.failure, code: failure.code };
    }
  }

  /** A and AAAA together: an error on one is fine when the other answers. */
  async #addresses(name: string): Promise<Target[]> {
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(name), this.#resolver.resolve6(name)]);
    const hosts = [...(v4.status === 'fulfilled' ? v4.value : []), ...(v6.status === 'fulfilled' ? v6.value : [])];
    if (hosts.length > 0) return hosts.map((host) => ({ host, port: null, weight: null }));
    const errors = [v4, v6].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => asLookupError(r.reason));
    // A server failure on either family is not "the name has no addresses".
    const serious = errors.find((e) => e.failure !== 'nxdomain' && e.failure !== 'empty');
    if (serious !== undefined) throw serious;
    if (errors.some((e) => e.failure === 'nxdomain')) throw new LookupError('nxdomain', 'ENOTFOUND');
    throw new LookupError('empty', 'ENODATA');
  }

  async #srv(name: string): Promise<Target[]> {
    const records = await this.#resolver.resolveSrv(name);
    if (records.length === 0) throw new LookupError('empty', 'ENODATA');
    const resolved = await Promise.all(
      records.map(async (r) => {
        const hosts = isDnsName(r.name) ? await this.#addresses(r.name).catch(emptyOnMissing) : [{ host: r.name, port: null, weight: null }];
        return hosts.map((h) => ({ host: h.host, port: r.port, weight: r.weight }));
      }),
    );
    const targets = resolved.flat();
    if (targets.length === 0) throw new LookupError('empty', 'ENODATA');
    return targets;
  }
}

/** An SRV target that does not resolve is left out; a server failure fails the whole lookup. */
function emptyOnMissing(err: unknown): Target[] {
  const failure = asLookupError(err);
  if (failure.failure === 'nxdomain' || failure.failure === 'empty') return [];
  throw failure;
}

/** getaddrinfo: /etc/hosts and the system's resolvers, as a connect would see the name. */
async function systemLookup(name: string): Promise<Target[]> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new LookupError('timeout', 'ETIMEOUT')), SYSTEM_LOOKUP_TIMEOUT_MS);
  });
  try {
    const answers = await Promise.race([lookup(name, { all: true }), timeout]);
    if (answers.length === 0) throw new LookupError('empty', 'ENODATA');
    return answers.map((a) => ({ host: a.address, port: null, weight: null }));
  } finally {
    clearTimeout(timer);
  }
}

function asLookupError(err: unknown): LookupError {
  if (err instanceof LookupError) return err;
  const code = String((err as { code?: unknown } | null)?.code ?? 'ERROR');
  const failure: LookupFailure =
    code === 'ENOTFOUND' ? 'nxdomain'
    : code === 'ENODATA' ? 'empty'
    : code === 'ETIMEOUT' || code === 'EAI_AGAIN' ? 'timeout'
    : code === 'ESERVFAIL' ? 'servfail'
    : code === 'EREFUSED' || code === 'ECONNREFUSED' ? 'refused'
    : 'error';
  return new LookupError(failure, code);
}

/** The names a pool looks up. */
function queries(config: PoolConfig): Query[] {
  const out: Query[] = [];
  for (const b of config.backends) if (isDnsName(b.address.host)) out.push({ kind: 'address', name: b.address.host });
  for (const d of config.discover ?? []) out.push({ kind: isSrvName(d.dns) ? 'srv' : 'a', name: d.dns });
  return out;
}

const key = (pool: string, q: Query): string => `${pool}\0${q.kind}\0${q.name}`;

function sameList(a: readonly string[] | null, b: readonly string[] | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
