/**
 * Writes whole log lines to a destination several processes share (workers, SPEC §9),
 * asynchronously: no synchronous write on the request path, and no line torn by another
 * process's write.
 *
 * - Every `write()` receives whole lines. They are queued and sent by one `fs.write` at a time
 *   (libuv's thread pool); what arrives meanwhile goes out with the next write, so a busy worker
 *   makes few, large writes (NGINX's `access_log … buffer=` idea, per process).
 * - Each write ends on a line boundary and stays within what the destination writes whole: a
 *   pipe or terminal takes up to PIPE_BUF (4096) bytes atomically; a regular file opened with
 *   O_APPEND takes one write at a time at its end, so its chunks may be up to 64 KiB (as NGINX
 *   workers append their buffers to one access log). A single line longer than that goes alone.
 * - Bounded: at most {@link MAX_PENDING} bytes wait. A destination slower than the lines come
 *   (a full disk, a blocked pipe) makes the newest lines be dropped, counted, and reported once
 *   through `onError` when the queue has room again; the request path never waits for the log.
 * - `flush(cb)` calls back once everything queued so far is written (shutdown, before exit);
 *   `flushSync()` writes what is still queued synchronously, for an exit that cannot wait.
 * - A process that has the destination to itself (`atomic: false`) writes up to 64 KiB at a
 *   time to a pipe as well: no other process's lines can come between its writes.
 * - Lines come as strings (pino's events) or as UTF-8 bytes the writer may keep (the access
 *   log's batches, `writeBytes`): bytes go out as they are, with no decoding and encoding again.
 */
import { close, closeSync, fstatSync, openSync, write, writeSync } from 'node:fs';

/** POSIX PIPE_BUF on Linux: a pipe writes this many bytes or fewer in one piece. */
export const PIPE_ATOMIC = 4096;
/** Per write to a regular file (O_APPEND). */
const FILE_CHUNK = 65_536;
/** Bytes that may wait for the destination; beyond this, new lines are dropped. */
export const MAX_PENDING = 4 * 1024 * 1024;
/** How soon a write the destination refused for now (EAGAIN: a full non-blocking pipe) is tried again. */
const RETRY_MS = 10;

export interface LineWriterOptions {
  /** An absolute path, opened for appending; null = stdout (fd 1). */
  readonly file: string | null;
  readonly onError: (message: string) => void;
  /** Override of {@link MAX_PENDING} (tests). */
  readonly maxPending?: number;
  /**
   * Other processes write to the same destination (workers): each write must stay whole, so a
   * pipe gets at most PIPE_BUF bytes per write. Default true.
   */
  readonly atomic?: boolean;
}

export class LineWriter {
  readonly #file: string | null;
  readonly #onError: (message: string) => void;
  readonly #maxPending: number;
  readonly #atomic: boolean;
  #fd: number;
  #chunk: number;
  /** Lines not yet written out, and their length (characters of a string: ≥ its bytes / 3). */
  #queue: (string | Buffer)[] = [];
  #queued = 0;
  /** Encoded bytes being written, from `#offset` on. */
  #buffer: Buffer | null = null;
  #offset = 0;
  #busy = false;
  /** Where the write in flight ends in `#buffer`: `flushSync()` does not send it twice. */
  #sending = 0;
  #dropped = 0;
  /** Set by a failed write, cleared by the next one that succeeds: a failure is reported once, not per chunk. */
  #failing = false;
  #closed = false;
  #waiters: (() => void)[] = [];
  /** A descriptor replaced by `reopen()` while a write on it was in flight: closed after it. */
  #retired: number | null = null;
  readonly #next = (): void => this.#write();

  constructor(options: LineWriterOptions) {
    this.#file = options.file;
    this.#onError = options.onError;
    this.#maxPending = options.maxPending ?? MAX_PENDING;
    this.#atomic = options.atomic ?? true;
    this.#fd = options.file === null ? 1 : openSync(options.file, 'a');
    this.#chunk = this.#chunkFor(this.#fd);
  }

  /** Queues whole lines (each ending in `\n`); drops them when {@link MAX_PENDING} bytes wait already. */
  write(lines: string): void {
    this.#enqueue(lines);
  }

  /** {@link write} for lines already encoded as UTF-8; the writer keeps `lines`, the caller must not reuse it. */
  writeBytes(lines: Buffer): void {
    this.#enqueue(lines);
  }

