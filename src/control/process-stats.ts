/**
 * The proxy process's own vital signs for `/metrics`: CPU seconds, resident memory, open file
 * descriptors and event-loop lag. Read at scrape time (the fd count is one readdir of
 * /proc/self/fd, asynchronous; elsewhere it is left out), never on the request path.
 */
import { readdir } from 'node:fs/promises';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

export interface ProcessStats {
  readonly cpuSeconds: number;
  readonly residentBytes: number;
  /** Null where /proc is not there (not Linux). */
  readonly openFds: number | null;
  /** Mean event-loop delay beyond the 10 ms sampling tick since the previous read, in seconds. */
  readonly loopLagSeconds: number;
}

export class ProcessSampler {
  readonly #loop: IntervalHistogram;

  constructor() {
    this.#loop = monitorEventLoopDelay({ resolution: 10 });
    this.#loop.enable();
  }

  async read(): Promise<ProcessStats> {
    const cpu = process.cpuUsage();
    let openFds: number | null = null;
    try {
      openFds = (await readdir('/proc/self/fd')).length;
    } catch {
      openFds = null;
    }
    // The histogram measures the whole delay of each 10 ms tick; lag is what exceeds the tick.
    const mean = this.#loop.count > 0 ? this.#loop.mean : 0;
    this.#loop.reset();
    return {
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      residentBytes: process.memoryUsage.rss(),
      openFds,
      loopLagSeconds: Math.max(0, mean / 1e9 - 0.01),
    };
  }

  close(): void {
    this.#loop.disable();
  }
}
