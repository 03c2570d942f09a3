import t from 'tap';
import { HealthCounter, PassiveDetector, type HealthTransition } from '../../../src/core/health.js';
import type { Health } from '../../../src/core/failover-types.js';

/** Check results as a string: `+` success, `-` failure. */
function feed(counter: HealthCounter, results: string): { transitions: HealthTransition[]; health: Health[] } {
  const transitions: HealthTransition[] = [];
  const health: Health[] = [];
  for (const r of results) {
    transitions.push(counter.observe(r === '+'));
    health.push(counter.health);
  }
  return { transitions, health };
}

t.test('HealthCounter.observe', async (t) => {
  const U = 'unchanged', P = 'pending', C = 'changed';
  const rows: { name: string; rise: number; fall: number; results: string; transitions: HealthTransition[]; final: Health }[] = [
    { name: 'first success decides at once', rise: 2, fall: 3, results: '+', transitions: [C], final: 'up' },
    { name: 'first failure decides at once', rise: 2, fall: 3, results: '-', transitions: [C], final: 'down' },
    { name: 'agreeing results change nothing', rise: 2, fall: 3, results: '+++', transitions: [C, U, U], final: 'up' },
    { name: 'fall 3 consecutive failures flip up→down', rise: 2, fall: 3, results: '+---', transitions: [C, P, P, C], final: 'down' },
    { name: 'rise 2 consecutive successes flip down→up', rise: 2, fall: 3, results: '-++', transitions: [C, P, C], final: 'up' },
    { name: 'a success breaks a failure streak', rise: 2, fall: 3, results: '+--+---', transitions: [C, P, P, U, P, P, C], final: 'down' },
    { name: 'a failure breaks a success streak', rise: 3, fall: 1, results: '-++-+++', transitions: [C, P, P, U, P, P, C], final: 'up' },
    { name: 'rise 1 / fall 1 flip on every change', rise: 1, fall: 1, results: '+-+-', transitions: [C, C, C, C], final: 'down' },
    { name: 'streak restarts after a flip', rise: 2, fall: 2, results: '+--+', transitions: [C, P, C, P], final: 'down' },
  ];
  for (const row of rows) {
    const counter = new HealthCounter(row.rise, row.fall);
    t.equal(counter.health, 'unknown', `${row.name}: starts unknown`);
    const { transitions, health } = feed(counter, row.results);
    t.strictSame(transitions, row.transitions, row.name);
    t.equal(health.at(-1), row.final, `${row.name}: final health`);
  }
});

t.test('HealthCounter.forceDown (passive detection)', async (t) => {
  const fromUnknown = new HealthCounter(2, 3);
  t.equal(fromUnknown.forceDown(), 'changed');
  t.equal(fromUnknown.health, 'down');

  const fromUp = new HealthCounter(2, 3);
  fromUp.observe(true);
  t.equal(fromUp.forceDown(), 'changed', 'up → down at once, no fall streak needed');
  t.equal(fromUp.health, 'down');
  t.strictSame(feed(fromUp, '++').transitions, ['pending', 'changed'], 'back only after rise successes');

  const midRise = new HealthCounter(3, 3);
  midRise.observe(false);
  t.strictSame(feed(midRise, '++').transitions, ['pending', 'pending']);
  t.equal(midRise.forceDown(), 'unchanged', 'already down');
  t.strictSame(feed(midRise, '+++').transitions, ['pending', 'pending', 'changed'], 'the success streak starts over');
});

t.test('HealthCounter.setThresholds keeps health and the streak in progress', async (t) => {
  const counter = new HealthCounter(2, 5);
  counter.observe(true);
  t.strictSame(feed(counter, '--').transitions, ['pending', 'pending']);
  counter.setThresholds(2, 3);
  t.equal(counter.health, 'up', 'health kept');
  t.equal(counter.observe(false), 'changed', 'third failure reaches the new fall of 3');

  counter.setThresholds(1, 1);
  t.equal(counter.observe(true), 'changed', 'new rise of 1 applies');
});

t.test('HealthCounter rejects thresholds below 1', async (t) => {
  t.throws(() => new HealthCounter(0, 3), RangeError);
  t.throws(() => new HealthCounter(2, 1.5), RangeError);
  const counter = new HealthCounter(2, 3);
  t.throws(() => counter.setThresholds(2, 0), RangeError);
});

t.test('PassiveDetector', async (t) => {
  /** `x` failure, `o` success → what failure() returned, `.` for a success. */
  const run = (detector: PassiveDetector, seq: string) =>
    [...seq].map((c) => (c === 'x' ? (detector.failure() ? 'T' : 'f') : (detector.success(), '.'))).join('');
  const rows: [string, number, string, string][] = [
    ['threshold 3: the third failure in a row marks down', 3, 'xxx', 'ffT'],
    ['threshold 3: the streak resets after it fires', 3, 'xxxxxx', 'ffTffT'],
    ['threshold 3: a success resets the streak', 3, 'xxoxxx', 'ff.ffT'],
    ['threshold 1: every failure marks down', 1, 'xxox', 'TT.T'],
    ['threshold 0: passive detection off', 0, 'xxxxxxxx', 'ffffffff'],
  ];
  for (const [name, threshold, seq, expected] of rows) t.equal(run(new PassiveDetector(threshold), seq), expected, name);

  const reloaded = new PassiveDetector(5);
  t.equal(run(reloaded, 'xx'), 'ff');
  reloaded.setThreshold(3);
  t.equal(run(reloaded, 'x'), 'T', 'a streak in progress counts against the new threshold');
  t.equal(run(reloaded, 'xx'), 'ff');
  reloaded.setThreshold(0);
  reloaded.setThreshold(3);
  t.equal(run(reloaded, 'xx'), 'ff', 'turning detection off clears the streak');

  t.throws(() => new PassiveDetector(-1), RangeError);
  t.throws(() => reloaded.setThreshold(2.5), RangeError);
});
