/**
 * Keeps a request body replayable for retries (SPEC §4): a POST whose first backend refuses
 * the connection must reach the next one with its body intact, yet the first attempt must
 * stream (no waiting for the whole body). So the body is recorded as it flows to the first
 * attempt, up to a limit; a retry replays the record and then follows the live stream.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';

export class ReplayableBody {
  readonly #req: IncomingMessage;
  readonly #limit: number;
  #chunks: Buffer[] = [];
  #size = 0;
  #overflowed = false;
  #ended = false;
  #replay: PassThrough | null = null;
  readonly #record = (chunk: Buffer): void => {
    this.#size += chunk.length;
    if (this.#size > this.#limit) {
      this.#overflowed = true;
      this.#chunks = [];
      this.#req.off('data', this.#record);
      return;
    }
    this.#chunks.push(chunk);
  };
  readonly #onEnd = (): void => {
    this.#ended = true;
  };

  /** Must be created before anything reads `req`. */
  constructor(req: IncomingMessage, limit: number) {
    this.#req = req;
    this.#limit = limit;
    req.on('data', this.#record);
    req.once('end', this.#onEnd);
  }

  /** False once the body outgrew the limit: it can no longer be sent again. */
  get replayable(): boolean {
    return !this.#overflowed;
  }

  /**
   * A stream for the next attempt: everything recorded so far, then the rest of the request.
   * Detaches the request from the previous attempt first.
   */
  stream(): Readable {
    if (this.#overflowed) throw new Error('body is not replayable');
    this.#req.unpipe();
    this.#replay?.destroy();
    const replay = new PassThrough();
    this.#replay = replay;
    for (const chunk of this.#chunks) replay.write(chunk);
    if (this.#ended) replay.end();
    else this.#req.pipe(replay);
    return replay;
  }

  dispose(): void {
    this.#req.off('data', this.#record);
    this.#req.off('end', this.#onEnd);
    this.#chunks = [];
    this.#replay?.destroy();
    this.#replay = null;
  }
}
