/** Captures the proxy's JSON log lines in memory (after pino's test/helper.js `sink()`). */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

export type LogLine = Record<string, unknown> & { level: string; msg?: string };

export class LogSink {
  readonly lines: LogLine[] = [];
  readonly stream = new Writable({
    write: (chunk: Buffer, _enc, done) => {
      for (const text of chunk.toString().split('\n')) {
        if (text.trim() !== '') this.lines.push(JSON.parse(text) as LogLine);
      }
      done();
    },
  });

  logger(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' = 'info'): Logger {
    return createLogger({ level, destination: this.stream });
  }

  /** Access log lines. */
  get access(): LogLine[] {
    return this.lines.filter((l) => l.type === 'access');
  }

  events(type?: string): LogLine[] {
    return this.lines.filter((l) => typeof l.type === 'string' && l.type !== 'access' && (type === undefined || l.type === type));
  }
}
