/** Where log lines go: text lines for terminals, a log file reopened by name (logrotate). */
import { readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { LogSink, toText } from '../../src/log-sink.js';
import { AccessLog, createLogger } from '../../src/log.js';
import type { ExchangeRecord } from '../../src/records.js';

const record: ExchangeRecord = { listener: 'web', pool: 'app', backend: 'a', method: 'GET', path: '/', status: 200, durationMs: 1, bytes: 0, retries: 0, client: '127.0.0.1', error: null, via: null, protocol: 'http1' };

/** The file's lines once it has `count` (writes are asynchronous); `[]` for a missing file. */
async function linesOf(file: string, count: number): Promise<string[]> {
  const deadline = Date.now() + 3_000;
  for (;;) {
    let lines: string[] = [];
    try {
      lines = readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    } catch {
      // not created yet
    }
    if (lines.length >= count || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 10));
  }
}
const ns = (lines: string[]): number[] => lines.map((l) => (JSON.parse(l) as { n: number }).n);

t.test('toText: one readable line per entry, values quoted only when they must be', async (t) => {
  const json = [
    '{"level":"warn","time":"2026-11-30T07:00:00.000Z","pid":7,"type":"backend_down","pool":"app","backend":"app-2","source":"check","evidence":[{"ok":false}],"msg":"backend_down"}',
    '{"level":"info","time":"2026-11-30T07:00:00.001Z","pid":7,"type":"access","listener":"web","method":"GET","path":"/a b\\n","status":200,"backend":null}',
    '{"level":"info","time":"2026-11-30T07:00:00.002Z","pid":7,"msg":"shutting down","signal":"SIGTERM"}',
    'not json',
    '',
  ].join('\n');
  const lines = toText(json).split('\n');
  t.equal(lines.length, 5, 'four lines and the final newline');
  t.equal(lines[0], '2026-11-30T07:00:00.000Z WARN  backend_down pool=app backend=app-2 source=check evidence=[{"ok":false}]');
  t.equal(lines[1], '2026-11-30T07:00:00.001Z INFO  access listener=web method=GET path="/a b\\n" status=200 backend=null');
  t.equal(lines[2], '2026-11-30T07:00:00.002Z INFO  shutting down signal=SIGTERM');
  t.equal(lines[3], 'not json', 'a line that is not JSON passes unchanged');
});

t.test('a log file is reopened by name: lines after reopen() go to the new file', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'hotwarm.log');
  const errors: string[] = [];
  const sink = new LogSink({ format: 'json', file, onError: (m) => errors.push(m) });
  const logger = createLogger({ level: 'info', destination: sink });
  logger.info({ n: 1 }, 'before');
  await linesOf(file, 1);
  renameSync(file, `${file}.1`);
  logger.info({ n: 2 }, 'still old');
  await linesOf(`${file}.1`, 2);
  sink.reopen();
  logger.info({ n: 3 }, 'after');
  logger.info({ n: 4 }, 'after');
  t.strictSame(ns(await linesOf(file, 2)), [3, 4], 'after reopen, the new file at the path');
  t.strictSame(ns(await linesOf(`${file}.1`, 2)), [1, 2], 'until reopen, lines follow the open file');
  t.strictSame(errors, []);
});

t.test('text format to a file; probe() names an unwritable file', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'text.log');
  const sink = new LogSink({ format: 'text', file });
  const logger = createLogger({ level: 'info', destination: sink });
  logger.info({ pool: 'app' }, 'hello');
  t.match((await linesOf(file, 1))[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z INFO  hello pool=app$/);
  t.equal(LogSink.probe(file), null);
  t.match(LogSink.probe(join(dir, 'missing', 'x.log')), /^cannot open log file .*x\.log: ENOENT$/);
  sink.reopen();
  t.equal(new LogSink({ format: 'json', file: null }).file, null, 'stdout: reopen is a no-op');
});

t.test('access lines reach the sink as bytes, between events, in order; text format too', async (t) => {
  const dir = t.testdir({});
  for (const format of ['json', 'text'] as const) {
    const file = join(dir, `${format}.log`);
    const sink = new LogSink({ format, file });
    const logger = createLogger({ level: 'info', destination: sink });
    const access = new AccessLog(logger, true);
    logger.info({ n: 0 }, 'first');
    for (let n = 1; n <= 300; n++) access.request({ ...record, path: `/é/${n}`, bytes: n });
    access.flush();
    logger.info({ n: 301 }, 'last');
    const lines = await linesOf(file, 302);
    t.equal(lines.length, 302, `${format}: every line`);
    if (format === 'json') {
      const parsed = lines.map((l) => JSON.parse(l) as { n?: number; bytes?: number; path?: string });
      t.strictSame(parsed.map((p) => p.n ?? p.bytes), [...Array(302).keys()], 'in the order written');
      t.equal(parsed[150]?.path, '/é/150', 'multi-byte characters intact');
    } else {
      t.match(lines[1], /^\S+ INFO  access listener=web .*path="\/é\/1" /, 'access lines made readable too');
      t.match(lines[301], /INFO  last n=301$/);
    }
  }
});