  #enqueue(lines: string | Buffer): void {
    // Never onto a closed descriptor: its number may belong to another file by now.
    if (this.#closed) return;
    if (this.#pending() + lines.length > this.#maxPending) {
      this.#dropped += countLines(lines);
      // Nothing in flight (a single batch larger than the bound): no write will end to report it.
      if (!this.#busy) this.#reportDropped();
      return;
    }
    this.#queue.push(lines);
    this.#queued += lines.length;
    if (!this.#busy) this.#write();
  }

  /** Calls back once every line queued before this call is written (or given up on). */
  flush(cb: () => void): void {
    if (!this.#busy && this.#queued === 0) queueMicrotask(cb);
    else this.#waiters.push(cb);
  }

  /**
   * For an exit that cannot wait: what is still queued goes out now, synchronously. A write
   * already in flight is not repeated; it may land after these lines.
   */
  flushSync(): void {
    if (this.#busy && this.#buffer !== null) this.#offset = Math.max(this.#offset, this.#sending);
    const rest = this.#take();
    let offset = 0;
    while (offset < rest.length) {
      try {
        offset += writeSync(this.#fd, rest, offset, Math.min(this.#chunk, rest.length - offset));
      } catch {
        return;
      }
    }
  }

  /** Opens the file again by name (logrotate moved it away); a no-op on stdout. */
  reopen(): void {
    if (this.#file === null) return;
    const fd = openSync(this.#file, 'a');
    const old = this.#fd;
    this.#fd = fd;
    this.#chunk = this.#chunkFor(fd);
    // The write in flight (on `old`, unless an earlier reopen retired another) closes it when done.
    if (this.#busy && this.#retired === null) this.#retired = old;
    else close(old, () => undefined);
  }

  /** Closes the file (stdout stays open) once what is queued is written; later lines are dropped. */
  close(): void {
    this.flush(() => {
      this.#closed = true;
      if (this.#file !== null) closeSync(this.#fd);
    });
  }

  #pending(): number {
    return this.#queued + (this.#buffer === null ? 0 : this.#buffer.length - this.#offset);
  }

  /** Everything not yet written, as bytes; the queue is emptied. */
  #take(): Buffer {
    const head = this.#buffer === null ? Buffer.alloc(0) : this.#buffer.subarray(this.#offset);
    const queue = this.#queue;
    // The common case, one batch of access lines, goes out as it came.
    const only = queue.length === 1 ? queue[0] : undefined;
    const queued = queue.length === 0 ? Buffer.alloc(0) : only !== undefined && typeof only !== 'string' ? only : Buffer.concat(queue.map(toBytes));
    this.#queue = [];
    this.#queued = 0;
    this.#buffer = null;
    this.#offset = 0;
    return head.length === 0 ? queued : Buffer.concat([head, queued]);
  }

  #write(): void {
    if (this.#buffer === null || this.#offset >= this.#buffer.length) {
      this.#buffer = null;
      this.#offset = 0;
      if (this.#queued === 0) {
        this.#idle();
        return;
      }
      this.#buffer = this.#take();
    }
    const buffer = this.#buffer;
    const start = this.#offset;
    // Whole lines within the chunk; a longer line alone.
    let end = buffer.lastIndexOf(0x0a, Math.min(buffer.length, start + this.#chunk) - 1) + 1;
    if (end <= start) end = buffer.indexOf(0x0a, start) + 1 || buffer.length;
    this.#busy = true;
    this.#sending = end;
    const fd = this.#fd;
    write(fd, buffer, start, end - start, null, (err, written) => {
      if (this.#retired !== null && this.#retired === fd) {
        close(fd, () => undefined);
        this.#retired = null;
      }
      if (err !== null) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          setTimeout(this.#next, RETRY_MS);
          return;
        }
        // This chunk is lost (disk full, a closed pipe): said once until a write succeeds again.
        if (!this.#failing) this.#onError(`log ${this.#file ?? 'stdout'}: ${err.message}`);
        this.#failing = true;
        this.#offset = end;
      } else {
        this.#failing = false;
        // A short write (a nearly full disk) continues where it stopped.
        this.#offset = start + written;
      }
      this.#write();
    });
  }

  #idle(): void {
    this.#busy = false;
    this.#reportDropped();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const cb of waiters) cb();
  }

  #reportDropped(): void {
    if (this.#dropped === 0) return;
    this.#onError(`log ${this.#file ?? 'stdout'}: the destination is slower than the log; ${this.#dropped} lines dropped`);
    this.#dropped = 0;
  }

  /** How much one write may carry to `fd` and stay whole: see the module comment. */
  #chunkFor(fd: number): number {
    if (!this.#atomic) return FILE_CHUNK;
    try {
      return fstatSync(fd).isFile() ? FILE_CHUNK : PIPE_ATOMIC;
    } catch {
      return PIPE_ATOMIC;
    }
  }
}

function toBytes(lines: string | Buffer): Buffer {
  return typeof lines === 'string' ? Buffer.from(lines) : lines;
}

function countLines(text: string | Buffer): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
