/** The access log: pino-compatible lines, written in batches, nothing left behind at exit. */
import t from 'tap';
import { AccessLog } from '../../src/log.js';
import type { ExchangeRecord } from '../../src/forward/http.js';
import { LogSink } from '../helpers/log-sink.js';

const record: ExchangeRecord = {
  listener: 'web',
  pool: 'app',
  backend: 'a',
  method: 'GET',
  path: '/say "hi"\n',
  status: 200,
  durationMs: 1.23456,
  bytes: 12,
  retries: 0,
  client: '127.0.0.1',
  error: null,
  via: 'spill',
  protocol: 'http2',
};

const tick = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

t.test('lines are batched, written within 50 ms, and parse as pino lines', async (t) => {
  const sink = new LogSink();
  const access = new AccessLog(sink.logger(), true);
  access.request(record);
  access.request({ ...record, backend: null, status: 502, error: 'UPSTREAM_CONNECT_FAILED', via: null });
  await tick(0);
  t.equal(sink.access.length, 0, 'not written line by line');
  await tick(120);
  t.equal(sink.access.length, 2, 'both written by the flush timer');
  const [first, second] = sink.access;
  t.match(first, { level: 'info', type: 'access', listener: 'web', backend: 'a', method: 'GET', path: '/say "hi"\n', status: 200, duration_ms: 1.235, via: 'spill', protocol: 'http2' });
  t.match(String(first?.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO time with milliseconds');
  t.ok(Math.abs(Date.parse(String(first?.time)) - Date.now()) < 5_000, 'and the right time');
  t.match(second, { backend: null, status: 502, error: 'UPSTREAM_CONNECT_FAILED', protocol: 'http2' });
  t.notOk('via' in (second ?? {}), 'no via when no backend was chosen');
  t.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, 0, 'no timer left');
});

t.test('flush writes at once; a large batch does not wait for the timer; disabled writes nothing', async (t) => {
  const sink = new LogSink();
  const access = new AccessLog(sink.logger(), true);
  access.entry({ tunnel: 'tcp', bytes_in: 1 });
  access.flush();
  await tick(0);
  t.match(sink.access, [{ tunnel: 'tcp', bytes_in: 1 }], 'flushed before exit');
  for (let i = 0; i < 200; i++) access.request({ ...record, path: `/${'x'.repeat(200)}` });
  await tick(0);
  t.ok(sink.access.length > 1, 'a full buffer is written without waiting');
  access.flush();
  await tick(0);
  t.equal(sink.access.length, 201);
  access.enabled = false;
  access.request(record);
  access.flush();
  await tick(0);
  t.equal(sink.access.length, 201, 'nothing while disabled');
});

t.test('multi-byte paths and lines longer than the batch room stay whole and in order', async (t) => {
  const sink = new LogSink();
  const access = new AccessLog(sink.logger(), true);
  const long = `/${'ü'.repeat(9_000)}`;
  access.request({ ...record, path: '/ä€😀' });
  access.request({ ...record, path: long });
  access.request({ ...record, path: '/after' });
  // Fill the batch almost to its limit with multi-byte lines, so one lands across the 32 KiB mark.
  for (let i = 0; i < 120; i++) access.request({ ...record, path: `/${'€'.repeat(90)}${i}` });
  access.flush();
  await tick(0);
  const paths = sink.access.map((l) => l.path);
  t.equal(paths.length, 123, 'every line');
  t.same(paths.slice(0, 3), ['/ä€😀', long, '/after'], 'in order, characters intact');
  t.same(paths.slice(3).map((p) => String(p).slice(-3).replace(/^€+/, '')), Array.from({ length: 120 }, (_, i) => String(i)), 'the batch kept order across its flushes');
});
