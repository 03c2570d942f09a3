/**
 * Selection (SPEC §3): weighted least-connections whose shares hold at every concurrency.
 *
 * Plain least-connections — key (in_flight + 1) / weight, HAProxy's fwlc — only follows weights
 * once enough requests are in flight for the counts to spread: with one client every backend is
 * idle at every pick and the heaviest always wins (weights 2:1 gave 30 of 30 to the heavier), and
 * with 4 clients over 3:2:1 the counts settle at 2/1/1, i.e. 50/25/25. A ramping backend at 10%
 * of its weight has key (0 + 1) / 0.1 = 10 and loses to every busy peer, so a freshly promoted
 * warm saw no request for seconds.
 *
 * So the two jobs are split:
 * - **Who is owed the request: credit.** On every pick each serving backend earns its `share`
 *   (effective weight over the sum of the serving backends' effective weights) as credit, capped
 *   at 1; the backend chosen spends 1. Shares sum to 1, so credit is conserved and each backend is
 *   chosen in proportion to its share whatever the concurrency — smooth weighted round-robin
 *   (NGINX's `round_robin` current/effective weights) in units of one request. The cap at 1 keeps
 *   a backend that could not be chosen for a while (full, or excluded) from storing up a burst.
 *   A backend that starts serving starts one credit above the richest of the others (capped
 *   at 1), so with ties going to the backend picked least recently it takes the very next
 *   request: a promoted warm is never starved.
 * - **Who may take it: an in-flight cap.** A backend is eligible only while it holds fewer than
 *   `⌊(total_in_flight + 1) × share⌋ + 1` requests — the smallest whole number above its share
 *   of the requests in flight once this one is placed. A slow backend holds its requests
 *   longer, reaches its cap and is skipped: the least-connections property. A ramping
 *   backend's cap is `max(1, ⌈total_in_flight × share⌉) + 1` (never more than one over its
 *   share of what is in flight: slow start never floods it; the +1 lets it take a request on an
 *   idle pool). The caps of the serving backends sum to more than total_in_flight, so some
 *   backend is always under its cap unless it is excluded or at max_conns; then the pick falls
 *   back to plain weighted least-connections over those with room (a serving backend with room
 *   is always used before spill).
 *
 * The balancer's state is plain data on each member — `credit`, `lastPick`, `inFlight` — written
 * only here and by the core pool, so a snapshot of it can be read or shipped as it is.
 * Per pick: two passes over the serving backends, no allocation.
 */

/** What the balancer reads and writes of a backend. */
export interface Balanced {
  /** Configured weight (1–256). A backend whose effective weight is below it is ramping. */
  readonly weight: number;
  /** 0 = unlimited. */
  readonly maxConns: number;
  /** HTTP requests in progress plus open tunnels. */
  readonly inFlight: number;
  /** Credit towards the next pick, at most 1 (see above). */
  credit: number;
  /** Pool-wide sequence number of this backend's last pick; 0 = never picked. */
  lastPick: number;
}

/** Floating-point slack for credit ties and cap rounding (shares are ratios of small integers). */
const EPSILON = 1e-9;
/**
 * Credit never sinks below this. Credit lost at the cap of 1 (a full or slow backend) is not
 * paid back, so without a floor the others' credit would drift down for ever; the floor bounds
 * how many requests a backend may owe. −8 keeps shares within 2–5% in the simulation where −1
 * cost up to 14% (the debt of a backend that took requests while the heavier ones were full
 * is forgiven too early).
 */
const CREDIT_FLOOR = -8;

export function hasRoom(b: Pick<Balanced, 'inFlight' | 'maxConns'>): boolean {
  return b.maxConns === 0 || b.inFlight < b.maxConns;
}

/**
 * The most requests a backend with `share` may hold once this pick is placed.
 * At full weight: the smallest whole number above its share of the requests in flight with this
 * one, ⌊(total_in_flight + 1) × share⌋ + 1. Not ⌈…⌉: when the share comes out whole (3:2:1 at 4
 * clients gives the heaviest exactly 2) a cap equal to it binds half the time on mere jitter and
 * the heaviest backend falls short of its share (45% instead of 50% in the simulation); one
 * request of slack fixes that and still stops a backend that holds its requests twice as long.
 * Ramping: max(1, ⌈total_in_flight × share⌉) + 1, the bound slow start promises.
 */
export function inFlightCap(share: number, totalInFlight: number, ramping: boolean): number {
  if (ramping) return Math.max(1, Math.ceil(totalInFlight * share - EPSILON)) + 1;
  return Math.floor((totalInFlight + 1) * share + EPSILON) + 1;
}

