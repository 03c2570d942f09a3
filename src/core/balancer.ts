/**
 * Weighted least-connections (SPEC §3), after HAProxy's fwlc.
 *
 * The key of a backend is (in_flight + 1) / effective_weight: the load it would carry *after*
 * taking this request, per unit of weight. Using "+1" rather than in_flight alone makes an idle
 * heavy backend beat an idle light one, and makes two backends with 3 and 2 in flight at weights
 * 3:2 compare as 4/3 vs 3/2 — the request goes where it raises the per-weight load least. At
 * steady concurrency this settles with in-flight counts proportional to weights, so equal-latency
 * backends receive shares proportional to weight; a slower backend holds its requests longer
 * and is therefore picked less — the point of least-connections.
 *
 * Keys are compared by cross-multiplication, (a+1)·wb vs (b+1)·wa, so equal loads compare equal
 * exactly instead of through rounded quotients. Among equal keys the backend picked least
 * recently wins (HAProxy inserts a re-queued server behind its equals), so equal backends
 * rotate: round-robin emerges from the tie rule, with no separate cursor to keep.
 */

/** What the balancer reads of a backend. */
export interface LoadView {
  readonly inFlight: number;
  /** Pool-wide sequence number of this backend's last pick; 0 = never picked. */
  readonly lastPick: number;
  /** 0 = unlimited. */
  readonly maxConns: number;
}

export function hasRoom(b: LoadView): boolean {
  return b.maxConns === 0 || b.inFlight < b.maxConns;
}

/**
 * The least-loaded candidate with room that is not in `exclude`, or null.
 * `weightOf` gives the effective weight (weight scaled by slow start), always > 0.
 */
export function pickLeastLoaded<B extends LoadView>(
  candidates: readonly B[],
  weightOf: (b: B) => number,
  exclude: readonly B[],
): B | null {
  let best: B | null = null;
  let bestLoad = 0;
  let bestWeight = 1;
  for (let i = 0; i < candidates.length; i++) {
    const b = candidates[i] as B;
    if (!hasRoom(b) || (exclude.length > 0 && exclude.includes(b))) continue;
    const load = b.inFlight + 1;
    const weight = weightOf(b);
    if (best === null) {
      best = b;
      bestLoad = load;
      bestWeight = weight;
      continue;
    }
    const lhs = load * bestWeight;
    const rhs = bestLoad * weight;
    if (lhs < rhs || (lhs === rhs && b.lastPick < best.lastPick)) {
      best = b;
      bestLoad = load;
      bestWeight = weight;
    }
  }
  return best;
}
