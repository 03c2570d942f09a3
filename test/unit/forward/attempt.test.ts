/** The shared attempt loop with a scripted pool and owner: no sockets, no timers fire. */
import t from 'tap';
import { Attempts, classifyUpstreamError, type AttemptOwner, type AttemptPool } from '../../../src/forward/attempt.js';
import { ProxyError } from '../../../src/errors.js';
import type { UpstreamBackend } from '../../../src/upstream/backend.js';

function fixture(names: string[], retries = 2) {
  const backends = names.map((name) => ({ name, inFlight: 0 }) as unknown as UpstreamBackend);
  const log: string[] = [];
  const pool: AttemptPool = {
    name: 'app',
    connectTimeoutMs: 100,
    responseTimeoutMs: 0,
    retries,
    select: (exclude, retry) => {
      const next = backends.find((b) => !exclude.includes(b));
      return next === undefined ? { backend: null, reason: retry ? 'none_untried' : 'none_serving' } : { backend: next, via: 'serving' };
    },
    acquire: (b) => void (b as { inFlight: number }).inFlight++,
    release: (b) => void (b as { inFlight: number }).inFlight--,
    upstreamFailed: (b, e) => void log.push(`failed ${b.name} ${e.code}`),
    upstreamSucceeded: (b) => void log.push(`ok ${b.name}`),
    noteRetry: (b) => void log.push(`retry after ${b.name}`),
    noteSpill: () => undefined,
  };
  const owner: AttemptOwner & { allow: boolean; settled: boolean } = {
    allow: true,
    settled: false,
    attempt: (b, retry) => void log.push(`attempt ${b.name}${retry ? ' (retry)' : ''}`),
    abandon: () => void log.push('abandon'),
    mayRetry: () => owner.allow,
    giveUp: (e) => void log.push(`give up ${e.code}`),
  };
  return { backends, log, owner, attempts: new Attempts(pool, owner) };
}

const refused = () => new ProxyError('UPSTREAM_CONNECT_FAILED');

t.test('failures move through untried backends within the retry budget, then give up with the last error', async (t) => {
  const { attempts, log, backends } = fixture(['a', 'b', 'c', 'd'], 2);
  attempts.next(false);
  attempts.failed(refused());
  attempts.failed(refused());
  attempts.failed(refused());
  t.strictSame(log, [
    'attempt a', 'abandon', 'failed a UPSTREAM_CONNECT_FAILED', 'retry after a',
    'attempt b (retry)', 'abandon', 'failed b UPSTREAM_CONNECT_FAILED', 'retry after b',
    'attempt c (retry)', 'abandon', 'failed c UPSTREAM_CONNECT_FAILED', 'give up UPSTREAM_CONNECT_FAILED',
  ]);
  t.equal(attempts.retries, 2);
  t.strictSame(backends.map((b) => (b as unknown as { inFlight: number }).inFlight), [0, 0, 0, 0], 'every attempt released its backend');
});

t.test('no backend left: the last failure is answered; none at all: NO_SERVING_BACKEND', async (t) => {
  const two = fixture(['a'], 5);
  two.attempts.next(false);
  two.attempts.failed(refused());
  t.equal(two.log.at(-1), 'give up UPSTREAM_CONNECT_FAILED');
  const none = fixture([]);
  none.attempts.next(false);
  t.strictSame(none.log, ['give up NO_SERVING_BACKEND']);
});

t.test('never-retryable errors and owner refusals give up at once', async (t) => {
  const a = fixture(['a', 'b']);
  a.attempts.next(false);
  a.attempts.failed(new ProxyError('UPSTREAM_RESPONSE_TIMEOUT'));
  t.equal(a.log.at(-1), 'give up UPSTREAM_RESPONSE_TIMEOUT');
  const b = fixture(['a', 'b']);
  b.owner.allow = false;
  b.attempts.next(false);
  b.attempts.failed(refused());
  t.equal(b.log.at(-1), 'give up UPSTREAM_CONNECT_FAILED');
});

t.test('a settled owner (client gone) is only bookkept', async (t) => {
  const { attempts, log, owner } = fixture(['a', 'b']);
  attempts.next(false);
  owner.settled = true;
  attempts.failed(refused());
  t.strictSame(log, ['attempt a', 'abandon', 'failed a UPSTREAM_CONNECT_FAILED']);
});

t.test('retrySame asks the same backend again once the budget allows, and hands over', async (t) => {
  const { attempts, log } = fixture(['a', 'b'], 1);
  attempts.next(false);
  t.ok(attempts.retrySame(new ProxyError('UPSTREAM_STALE_CONNECTION')));
  t.strictSame(log.slice(-2), ['retry after a', 'attempt a (retry)']);
  t.strictSame(attempts.tried.map((b) => b.name), ['a'], 'the same backend is not counted twice as tried');
  attempts.succeeded();
  t.equal(log.at(-1), 'ok a');
  t.equal(attempts.handOver()?.name, 'a');
  t.equal(attempts.held, null);
  const budget = fixture(['a'], 0);
  budget.attempts.next(false);
  t.notOk(budget.attempts.retrySame(new ProxyError('UPSTREAM_STALE_CONNECTION')), 'no retry budget: refused');
});

t.test('classifyUpstreamError', async (t) => {
  const err = (code: string) => Object.assign(new Error(code), { code });
  t.equal(classifyUpstreamError(err('ECONNREFUSED'), false, false).code, 'UPSTREAM_CONNECT_FAILED');
  t.equal(classifyUpstreamError(err('HPE_INVALID_STATUS'), true, false).code, 'UPSTREAM_BAD_RESPONSE');
  t.equal(classifyUpstreamError(err('ECONNRESET'), true, true).code, 'UPSTREAM_STALE_CONNECTION');
  t.equal(classifyUpstreamError(err('ECONNRESET'), true, false).code, 'UPSTREAM_RESET_BEFORE_HEAD');
});
