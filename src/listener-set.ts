/**
 * This process's listeners: built and bound at start, bound and held by a reload until its swap,
 * drained when a reload removes or rebinds them, stopped and closed at shutdown.
 */
import type { AddressInfo } from 'node:net';
import type { ReloadPlan } from './config/diff.js';
import type { Config, ListenerConfig } from './config/schema.js';
import type { EventLog } from './control/events.js';
import { ProxyError, ReloadError } from './errors.js';
import { createListener, type ListenerDeps } from './listeners/create.js';
import type { Listener } from './listeners/listener.js';
import type { PoolRuntime } from './upstream/pool-runtime.js';

export class ListenerSet {
  readonly #deps: ListenerDeps;
  readonly #events: EventLog;
  readonly #live = new Map<string, Listener>();
  /** Listeners a reload removed or rebound, each with the end of its drain. */
  readonly #draining = new Map<Listener, Promise<void>>();

  constructor(deps: ListenerDeps, events: EventLog) {
    this.#deps = deps;
    this.#events = events;
  }

  /** The listeners serving now, by name. */
  get live(): ReadonlyMap<string, Listener> {
    return this.#live;
  }

  /** Startup: builds the listener of `config`, binds it and announces it. */
  async start(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): Promise<void> {
    const listener = createListener(config, pools, this.#deps);
    this.#live.set(config.name, listener);
    this.#announce(listener, await listener.listen());
  }

  /**
   * A reload's listeners, added and rebound, into `bound`: built, held and bound. One that cannot
   * bind fails them all (a ReloadError); the caller abandons what `bound` holds then.
   */
  async bind(next: Config, plan: ReloadPlan, pools: ReadonlyMap<string, PoolRuntime>, bound: Map<string, Listener>): Promise<void> {
    // Every listener is built before any binds: a constructor that throws leaves nothing bound.
    const binding = new Set([...plan.listeners.added, ...plan.listeners.rebound.map((l) => l.name)]);
    for (const config of next.listeners.filter((l) => binding.has(l.name))) {
      const listener = createListener(config, pools, this.#deps);
      listener.hold();
      bound.set(config.name, listener);
    }
    const results = await Promise.allSettled([...bound.values()].map((l) => l.listen()));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
    if (failures.length > 0) {
      const code = failures[0] instanceof ProxyError ? failures[0].code : 'RELOAD_FAILED';
      throw new ReloadError(code, failures.map((f) => (f instanceof Error ? f.message : String(f))));
    }
  }

  /** A reload rolled back: what it bound lets go of its addresses. */
  abandon(bound: ReadonlyMap<string, Listener>): void {
    for (const listener of bound.values()) void listener.abandon();
  }

  /** A reload's swap: updated ones take `config`, removed and rebound ones drain, bound ones open. */
  commit(config: Config, old: Config, plan: ReloadPlan, bound: ReadonlyMap<string, Listener>, pools: ReadonlyMap<string, PoolRuntime>): void {
    for (const { name } of plan.listeners.updated) {
      this.#live.get(name)?.reconfigure(config.listeners.find((l) => l.name === name) as ListenerConfig, pools);
    }
    for (const name of [...plan.listeners.removed, ...plan.listeners.rebound.map((l) => l.name)]) {
      const listener = this.#live.get(name) as Listener;
      this.#live.delete(name);
      this.#drain(listener, drainGrace(listener.config, old));
    }
    for (const [name, listener] of bound) {
      this.#live.set(name, listener);
      listener.open();
      this.#announce(listener, listener.address() as AddressInfo);
    }
  }

  /** Shutdown: every listener stops accepting; resolves when all have drained (reloads' drains too). */
  stopAccepting(): Promise<unknown> {
    for (const listener of this.#all()) listener.closing = true;
    // A listener still draining from a reload has stopped accepting already: wait for its drain.
    return Promise.all([...this.#live.values()].map((l) => l.stopAccepting()).concat([...this.#draining.values()]));
  }

  /** Closes every connection still open and stops every listener. */
  async close(): Promise<void> {
    const listeners = this.#all();
    for (const listener of listeners) listener.closeAllConnections();
    await Promise.all(listeners.map((l) => l.stopAccepting()));
  }

  #all(): Listener[] {
    return [...this.#live.values(), ...this.#draining.keys()];
  }

  #announce(listener: Listener, address: AddressInfo): void {
    const config = listener.config;
    this.#events.emit('listening', { listener: config.name, protocol: config.protocol, tls: config.tls !== undefined, address: `${address.address}:${address.port}` });
  }

  /** A listener a reload removed or rebound: it finishes its requests, then is forgotten. */
  #drain(listener: Listener, graceMs: number): void {
    const drained = listener.drain(graceMs).then(() => {
      this.#draining.delete(listener);
    });
    this.#draining.set(listener, drained);
  }
}

/**
 * How long a removed or rebound listener's connections may take to finish: the longest
 * drain_timeout of the pools it routed to (the same bound a removed backend's work gets).
 */
function drainGrace(listener: ListenerConfig, config: Config): number {
  const names = listener.routes === undefined ? [listener.pool] : listener.routes.map((r) => r.pool);
  return Math.max(0, ...names.map((name) => (name === undefined ? 0 : config.pools[name]?.drain_timeout ?? 0)));
}
