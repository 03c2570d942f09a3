/**
 * Where log lines go (`log.format`, `log.file`): stdout or a file, as JSON or as one readable
 * text line per entry. Every line — events, access log, component logs — passes through the
 * one sink, so `SIGUSR1` (logrotate's `postrotate`) reopens the file for all of them.
 *
 * The text format is made from the JSON line pino and the access log produce: one parse per
 * line, which costs more CPU than JSON output; it is meant for terminals, JSON for production.
 */
import { closeSync, openSync } from 'node:fs';
import type { DestinationStream } from 'pino';
import { LineWriter } from './log-writer.js';

export type LogFormat = 'json' | 'text';

export interface LogSinkOptions {
  readonly format: LogFormat;
  /** An absolute path; null = stdout. */
  readonly file: string | null;
  /** Where a sink's own write or reopen failures are reported (default stderr). */
  readonly onError?: (message: string) => void;
  /**
   * Several processes write here (workers, SPEC §9): each write carries whole lines that the
   * destination takes in one piece, so lines of different processes never interleave within a
   * line, and what is queued is written synchronously at an exit that does not wait.
   */
  readonly shared?: boolean;
}

/**
 * A pino destination that may be a file; `reopen()` opens the file again by name, so lines go
 * to the new file after logrotate moved the old one away. Lines go out asynchronously through
 * a {@link LineWriter}, shared destination or not: one writer, which takes the access log's
 * batches as bytes (`writeBytes`) with no decoding and encoding again.
 */
export class LogSink implements DestinationStream {
  readonly #lines: LineWriter;
  readonly #text: boolean;
  readonly #file: string | null;
  readonly #onError: (message: string) => void;

  constructor(options: LogSinkOptions) {
    this.#text = options.format === 'text';
    this.#file = options.file;
    this.#onError = options.onError ?? ((message) => process.stderr.write(`hotwarm: ${message}\n`));
    const shared = options.shared === true;
    this.#lines = new LineWriter({ file: options.file, onError: this.#onError, atomic: shared });
    if (shared) {
      // An exit that does not wait for `flush` (a second signal, the primary gone) still writes what is queued.
      const lines = this.#lines;
      process.once('exit', () => lines.flushSync());
    }
  }

  /**
   * Opens `file` for appending and closes it again: at startup, so that an unwritable log file
   * is a one-line error on stderr before anything runs, rather than an asynchronous failure.
   * Returns the error message, or null when the file can be written.
   */
  static probe(file: string): string | null {
    try {
      closeSync(openSync(file, 'a'));
      return null;
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      return `cannot open log file ${file}: ${typeof code === 'string' ? code : (err as Error).message}`;
    }
  }

  get file(): string | null {
    return this.#file;
  }

  write(chunk: string): void {
    this.#lines.write(this.#text ? toText(chunk) : chunk);
  }

  /** Whole lines as UTF-8 bytes the sink may keep (the access log's batches). */
  writeBytes(lines: Buffer): void {
    if (this.#text) this.#lines.write(toText(lines.toString('utf8')));
    else this.#lines.writeBytes(lines);
  }

  /** pino's `logger.flush(cb)` lands here. */
  flush(cb: (err?: Error) => void): void {
    this.#lines.flush(() => cb());
  }

  /** Reopens the log file by name (SIGUSR1); a no-op on stdout. */
  reopen(): void {
    if (this.#file === null) return;
    try {
      this.#lines.reopen();
    } catch (err) {
      this.#onError(`log ${this.#file}: ${(err as Error).message}`);
    }
  }
}

/** Keys every JSON line carries that the text line shows in its own places, or not at all. */
const ENVELOPE: ReadonlySet<string> = new Set(['level', 'time', 'pid', 'hostname', 'msg', 'type', 'seq']);

/**
 * JSON lines → `TIME LEVEL what key=value …`, one line each. `what` is the event, `access` or
 * the message. Values with spaces, quotes or `=` are JSON-quoted so a line stays one line and
 * can still be split by a machine; objects and arrays are written as compact JSON.
 */
export function toText(chunk: string): string {
  let out = '';
  let start = 0;
  while (start < chunk.length) {
    let end = chunk.indexOf('\n', start);
    if (end === -1) end = chunk.length;
    const line = chunk.slice(start, end);
    start = end + 1;
    if (line.trim() === '') continue;
    out += `${textLine(line)}\n`;
  }
  return out;
}

function textLine(line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line;
  }
  const level = String(entry.level ?? 'info').toUpperCase().padEnd(5);
  const what = typeof entry.type === 'string' ? entry.type : String(entry.msg ?? '');
  let text = `${String(entry.time ?? '')} ${level} ${what}`;
  if (typeof entry.type === 'string' && typeof entry.msg === 'string' && entry.msg !== entry.type) text += ` ${quote(entry.msg)}`;
  for (const [key, value] of Object.entries(entry)) {
    // `component=events` says nothing an event name does not.
    if (ENVELOPE.has(key) || value === undefined || (key === 'component' && value === 'events')) continue;
    text += ` ${key}=${format(value)}`;
  }
  return text;
}

function format(value: unknown): string {
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return quote(value);
  return JSON.stringify(value);
}

function quote(text: string): string {
  return text === '' || /[\s"=\\]|[^\x20-\x7e]/.test(text) ? JSON.stringify(text) : text;
}
