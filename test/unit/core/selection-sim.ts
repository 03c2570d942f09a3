/**
 * A deterministic simulation of a pool under closed-loop load, for the selection tests: N clients,
 * each sending its next request the moment the previous one is answered; each backend answers
 * after a random service time drawn from a seeded generator. Drives the real core Pool (failover
 * reducer, slow start, balancer) with a simulated clock; no sockets, no timers.
 */
import { Pool, type PoolMember, type PoolSettings } from '../../../src/core/pool.js';
import type { FailoverEvent } from '../../../src/core/failover-types.js';

export interface SimMember extends PoolMember {
  /** Mean service time, ms. */
  meanMs: number;
}

export function member(name: string, weight: number, meanMs = 10, role: 'hot' | 'warm' = 'hot'): SimMember {
  return { name, role, weight, meanMs, maxConns: 0, inFlight: 0, credit: 0, lastPick: 0, servingSince: null, ramp: false };
}

/** mulberry32: small, fast, seeded. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

export interface Pick {
  readonly at: number;
  readonly backend: SimMember;
  /** In flight on the pool just before this request was placed. */
  readonly totalBefore: number;
  /** The backend's in-flight count once this request was placed. */
  readonly heldAfter: number;
  /** The backend's share (effective weight over the serving sum) at the pick. */
  readonly share: number;
}

export interface SimOptions {
  readonly members: readonly SimMember[];
  readonly clients: number;
  /** Simulated ms to run. */
  readonly durationMs: number;
  readonly seed: number;
  readonly slowStartMs?: number;
  /** Failover events to feed at given times (ms). */
  readonly events?: readonly { readonly at: number; readonly event: FailoverEvent }[];
  /** Service time distribution around `meanMs`: exponential (default) or uniform ±50%. */
  readonly service?: 'exponential' | 'uniform';
}

export interface SimResult {
  readonly pool: Pool<SimMember>;
  readonly picks: readonly Pick[];
  /** Requests that found no backend (must stay 0). */
  readonly unplaced: number;
}

/** Every member up at t = 0 (no ramp: the startup round), then closed-loop load until `durationMs`. */
export function simulate(o: SimOptions): SimResult {
  const settings: PoolSettings = { policy: { failback: 'manual', failbackHoldMs: 0, warmup: false }, slowStartMs: o.slowStartMs ?? 0, spill: true };
  const pool = new Pool('sim', o.members, settings);
  for (const m of o.members) pool.dispatch({ type: 'health', backend: m.name, health: 'up' }, 0);
  const random = prng(o.seed);
  const serviceTime = (b: SimMember): number =>
    o.service === 'uniform' ? b.meanMs * (0.5 + random()) : -b.meanMs * Math.log(1 - random());
  const events = [...(o.events ?? [])].sort((a, b) => a.at - b.at);
  // Pending answers: parallel arrays, at most `clients` long (a tiny binary heap is not worth it here).
  const doneAt: number[] = [];
  const doneBy: SimMember[] = [];
  const picks: Pick[] = [];
  let unplaced = 0;
  let now = 0;

  const send = (): void => {
    let total = 0;
    for (const b of pool.serving) total += b.inFlight;
    const selection = pool.select(now);
    if (selection.backend === null) {
      unplaced++;
      return;
    }
    const b = selection.backend;
    let sum = 0;
    for (const s of pool.serving) sum += pool.effectiveWeight(s, now);
    pool.acquire(b);
    picks.push({ at: now, backend: b, totalBefore: total, heldAfter: b.inFlight, share: pool.effectiveWeight(b, now) / sum });
    doneAt.push(now + serviceTime(b));
    doneBy.push(b);
  };

  for (let i = 0; i < o.clients; i++) send();
  while (doneAt.length > 0) {
    let next = 0;
    for (let i = 1; i < doneAt.length; i++) if ((doneAt[i] as number) < (doneAt[next] as number)) next = i;
    const at = doneAt[next] as number;
    while (events.length > 0 && (events[0]?.at as number) <= at) {
      const e = events.shift() as { at: number; event: FailoverEvent };
      now = e.at;
      pool.dispatch(e.event, now);
    }
    if (at > o.durationMs) break;
    now = at;
    const b = doneBy[next] as SimMember;
    doneAt.splice(next, 1);
    doneBy.splice(next, 1);
    pool.release(b);
    send();
  }
  return { pool, picks, unplaced };
}

/** Share of `picks` (optionally from `from` ms on) that went to each of `members`. */
export function shares(picks: readonly Pick[], members: readonly SimMember[], from = 0, to = Infinity): number[] {
  const counts = members.map(() => 0);
  let n = 0;
  for (const p of picks) {
    if (p.at < from || p.at >= to) continue;
    n++;
    const i = members.indexOf(p.backend);
    if (i >= 0) counts[i] = (counts[i] as number) + 1;
  }
  return counts.map((c) => (n === 0 ? 0 : c / n));
}
