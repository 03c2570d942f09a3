/**
 * Slow start (SPEC §3): a backend that starts serving ramps its weight in, so a cold cache or
 * a freshly restarted JIT is not handed its full share of traffic in one step. Pure: `now` is
 * passed in; the balancer evaluates the weight when it picks.
 */
import type { MemberState } from './failover-types.js';

type RampInfo = Pick<MemberState, 'servingSince' | 'ramp'>;

/** Share of the configured weight a backend gets at the moment it starts serving. */
const RAMP_FLOOR = 0.1;

/**
 * The weight the balancer uses for `member` at `now`.
 *
 * The ramp is linear from 10% to 100% of `weight` over `slowStartMs`, starting at
 * `servingSince`. Why 10% and not 0: a backend at weight 0 gets no traffic, so nothing on live
 * traffic could show whether it is healthy (passive detection needs requests to observe), and
 * the first moments of the ramp would be wasted; with weighted least-connections a small
 * non-zero weight still means it only receives a request when the others are clearly busier.
 * The floor also keeps `(in_flight + 1) / weight` finite.
 *
 * Full weight when there is no ramp: `ramp` false (up from the start), not serving
 * (`servingSince` null), slow start off (`slowStartMs` 0), or the ramp is over. A clock that
 * reads earlier than `servingSince` counts as the start of the ramp.
 */
export function effectiveWeight(weight: number, member: RampInfo, now: number, slowStartMs: number): number {
  if (!isRamping(member, slowStartMs)) return weight;
  const elapsed = Math.max(0, now - member.servingSince);
  if (elapsed >= slowStartMs) return weight;
  return weight * (RAMP_FLOOR + (1 - RAMP_FLOOR) * (elapsed / slowStartMs));
}

/** When `member` reaches full weight, or null when it is not ramping at all. */
export function rampEndsAt(member: RampInfo, slowStartMs: number): number | null {
  return isRamping(member, slowStartMs) ? member.servingSince + slowStartMs : null;
}

function isRamping(member: RampInfo, slowStartMs: number): member is RampInfo & { servingSince: number } {
  return member.ramp && member.servingSince !== null && slowStartMs > 0;
}
