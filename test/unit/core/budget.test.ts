import t from 'tap';
import { Budget } from '../../../src/core/budget.js';

t.test('a burst passes, the next token comes at the refill rate', async (t) => {
  const b = new Budget(3, 10, 0);
  t.equal([b.take(0), b.take(0), b.take(0)].every(Boolean), true, 'burst of 3');
  t.equal(b.take(0), false, 'the fourth at once is refused');
  t.equal(b.take(50), false, 'half a token after 50 ms');
  t.equal(b.take(100), true, 'one token after 100 ms at 10/s');
  t.equal(b.take(100), false);
});

t.test('refill never exceeds the burst; a clock that goes back refills nothing', async (t) => {
  const b = new Budget(2, 1000, 0);
  t.equal(b.take(10_000), true);
  t.equal(b.take(10_000), true);
  t.equal(b.take(10_000), false, 'a long idle period refilled only up to the burst');
  t.equal(b.take(5_000), false, 'an earlier time adds nothing');
});

t.test('a steady rate under the refill never runs dry', async (t) => {
  const b = new Budget(5, 20, 0);
  let refused = 0;
  for (let ms = 0; ms < 10_000; ms += 60) if (!b.take(ms)) refused++;
  t.equal(refused, 0, '≈16.7/s against 20/s');
});
