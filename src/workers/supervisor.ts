/**
 * The worker processes behind the slots: forked, waited for until they listen, replaced under the
 * same id when they die (with backoff when they keep dying), drained or killed at the end.
 */
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EventLog } from '../control/events.js';
import type { Logger } from '../log.js';
import { pino } from 'pino';
import type { DecisionFanOut, InitSent } from './fan-out.js';
import type { BoundAddress, FromWorker } from './protocol.js';
import type { Slot } from './slot.js';

/** How long a worker may take from fork to listening before startup (or its replacement) gives up on it. */
const WORKER_START_TIMEOUT_MS = 30_000;
/** A worker that dies within this long of starting counts as dying again (backoff grows). */
const STABLE_AFTER_MS = 10_000;
const BACKOFF_FIRST_MS = 100;
const BACKOFF_MAX_MS = 10_000;

export type PrimaryState = 'new' | 'starting' | 'running' | 'stopping' | 'stopped';

/** A spawned worker: its bound addresses, its one-line failure, or null when it died first. */
export type SpawnResult = { readonly addresses: readonly BoundAddress[] } | { readonly error: string } | null;

export interface SupervisorOptions {
  readonly slots: readonly Slot[];
  readonly fanOut: DecisionFanOut;
  readonly events: EventLog;
  /** The primary's own logger. */
  readonly logger: Logger;
  /** The root logger, whose destination piped worker output goes to. */
  readonly rootLogger: Logger;
  readonly workerEntry?: string;
  readonly pipeWorkerOutput: boolean;
  readonly state: () => PrimaryState;
  /** The config generation a worker forked now runs. */
  readonly gen: () => number;
  readonly onMessage: (slot: Slot, message: FromWorker) => void;
  /** A worker process is gone (its in-flight counts with it). */
  readonly onExit: () => void;
}

/** A worker's V8 flags: the young-generation cap of the binary's shebang (main.ts says why). */
const WORKER_V8_FLAGS = ['--max-semi-space-size=8'];

