/**
 * One worker id (1..N) of `workers: N` and the process currently behind it: what the primary
 * knows of it, and the one-message-at-a-time channel to it. Supervision is supervisor.ts's.
 */
import type { Worker as ClusterWorker } from 'node:cluster';
import type { WorkerStatus } from '../control/admin-types.js';
import type { FromWorker, ToWorker, WorkerStats } from './protocol.js';

export type SlotState = WorkerStatus['state'];

/** One worker id (1..N) and the process currently behind it. */
export class Slot {
  readonly id: number;
  worker: ClusterWorker | null = null;
  state: SlotState = 'starting';
  upSince = new Date();
  /** The config generation this process runs. */
  gen = 0;
  restarts = 0;
  /** Deaths in a row, each within the supervisor's stable time of its start: the backoff exponent. */
  quickDeaths = 0;
  respawnTimer: NodeJS.Timeout | null = null;
  stats: WorkerStats | null = null;
  /** Requests of earlier processes under this id. */
  requestsBefore = 0;
  lastApplyMs: number | null = null;
  /** The newest snapshot this process said it applied. */
  appliedSeq = 0;
  /** Waiting for this process's next message of a kind. */
  readonly waiting = new Map<FromWorker['t'], (message: FromWorker | null) => void>();

  constructor(id: number) {
    this.id = id;
  }

  send(message: ToWorker): void {
    const worker = this.worker;
    if (worker !== null && worker.isConnected()) worker.send(message);
  }

  /** The next message of kind `t`, or null if the process exits or `timeoutMs` passes first. */
  next<T extends FromWorker['t']>(t: T, timeoutMs: number): Promise<Extract<FromWorker, { t: T }> | null> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => done(null), timeoutMs);
      const done = (message: FromWorker | null): void => {
        clearTimeout(timer);
        this.waiting.delete(t);
        resolve(message as Extract<FromWorker, { t: T }> | null);
      };
      this.waiting.get(t)?.(null);
      this.waiting.set(t, done);
    });
  }

  get inFlight(): number {
    let total = 0;
    for (const [, , n] of this.stats?.inFlight ?? []) total += n;
    return total;
  }
}
