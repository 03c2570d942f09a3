/** The shared-destination line writer: whole lines, bounded memory, flush, flushSync, reopen. */
import { execFileSync } from 'node:child_process';
import { constants, openSync, readFileSync, renameSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { LineWriter } from '../../src/log-writer.js';

const flushed = (w: LineWriter): Promise<void> => new Promise((resolve) => w.flush(resolve));
const linesOf = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

/** A JSON line of about `size` bytes. */
function line(writer: number, n: number, size: number): string {
  return `${JSON.stringify({ writer, n, pad: 'x'.repeat(Math.max(0, size - 40)) })}\n`;
}

t.test('two writers appending to one file: every line whole, none lost', async (t) => {
  const file = join(t.testdir({}), 'shared.log');
  const errors: string[] = [];
  const writers = [1, 2].map(() => new LineWriter({ file, onError: (m) => errors.push(m) }));
  // Batches of lines as the access log hands them over, of sizes around the chunk limits.
  for (let n = 0; n < 600; n++) {
    writers.forEach((w, i) => {
      const size = [100, 900, 5_000, 70_000][n % 4] as number;
      w.write(line(i + 1, n, size) + line(i + 1, n + 100_000, 200));
    });
    // Within the bound (4 MiB waiting per writer): the two still write at the same time.
    if (n % 10 === 9) await Promise.all(writers.map(flushed));
  }
  await Promise.all(writers.map(flushed));
  for (const w of writers) w.close();
  const lines = linesOf(file);
  t.equal(lines.length, 2 * 600 * 2, 'every line written');
  const parsed = lines.map((l) => JSON.parse(l) as { writer: number; n: number });
  for (const writer of [1, 2]) {
    const mine = parsed.filter((p) => p.writer === writer).map((p) => p.n);
    t.equal(mine.length, 1200, `writer ${writer}: all its lines, each parsing whole`);
    t.strictSame(mine.filter((n) => n < 100_000), [...Array(600).keys()], `writer ${writer}: in its own order`);
  }
  t.strictSame(errors, []);
});

t.test('bounded: past maxPending the newest lines are dropped and reported once, the rest whole', async (t) => {
  const file = join(t.testdir({}), 'slow.log');
  const errors: string[] = [];
  const w = new LineWriter({ file, onError: (m) => errors.push(m), maxPending: 10_000 });
  // All in one turn of the event loop: the first write is in flight, the rest queue up to the bound.
  for (let n = 0; n < 200; n++) w.write(line(1, n, 200));
  await flushed(w);
  w.close();
  const ns = linesOf(file).map((l) => (JSON.parse(l) as { n: number }).n);
  t.ok(ns.length > 0 && ns.length < 200, `some lines written (${ns.length}), the rest dropped`);
  t.strictSame(ns, [...Array(ns.length).keys()], 'the oldest kept, in order');
  t.equal(errors.length, 1, 'one report');
  t.match(errors[0], new RegExp(`${200 - ns.length} lines dropped`));
});

t.test('flushSync writes what is queued, once; reopen follows the path', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'a.log');
  const w = new LineWriter({ file, onError: () => undefined });
  for (let n = 0; n < 50; n++) w.write(line(1, n, 300));
  w.flushSync();
  await flushed(w);
  // The write in flight when flushSync ran (the first line) may land after the rest.
  t.strictSame(linesOf(file).map((l) => (JSON.parse(l) as { n: number }).n).sort((a, b) => a - b), [...Array(50).keys()], 'each line exactly once');
  renameSync(file, `${file}.1`);
  w.write(line(1, 50, 100));
  w.reopen();
  w.write(line(1, 51, 100));
  await flushed(w);
  w.close();
  const all = [...linesOf(`${file}.1`), ...linesOf(file)].map((l) => (JSON.parse(l) as { n: number }).n);
  t.strictSame(all.sort((a, b) => a - b), [...Array(52).keys()], 'no line lost around the reopen');
  t.strictSame(linesOf(file).map((l) => (JSON.parse(l) as { n: number }).n), [51], 'after reopen, the new file at the path');
});

t.test('a destination that fails (a full disk): reported once, not per write', async (t) => {
  const errors: string[] = [];
  // Every write to /dev/full fails with ENOSPC: a full disk.
  const w = new LineWriter({ file: '/dev/full', onError: (m) => errors.push(m) });
  for (let n = 0; n < 5; n++) {
    w.write(line(1, n, 100));
    await flushed(w);
  }
  t.equal(errors.length, 1, 'one report for the run of failures');
  t.match(errors[0], /\/dev\/full: ENOSPC/);
  w.close();
});

t.test('bytes and strings keep their order; bytes count against the bound like strings', async (t) => {
  const file = join(t.testdir({}), 'mixed.log');
  const errors: string[] = [];
  const w = new LineWriter({ file, onError: (m) => errors.push(m), atomic: false, maxPending: 20_000 });
  for (let n = 0; n < 40; n++) {
    // An access-log batch as bytes the writer keeps, then an event line as a string.
    if (n % 2 === 0) w.writeBytes(Buffer.from(line(1, n, 300) + line(1, n + 1000, 300)));
    else w.write(line(1, n, 300));
  }
  await flushed(w);
  // Past the bound, a batch of bytes is dropped whole and counted by its lines.
  w.writeBytes(Buffer.from(line(1, 99, 25_000)));
  t.equal(errors.length, 1, 'reported at once when nothing is in flight');
  w.write(line(1, 100, 100));
  await flushed(w);
  w.close();
  const ns = linesOf(file).map((l) => (JSON.parse(l) as { n: number }).n);
  const expected = [...[...Array(40).keys()].flatMap((n) => (n % 2 === 0 ? [n, n + 1000] : [n])), 100];
  t.strictSame(ns, expected, 'every line once, in the order written, whatever its form');
  t.equal(errors.length, 1, 'once');
  t.match(errors[0], /1 lines dropped/);
});

t.test('a destination of its own (atomic: false): a batch many pipe buffers long reaches a pipe as handed over', async (t) => {
  const dir = t.testdir({});
  const fifo = join(dir, 'pipe');
  execFileSync('mkfifo', [fifo]);
  // Non-blocking, so that opening does not wait for a writer; read through libuv's poll, not its thread pool.
  const reader = new Socket({ fd: openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
  t.teardown(() => reader.destroy());
  const chunks: Buffer[] = [];
  const all = new Promise<void>((resolve) => {
    reader.on('data', (c: Buffer) => chunks.push(c));
    reader.on('end', () => resolve());
  });
  const w = new LineWriter({ file: fifo, onError: () => undefined, atomic: false });
  const batch = Buffer.from(Array.from({ length: 100 }, (_, n) => line(1, n, 300)).join(''));
  t.ok(batch.length > 4096 * 5, 'a batch several pipe buffers long');
  w.writeBytes(batch);
  await flushed(w);
  w.close();
  await all;
  const got = Buffer.concat(chunks);
  t.ok(got.equals(batch), 'the bytes as handed over');
});