export class WorkerSupervisor {
  readonly #options: SupervisorOptions;
  readonly #slots: readonly Slot[];
  readonly #logger: Logger;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#slots = options.slots;
    this.#logger = options.logger;
  }

  /** The script and settings every fork runs. */
  setup(): void {
    cluster.setupPrimary({ exec: this.#options.workerEntry ?? defaultWorkerEntry(), args: [], execArgv: WORKER_V8_FLAGS, silent: this.#options.pipeWorkerOutput });
  }

  /**
   * Forks the process behind `slot` and sends it the running config and snapshot (once `after`
   * resolves). Resolves with its bound addresses, its one-line failure, or null when it died first.
   */
  spawn(slot: Slot, after: Promise<unknown> = Promise.resolve()): Promise<SpawnResult> {
    slot.respawnTimer = null;
    slot.state = 'starting';
    slot.upSince = new Date();
    slot.stats = null;
    const worker = cluster.fork({ HOTWARM_WORKER_ID: String(slot.id), HOTWARM_PRIMARY_PID: String(process.pid) });
    slot.worker = worker;
    if (this.#options.pipeWorkerOutput) this.#pipe(worker);
    slot.gen = this.#options.gen();
    worker.on('message', (message: FromWorker) => {
      if (slot.worker === worker) this.#options.onMessage(slot, message);
    });
    worker.on('exit', (code, signal) => this.#onExit(slot, worker, code, signal));
    // A failed fork (EAGAIN) is an exit too; the error itself must not crash the primary.
    worker.on('error', (err) => this.#logger.error({ err, worker: slot.id }, 'worker error'));
    const ready = slot.next('ready', WORKER_START_TIMEOUT_MS);
    const failed = slot.next('failed', WORKER_START_TIMEOUT_MS);
    // What the worker was given: a member list or a decision that changes before it is ready reaches it then.
    let sent: InitSent | null = null;
    void Promise.all([slot.next('hello', WORKER_START_TIMEOUT_MS), after]).then(([hello]) => {
      if (hello === null) return;
      sent = this.#options.fanOut.init(slot);
    });
    return Promise.race([ready, failed]).then((message) => {
      slot.waiting.get('ready')?.(null);
      slot.waiting.get('failed')?.(null);
      if (message === null) {
        if (!worker.isDead()) worker.process.kill('SIGKILL');
        return null;
      }
      if (message.t === 'failed') return { error: message.error };
      if (slot.worker === worker && this.#options.state() !== 'stopping') {
        slot.state = 'running';
        // It runs the snapshot it was started with (a process before it under this id may have had newer ones).
        slot.appliedSeq = sent?.seq ?? 0;
        this.#options.fanOut.catchUp(slot, sent);
      }
      this.#logger.info({ worker: slot.id, worker_pid: worker.process.pid }, 'worker ready');
      return { addresses: message.addresses };
    });
  }

  /**
   * Every slot's first process, each given its config once `after` resolves. Resolves with every
   * one's result once all listen, or with the first one-line failure at once.
   */
  spawnAll(after: Promise<unknown>): Promise<SpawnResult[] | string> {
    let failed: (error: string) => void = () => undefined;
    const firstFailure = new Promise<string>((resolve) => (failed = resolve));
    const spawns = this.#slots.map((slot) =>
      this.spawn(slot, after).then((result) => {
        if (result === null) failed(`worker ${slot.id} exited before it was listening`);
        else if ('error' in result) failed(result.error);
        return result;
      }),
    );
    return Promise.race([Promise.all(spawns), firstFailure]);
  }

  /** Asks every worker to drain and waits for all to exit; past `graceMs` (0: at once) they are killed. */
  async stop(graceMs: number): Promise<void> {
    const exits = this.#slots.map((slot) => {
      if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
      slot.respawnTimer = null;
      const worker = slot.worker;
      if (worker === null || worker.isDead()) return Promise.resolve();
      slot.state = 'stopping';
      return new Promise<void>((resolve) => {
        worker.once('exit', () => resolve());
        if (graceMs === 0) worker.process.kill('SIGKILL');
        else slot.send({ t: 'shutdown' });
      });
    });
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.kill();
        resolve();
      }, Math.max(graceMs, 1));
    });
    await Promise.race([Promise.all(exits), graceMs === 0 ? new Promise<void>(() => undefined) : expired]);
    clearTimeout(timer);
    await Promise.all(exits);
  }

  /** Every worker ends now, and none is replaced. */
  kill(): void {
    for (const slot of this.#slots) {
      if (slot.respawnTimer !== null) clearTimeout(slot.respawnTimer);
      slot.worker?.process.kill('SIGKILL');
    }
  }

  /** A worker's output, whole lines at a time, into this primary's log destination. */
  #pipe(worker: ClusterWorker): void {
    const stream = (this.#options.rootLogger as unknown as Record<symbol, { write(s: string): void }>)[pino.symbols.streamSym];
    let partial = '';
    worker.process.stdout?.on('data', (chunk: Buffer) => {
      const text = partial + chunk.toString();
      const end = text.lastIndexOf('\n') + 1;
      partial = text.slice(end);
      if (end > 0) stream?.write(text.slice(0, end));
    });
    worker.process.stderr?.on('data', (chunk: Buffer) => process.stderr.write(chunk));
  }

  #onExit(slot: Slot, worker: ClusterWorker, code: number | null, signal: string | null): void {
    for (const resolve of [...slot.waiting.values()]) resolve(null);
    if (slot.worker !== worker) return;
    const lost = slot.inFlight;
    slot.requestsBefore += slot.stats?.requests ?? 0;
    slot.stats = null;
    slot.worker = null;
    this.#options.onExit();
    const state = this.#options.state();
    if (state === 'stopping' || state === 'stopped' || slot.state === 'stopping') return;
    slot.restarts++;
    const lived = Date.now() - slot.upSince.getTime();
    slot.quickDeaths = lived < STABLE_AFTER_MS ? slot.quickDeaths + 1 : 0;
    const delay = slot.quickDeaths === 0 ? 0 : Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (slot.quickDeaths - 1));
    this.#options.events.emit('worker_exit', { worker: slot.id, pid: worker.process.pid, code, signal, lost_requests: lost, restart_in_ms: delay }, 'error');
    if (this.#options.state() !== 'running') return;
    slot.state = 'restarting';
    slot.respawnTimer = setTimeout(() => {
      void this.spawn(slot).then((result) => {
        if (result !== null && 'error' in result) {
          this.#logger.error({ worker: slot.id, error: result.error }, 'worker could not start');
          slot.worker?.process.kill('SIGKILL');
        }
      });
    }, delay);
  }
}

/** dist/src/worker-main.js: beside this file when built, or the build's when run from the sources (tests). */
function defaultWorkerEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const built = resolve(here, '..', 'worker-main.js');
  return existsSync(built) ? built : resolve(here, '..', '..', 'dist', 'src', 'worker-main.js');
}
