import t from 'tap';
import { Balancer, inFlightCap, leastLoaded, type Balanced } from '../../../src/core/balancer.js';

interface B extends Balanced {
  name: string;
  weight: number;
  inFlight: number;
  maxConns: number;
}

function backends(weights: readonly number[], maxConns = 0): B[] {
  return weights.map((weight, i) => ({ name: `b${i}`, weight, inFlight: 0, credit: 0, lastPick: 0, maxConns }));
}

const weightOf = (b: B): number => b.weight;

/** `n` picks at concurrency 1 (nothing held): the names in order. */
function sequence(balancer: Balancer, list: B[], n: number, weight: (b: B) => number = weightOf): string[] {
  const order: string[] = [];
  for (let i = 0; i < n; i++) order.push((balancer.pick(list, weight, []) as B).name);
  return order;
}

t.test('inFlightCap: one over the share at full weight, the slow-start bound when ramping', async (t) => {
  const rows: [string, number, number, boolean, number][] = [
    ['idle pool, any share', 0.1, 0, false, 1],
    ['3:2:1 at 4 clients, heaviest: share exactly 2 → 3', 0.5, 3, false, 3],
    ['3:2:1 at 4 clients, middle: 1.33 → 2', 1 / 3, 3, false, 2],
    ['3:2:1 at 4 clients, lightest: 0.67 → 1', 1 / 6, 3, false, 1],
    ['1/3 of 3 is exactly 1 despite rounding → 2', 1 / 3, 2, false, 2],
    ['ramping on an idle pool: max(1, 0) + 1', 0.05, 0, true, 2],
    ['ramping at 31 in flight, share 0.05: ⌈1.55⌉ + 1', 0.05, 31, true, 3],
    ['ramping, 1/3 of 3 is exactly 1 despite rounding', 1 / 3, 3, true, 2],
  ];
  for (const [name, share, total, ramping, cap] of rows) t.equal(inFlightCap(share, total, ramping), cap, name);
});

t.test('concurrency 1: weights 2:1 give 2 of 3 requests to the heavier, the lighter is never starved', async (t) => {
  const order = sequence(new Balancer(), backends([2, 1]), 30);
  t.equal(order.filter((n) => n === 'b0').length, 20);
  t.equal(order.filter((n) => n === 'b1').length, 10);
  t.strictSame(order.slice(0, 6), ['b0', 'b1', 'b0', 'b0', 'b1', 'b0'], 'smooth: the lighter is spread out');
});

t.test('concurrency 1: 3:2:1 in every window of 6 picks', async (t) => {
  const order = sequence(new Balancer(), backends([3, 2, 1]), 60);
  for (let i = 0; i < 60; i += 6) {
    const window = order.slice(i, i + 6);
    t.strictSame(['b0', 'b1', 'b2'].map((n) => window.filter((x) => x === n).length), [3, 2, 1], `picks ${i}–${i + 5}`);
  }
});

t.test('equal backends rotate: ties go to the least recently picked', async (t) => {
  t.strictSame(sequence(new Balancer(), backends([1, 1, 1]), 6), ['b0', 'b1', 'b2', 'b0', 'b1', 'b2']);
});

t.test('a backend at its in-flight cap is skipped even with the most credit: a slow one is not piled onto', async (t) => {
  const balancer = new Balancer();
  const [a, b] = backends([1, 1]) as [B, B];
  a.credit = 1;
  b.credit = -0.5;
  a.inFlight = 3; // total 3: a's cap is ⌊4 × 0.5⌋ + 1 = 3
  t.equal(balancer.pick([a, b], weightOf, []), b);
  t.equal(a.credit, 1, 'credit capped at 1 while it waits');
  t.equal(b.credit, -0.5 + 0.5 - 1, 'b earned its share and spent one');
});

t.test('exclude: skipped, but still earns credit (a retry is an arriving request too)', async (t) => {
  const balancer = new Balancer();
  const list = backends([5, 1, 1]);
  const [a, b, c] = list as [B, B, B];
  t.equal(balancer.pick(list, weightOf, [a]), b);
  t.ok(a.credit > 0, 'a earned');
  t.equal(balancer.pick(list, weightOf, [a, b]), c);
  t.equal(balancer.pick(list, weightOf, [a, b, c]), null);
});