/**
 * One balancer per pool (per worker, with workers): it numbers the picks for the tie rule.
 * `weightOf` gives a member's effective weight (weight scaled by slow start), always > 0.
 */
export class Balancer {
  #seq = 0;

  /** Picks made so far (the last `lastPick` handed out). */
  get picks(): number {
    return this.#seq;
  }

  /**
   * Backends that start serving (`joining`, all in `serving`): each gets one whole credit more
   * than the richest other serving backend, capped at 1 — so after the next arrival's earnings
   * it still has the most credit (or ties at 1, and ties go to the backend picked least
   * recently): it takes the very next request. Relative to the others, not a flat 1: when they
   * are in debt a flat 1 would buy the newcomer a burst of catch-up picks.
   */
  admit(joining: readonly Balanced[], serving: readonly Balanced[]): void {
    let top = 1;
    let others = false;
    for (const b of serving) {
      if (joining.includes(b)) continue;
      top = others ? Math.max(top, b.credit) : b.credit;
      others = true;
    }
    for (const b of joining) b.credit = Math.min(1, top + 1);
  }

  /**
   * The serving backend for a new request, not in `exclude`, or null when every one is excluded
   * or at max_conns. Every serving backend earns its credit, excluded ones included (a retry is
   * an arriving request too); the one returned has spent its credit and is stamped as picked.
   */
  pick<B extends Balanced>(serving: readonly B[], weightOf: (b: B) => number, exclude: readonly B[]): B | null {
    let totalWeight = 0;
    let totalInFlight = 0;
    for (let i = 0; i < serving.length; i++) {
      const b = serving[i] as B;
      totalWeight += weightOf(b);
      totalInFlight += b.inFlight;
    }
    let best: B | null = null;
    let bestWeight = 0;
    for (let i = 0; i < serving.length; i++) {
      const b = serving[i] as B;
      const weight = weightOf(b);
      const share = weight / totalWeight;
      const credit = b.credit + share;
      b.credit = credit > 1 ? 1 : credit;
      if (!hasRoom(b) || (exclude.length > 0 && exclude.includes(b))) continue;
      if (b.inFlight >= inFlightCap(share, totalInFlight, weight < b.weight)) continue;
      if (best === null || b.credit > best.credit + EPSILON || (b.credit >= best.credit - EPSILON && prefer(b, weight, best, bestWeight))) {
        best = b;
        bestWeight = weight;
      }
    }
    if (best === null) best = leastLoaded(serving, weightOf, exclude);
    if (best === null) return null;
    best.credit = Math.max(CREDIT_FLOOR, best.credit - 1);
    best.lastPick = ++this.#seq;
    return best;
  }

  /**
   * A standby warm for spill or a last-resort retry: plain weighted least-connections (standbys
   * take overflow only, so there is no share to keep). Stamped as picked; no credit involved.
   */
  pickStandby<B extends Balanced>(standby: readonly B[], exclude: readonly B[]): B | null {
    const best = leastLoaded(standby, weightOfConfigured, exclude);
    if (best !== null) best.lastPick = ++this.#seq;
    return best;
  }
}

const weightOfConfigured = (b: Balanced): number => b.weight;

/**
 * Between two backends with equal credit: the one picked less recently (equal backends rotate),
 * and between two never picked (or picked together, as after a reload), the heavier one — a
 * backend of weight 100 added beside one of weight 1 takes the first request.
 */
function prefer(b: Balanced, weight: number, best: Balanced, bestWeight: number): boolean {
  return b.lastPick < best.lastPick || (b.lastPick === best.lastPick && weight > bestWeight);
}

/**
 * Weighted least-connections: the candidate with room, not excluded, with the least
 * (in_flight + 1) / weight — the load it would carry after taking this request, per unit of
 * weight (HAProxy's fwlc key). Compared by cross-multiplication so equal loads compare equal;
 * ties go to the least recently picked.
 */
export function leastLoaded<B extends Balanced>(candidates: readonly B[], weightOf: (b: B) => number, exclude: readonly B[]): B | null {
  let best: B | null = null;
  let bestLoad = 0;
  let bestWeight = 1;
  for (let i = 0; i < candidates.length; i++) {
    const b = candidates[i] as B;
    if (!hasRoom(b) || (exclude.length > 0 && exclude.includes(b))) continue;
    const load = b.inFlight + 1;
    const weight = weightOf(b);
    const lhs = load * bestWeight;
    const rhs = bestLoad * weight;
    if (best === null || lhs < rhs || (lhs === rhs && b.lastPick < best.lastPick)) {
      best = b;
      bestLoad = load;
      bestWeight = weight;
    }
  }
  return best;
}
