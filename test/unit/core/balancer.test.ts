import t from 'tap';
import { pickLeastLoaded, type LoadView } from '../../../src/core/balancer.js';

interface B extends LoadView {
  name: string;
  weight: number;
  inFlight: number;
  lastPick: number;
  maxConns: number;
}

function backends(weights: readonly number[], maxConns = 0): B[] {
  return weights.map((weight, i) => ({ name: `b${i}`, weight, inFlight: 0, lastPick: 0, maxConns }));
}

const weightOf = (b: B): number => b.weight;

/** Picks `n` times; each pick holds its backend for `hold` further picks (steady concurrency `hold`). */
function shares(list: B[], n: number, hold: number): number[] {
  let seq = 0;
  const counts = list.map(() => 0);
  const held: B[] = [];
  for (let i = 0; i < n; i++) {
    if (held.length >= hold) (held.shift() as B).inFlight--;
    const b = pickLeastLoaded(list, weightOf, []) as B;
    b.inFlight++;
    b.lastPick = ++seq;
    held.push(b);
    counts[list.indexOf(b)] = (counts[list.indexOf(b)] ?? 0) + 1;
  }
  return counts.map((c) => c / n);
}

const table: { weights: number[]; hold: number }[] = [
  { weights: [1, 1, 1], hold: 1 },
  { weights: [5, 4, 3], hold: 24 },
  { weights: [3, 1], hold: 16 },
  { weights: [1, 2, 3, 4], hold: 40 },
  { weights: [256, 1], hold: 514 },
];

for (const { weights, hold } of table) {
  t.test(`shares follow weights ${weights.join(':')} at concurrency ${hold}`, async (t) => {
    const total = weights.reduce((a, b) => a + b, 0);
    const got = shares(backends(weights), 12_000, hold);
    got.forEach((share, i) => {
      t.ok(Math.abs(share - (weights[i] as number) / total) < 0.02, `backend ${i}: ${share.toFixed(3)} ≈ ${((weights[i] as number) / total).toFixed(3)}`);
    });
  });
}

t.test('equal backends rotate: ties go to the least recently picked', async (t) => {
  const list = backends([1, 1, 1]);
  const order: string[] = [];
  let seq = 0;
  for (let i = 0; i < 6; i++) {
    const b = pickLeastLoaded(list, weightOf, []) as B;
    b.lastPick = ++seq;
    order.push(b.name);
  }
  t.strictSame(order, ['b0', 'b1', 'b2', 'b0', 'b1', 'b2']);
});

t.test('the key is (in_flight + 1) / weight', async (t) => {
  const [a, b] = backends([3, 2]) as [B, B];
  a.inFlight = 3; // 4/3 = 1.33
  b.inFlight = 2; // 3/2 = 1.5
  t.equal(pickLeastLoaded([a, b], weightOf, []), a);
  a.inFlight = 4; // 5/3 = 1.67
  t.equal(pickLeastLoaded([a, b], weightOf, []), b);
  // Idle: the heavier backend wins (1/3 < 1/2).
  a.inFlight = 0;
  b.inFlight = 0;
  t.equal(pickLeastLoaded([a, b], weightOf, []), a);
});

t.test('exclude skips backends already tried', async (t) => {
  const list = backends([5, 1, 1]);
  const [a, b, c] = list as [B, B, B];
  t.equal(pickLeastLoaded(list, weightOf, [a]), b);
  t.equal(pickLeastLoaded(list, weightOf, [a, b]), c);
  t.equal(pickLeastLoaded(list, weightOf, [a, b, c]), null);
});

t.test('max_conns: a full backend is skipped, all full gives null', async (t) => {
  const list = backends([10, 1], 2);
  const [a, b] = list as [B, B];
  a.inFlight = 2;
  t.equal(pickLeastLoaded(list, weightOf, []), b);
  b.inFlight = 2;
  t.equal(pickLeastLoaded(list, weightOf, []), null);
  t.equal(pickLeastLoaded([], weightOf, []), null);
});

t.test('effective weight (slow start) scales the key', async (t) => {
  const list = backends([10, 10]);
  const [a, b] = list as [B, B];
  // a is ramping at 10%: (0+1)/1 = 1 vs b (0+1)/10 = 0.1 → b; with b at 9 in flight: 10/10 = 1 → tie → least recent.
  const ramped = (x: B): number => (x === a ? 1 : 10);
  t.equal(pickLeastLoaded(list, ramped, []), b);
  b.inFlight = 9;
  b.lastPick = 5;
  t.equal(pickLeastLoaded(list, ramped, []), a);
});
