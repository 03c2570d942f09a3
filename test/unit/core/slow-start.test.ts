import t from 'tap';
import { effectiveWeight, rampEndsAt } from '../../../src/core/slow-start.js';

t.test('effectiveWeight: linear from 10% to 100% over slow start', async (t) => {
  const ramping = { servingSince: 1_000, ramp: true };
  const rows: [string, number, number][] = [
    ['0% of the ramp: 10% of the weight', 1_000, 1],
    ['25% of the ramp', 3_500, 3.25],
    ['50% of the ramp: 55% of the weight', 6_000, 5.5],
    ['just before the end', 10_999, 10 * (0.1 + 0.9 * 0.9999)],
    ['100% of the ramp: full weight', 11_000, 10],
    ['long after', 1_000_000, 10],
    ['clock earlier than servingSince: start of the ramp', 500, 1],
  ];
  for (const [name, now, expected] of rows) {
    t.ok(Math.abs(effectiveWeight(10, ramping, now, 10_000) - expected) < 1e-9, `${name}: ${expected}`);
  }
});

t.test('effectiveWeight: full weight when not ramping', async (t) => {
  const rows: [string, { servingSince: number | null; ramp: boolean }, number][] = [
    ['slow start off (0 ms)', { servingSince: 1_000, ramp: true }, 0],
    ['ramp false (up from the start)', { servingSince: 1_000, ramp: false }, 10_000],
    ['not serving', { servingSince: null, ramp: false }, 10_000],
    ['servingSince null even if ramp is set', { servingSince: null, ramp: true }, 10_000],
  ];
  for (const [name, member, slowStartMs] of rows) t.equal(effectiveWeight(7, member, 1_000, slowStartMs), 7, name);
});

t.test('effectiveWeight is never 0', async (t) => {
  t.equal(effectiveWeight(1, { servingSince: 0, ramp: true }, 0, 60_000), 0.1);
});

t.test('rampEndsAt', async (t) => {
  t.equal(rampEndsAt({ servingSince: 1_000, ramp: true }, 10_000), 11_000);
  t.equal(rampEndsAt({ servingSince: 1_000, ramp: true }, 0), null, 'slow start off');
  t.equal(rampEndsAt({ servingSince: 1_000, ramp: false }, 10_000), null, 'no ramp');
  t.equal(rampEndsAt({ servingSince: null, ramp: false }, 10_000), null, 'not serving');
});