t.test('max_conns: a full backend is skipped, all full gives null', async (t) => {
  const balancer = new Balancer();
  const list = backends([10, 1], 2);
  const [a, b] = list as [B, B];
  a.inFlight = 2;
  t.equal(balancer.pick(list, weightOf, []), b);
  b.inFlight = 2;
  t.equal(balancer.pick(list, weightOf, []), null);
  t.equal(balancer.pick([], weightOf, []), null);
});

t.test('every backend with room at its cap (others excluded or full): weighted least-connections decides', async (t) => {
  const balancer = new Balancer();
  const [a, b, c] = backends([1, 1, 1]) as [B, B, B];
  c.maxConns = 1;
  c.inFlight = 1;
  a.inFlight = 4;
  b.inFlight = 3;
  // total 8, caps ⌊9/3⌋ + 1 = 4: a and b at or over theirs; b excluded → a, over its cap, rather than spill.
  t.equal(balancer.pick([a, b, c], weightOf, [b]), a);
});

t.test('a ramping backend never holds more than max(1, ⌈total × share⌉) + 1', async (t) => {
  const balancer = new Balancer();
  const [hot, warm] = backends([1, 1]) as [B, B];
  const ramped = (x: B): number => (x === warm ? 0.1 : 1); // share 0.1/1.1
  warm.credit = 1;
  hot.inFlight = 2;
  warm.inFlight = 2; // total 4: cap max(1, ⌈0.36⌉) + 1 = 2
  t.equal(balancer.pick([hot, warm], ramped, []), hot, 'the ramping warm is at its cap');
  warm.inFlight = 1;
  t.equal(balancer.pick([hot, warm], ramped, []), warm, 'under its cap with the most credit');
});

t.test('admit: a backend that starts serving takes the next request, without a burst after it', async (t) => {
  const balancer = new Balancer();
  const [a, b, w] = backends([1, 1, 1]) as [B, B, B];
  const weight = (x: B): number => (x === w ? 0.1 : 1);
  sequence(balancer, [a, b], 7);
  a.credit = -3; // the others in debt (a slow backend's lost credit, say)
  b.credit = -2.5;
  balancer.admit([w], [a, b, w]);
  t.equal(w.credit, -1.5, 'one above the richest other');
  const order = sequence(balancer, [a, b, w], 20, weight);
  t.equal(order[0], w.name, 'the very next request');
  t.ok(order.filter((n) => n === w.name).length <= 2, 'then about its share (0.1 / 2.1 of 20 ≈ 1)');
  const [x, y] = backends([1, 1]) as [B, B];
  balancer.admit([x, y], [x, y]);
  t.strictSame([x.credit, y.credit], [1, 1], 'a pool starting together: one whole credit each');
});

t.test('credit floor: a backend chosen alone many times owes at most 8 requests', async (t) => {
  const balancer = new Balancer();
  const [a, b] = backends([1, 1]) as [B, B];
  for (let i = 0; i < 50; i++) balancer.pick([a, b], weightOf, [b]);
  t.equal(a.credit, -8);
  t.equal(b.credit, 1);
  t.equal(balancer.picks, 50);
});

t.test('pickStandby and leastLoaded: (in_flight + 1) / weight, ties to the least recently picked', async (t) => {
  const balancer = new Balancer();
  const [a, b] = backends([3, 2]) as [B, B];
  a.inFlight = 3; // 4/3 = 1.33
  b.inFlight = 2; // 3/2 = 1.5
  t.equal(leastLoaded([a, b], weightOf, []), a);
  a.inFlight = 4; // 5/3 = 1.67
  t.equal(balancer.pickStandby([a, b], []), b);
  t.equal(b.lastPick, 1, 'stamped');
  t.equal(b.credit, 0, 'standbys spend no credit');
  a.inFlight = 0;
  b.inFlight = 0;
  t.equal(balancer.pickStandby([a, b], [a]), b, 'exclude');
  t.equal(balancer.pickStandby([], []), null);
});

t.test('equal credit and never picked (a reload adds one beside another): the heavier takes the first request', async (t) => {
  const balancer = new Balancer();
  const [a, c] = backends([1, 100]) as [B, B];
  balancer.admit([a, c], [a, c]);
  t.equal(balancer.pick([a, c], weightOf, []), c);
});
