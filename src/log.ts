/**
 * The pino root logger. Components take `log.child({ component })`. Lines are JSON on stdout
 * (or an injected stream, for tests); writes are asynchronous, so shutdown must `flush`.
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { ExchangeRecord } from './forward/http.js';

export type { Logger };

export interface LogOptions {
  readonly level: LevelWithSilent;
  /** Defaults to an asynchronous stdout destination. */
  readonly destination?: DestinationStream;
}

let lastMs = 0;
let lastStamp = '';

/**
 * pino's isoTime renders a Date per line (2% of the CPU at 10k lines/s); lines within the same
 * millisecond share one rendering.
 */
function isoTimeCached(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastStamp = `,"time":"${new Date(now).toISOString()}"`;
  }
  return lastStamp;
}

export function createLogger(options: LogOptions): Logger {
  // Asynchronous, but no minLength: a quiet proxy must still show its events at once.
  const destination = options.destination ?? pino.destination({ dest: 1, sync: false });
  return pino(
    {
      level: options.level,
      base: { pid: process.pid },
      timestamp: isoTimeCached,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err },
    },
    destination,
  );
}

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
  enabled: boolean;

  constructor(root: Logger, enabled: boolean) {
    this.#stream = (root as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym] as DestinationStream;
    this.#prefix = `,"pid":${process.pid},"type":"access"`;
    this.enabled = enabled;
  }

  request(r: ExchangeRecord): void {
    if (!this.enabled) return;
    let line = `{"level":"info"${isoTimeCached()}${this.#prefix},"listener":"${r.listener}","pool":"${r.pool}","backend":${r.backend === null ? 'null' : `"${r.backend}"`},"method":${JSON.stringify(r.method)},"path":${JSON.stringify(r.path)},"status":${r.status},"duration_ms":${Math.round(r.durationMs * 1000) / 1000},"bytes":${r.bytes},"retries":${r.retries},"client":"${r.client}"`;
    if (r.error !== null) line += `,"error":"${r.error}"`;
    if (r.via !== null && r.via !== 'serving') line += `,"via":"${r.via}"`;
    this.#stream.write(`${line}}\n`);
  }

  /** Tunnels are one line per connection, not per request: the generic path is fine. */
  entry(fields: Readonly<Record<string, unknown>>): void {
    if (!this.enabled) return;
    const body = JSON.stringify(fields);
    this.#stream.write(`{"level":"info"${isoTimeCached()}${this.#prefix}${body.length > 2 ? `,${body.slice(1)}` : '}'}\n`);
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
