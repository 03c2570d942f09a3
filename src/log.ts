/**
 * The pino root logger. Components take `log.child({ component })`. Lines are JSON on stdout
 * (or an injected stream, for tests); writes are asynchronous, so shutdown must `flush`.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { ExchangeRecord } from './records.js';

export type { Logger };

export interface LogOptions {
  readonly level: LevelWithSilent;
  /** Defaults to an asynchronous stdout destination. */
  readonly destination?: DestinationStream;
  /** Fields on every line (a worker's `worker: id`). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

let lastSecond = -1;
/** A time the next line must carry instead of now (an event's own time): see {@link logAt}. */
let pinnedMs: number | null = null;
let secondPrefix = '';
let lastMs = -1;
let lastStamp = '';

/**
 * pino's isoTime renders a Date per line (2% of the CPU at 10k lines/s). The date and time up to
 * the second are rendered once a second; lines within the same millisecond share one string.
 */
function isoTimeCached(): string {
  const now = pinnedMs ?? Date.now();
  if (now !== lastMs) {
    lastMs = now;
    const second = Math.floor(now / 1000);
    if (second !== lastSecond) {
      lastSecond = second;
      secondPrefix = `,"time":"${new Date(second * 1000).toISOString().slice(0, 20)}`;
    }
    const ms = now - second * 1000;
    lastStamp = `${secondPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  }
  return lastStamp;
}

/**
 * Runs `write` (one synchronous logger call) with its line's `time` set to `ms`, so an event's
 * log line carries exactly the time the event carries in the admin API.
 */
export function logAt(ms: number, write: () => void): void {
  pinnedMs = ms;
  try {
    write();
  } finally {
    pinnedMs = null;
  }
}

export function createLogger(options: LogOptions): Logger {
  // Asynchronous, but no minLength: a quiet proxy must still show its events at once.
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level,
      base: { pid: process.pid, ...options.fields },
      timestamp: isoTimeCached,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

/**
 * Node's own UTF-8 encoder on Buffer (public since Node 0.x, untyped): `write(string, offset)`
 * parses its arguments first, which cost as much again per line as the encoding.
 */
interface Utf8Writable {
  utf8Write(text: string, offset: number): number;
}

/** A destination that takes whole lines as UTF-8 bytes it may keep (log-sink.ts). */
interface BytesDestination {
  writeBytes(lines: Buffer): void;
}

function newBatch(): Buffer & Utf8Writable {
  return Buffer.allocUnsafeSlow(BATCH_BYTES + MAX_INLINE_LINE) as Buffer & Utf8Writable;
}

/** Access lines are handed to the destination this many bytes at a time (or every 50 ms). */
const BATCH_BYTES = 32_768;
/** Room after a batch for the line that completes it; a longer line is written on its own. */
const MAX_INLINE_LINE = 16_384;

/**
 * The access log (SPEC §8): one JSON line per request or tunnel, at `info`, independent of
 * `log.level` (an operator who sets `level: warn` to quiet events still gets the access log it
 * asked for), written to the root logger's destination in pino's own line format.
 *
 * Request lines are built by hand: the schema is fixed, names come from the validated config and
 * need no escaping, and pino's generic serialiser was the largest single cost of our own on the
 * request path (see scripts/bench/RESULTS.md). Only the request path is escaped.
 */
export class AccessLog {
  readonly #stream: DestinationStream;
  readonly #prefix: string;
  /** `,"worker":N` with workers (last, so a text line reads listener first), else empty. */
  readonly #suffix: string;
  /**
   * Lines not yet handed to the destination, as UTF-8 bytes: see `#append`. A line built by
   * concatenation is a tree of string pieces; kept as a string until the flush, ~130 such trees
   * outlived each young-generation collection and were copied by it.
   */
  #pending = newBatch();
  #used = 0;
  /** The destination's `writeBytes` (our LogSink): a batch is handed over as bytes, not decoded again. */
  readonly #writeBytes: ((lines: Buffer) => void) | null;
  #timer: NodeJS.Timeout | null = null;
  readonly #writePending = (): void => this.flush();
  enabled: boolean;

  /** `worker`: the worker id every line carries (SPEC §9), when running with workers. */
  constructor(root: Logger, enabled: boolean, options: { readonly worker?: number } = {}) {
    this.#stream = (root as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym] as DestinationStream;
    const bytes = (this.#stream as Partial<BytesDestination>).writeBytes;
    this.#writeBytes = typeof bytes === 'function' ? bytes.bind(this.#stream) : null;
    this.#prefix = `,"pid":${process.pid},"type":"access"`;
    this.#suffix = options.worker === undefined ? '' : `,"worker":${options.worker}`;
    this.enabled = enabled;
  }

  request(r: ExchangeRecord): void {
    if (!this.enabled) return;
    let line = `{"level":"info"${isoTimeCached()}${this.#prefix},"listener":"${r.listener}","pool":"${r.pool}","backend":${r.backend === null ? 'null' : `"${r.backend}"`},"method":${JSON.stringify(r.method)},"path":${JSON.stringify(r.path)},"status":${r.status},"duration_ms":${Math.round(r.durationMs * 1000) / 1000},"bytes":${r.bytes},"retries":${r.retries},"client":"${r.client}"`;
    if (r.error !== null) line += `,"error":"${r.error}"`;
    if (r.via !== null && r.via !== 'serving') line += `,"via":"${r.via}"`;
    line += r.protocol === 'http2' ? ',"protocol":"http2"' : ',"protocol":"http1"';
    this.#append(`${line}${this.#suffix}}\n`);
  }

  /** Tunnels are one line per connection, not per request: the generic path is fine. */
  entry(fields: Readonly<Record<string, unknown>>): void {
    if (!this.enabled) return;
    const body = JSON.stringify(fields);
    const inner = body.length > 2 ? `,${body.slice(1, -1)}` : '';
    this.#append(`{"level":"info"${isoTimeCached()}${this.#prefix}${inner}${this.#suffix}}\n`);
  }

  /** Hands the lines collected so far to the destination; called by the flush timer and before exit. */
  flush(): void {
    if (this.#timer !== null) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#used === 0) return;
    // Whole lines: a destination several processes share (workers) writes them in whole-line
    // pieces itself (log-sink.ts, log-writer.ts).
    if (this.#writeBytes !== null) {
      // The destination keeps the batch until written; the next lines go into a new buffer.
      const lines = this.#pending.subarray(0, this.#used);
      this.#pending = newBatch();
      this.#used = 0;
      this.#writeBytes(lines);
      return;
    }
    const lines = this.#pending.toString('utf8', 0, this.#used);
    this.#used = 0;
    this.#stream.write(lines);
  }

  /**
   * Lines are collected and written 32 KiB or 50 ms at a time (NGINX's `access_log … buffer=
   * flush=` idea): each asynchronous write is a round trip through libuv's thread pool, which on a
   * proxy pinned to one core cost about 50 µs a request when every line was its own write (see
   * scripts/bench/RESULTS.md). The timer is unref'd: a pending line never keeps the process up,
   * and shutdown flushes.
   */
  #append(line: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: a line that may not fit goes out on its own.
    if (line.length * 3 > MAX_INLINE_LINE) {
      this.flush();
      this.#stream.write(line);
      return;
    }
    this.#used += this.#pending.utf8Write(line, this.#used);
    if (this.#used >= BATCH_BYTES) this.flush();
    else if (this.#timer === null) {
      this.#timer = setTimeout(this.#writePending, 50);
      this.#timer.unref();
    }
  }
}

/** Writes buffered lines out; called before exit. */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    logger.flush((err) => {
      void err;
      resolve();
    });
  });
}
