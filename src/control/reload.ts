/**
 * Reload (SPEC §6): load → diff → apply, all at once or not at all.
 *
 * 1. The file is loaded and validated; an invalid file changes nothing.
 * 2. The target prepares everything that can fail or take time — binding new addresses,
 *    checking new backends — and undoes it itself if any part fails.
 * 3. The target swaps the prepared state in, synchronously: no request sees half a reload.
 *
 * Reloads never overlap: one asked for while another runs is coalesced into a single reload
 * after it, which every caller who asked meanwhile shares (SIGHUP and `POST /reload` alike).
 */
import { diffConfig, type ReloadPlan } from '../config/diff.js';
import type { Config } from '../config/schema.js';
import { ConfigError, ProxyError, ReloadError, formatIssue, type ErrorCode } from '../errors.js';
import type { EventLog } from './events.js';

/** The outcome of one reload, as `/status` and `POST /reload` show it. */
export interface ReloadResult {
  readonly ok: boolean;
  /** The config version running after this reload (unchanged when it failed). */
  readonly version: number;
  /** When it finished (ISO time). */
  readonly at: string;
  /** What changed, one short line each (empty when nothing changed or it failed). */
  readonly changes: readonly string[];
  /** Why it failed: `FILE:LINE:COL: path: message` per config error, or the bind failure. */
  readonly errors: readonly string[];
}

/** What a reload needs of the proxy. */
export interface ReloadTarget<P> {
  readonly config: Config;
  /** False before start and once shutdown has begun: a reload then changes nothing. */
  readonly running: boolean;
  /** Step 2. Throws after undoing itself (a {@link ReloadError} or ProxyError says why). */
  prepare(next: Config, plan: ReloadPlan): Promise<P>;
  /** Step 3: synchronous, cannot fail. */
  commit(prepared: P): void;
  /** A prepared reload that will not be committed (shutdown began while it was prepared). */
  abort(prepared: P): void;
}

export interface ReloadCounts {
  readonly ok: number;
  readonly failed: number;
}

export class Reloader<P> {
  readonly #target: ReloadTarget<P>;
  readonly #events: EventLog;
  readonly #env: Readonly<Record<string, string | undefined>> | undefined;
  #version = 1;
  #last: ReloadResult | null = null;
  #counts: ReloadCounts = { ok: 0, failed: 0 };
  #running: Promise<ReloadResult> | null = null;
  #queued: Promise<ReloadResult> | null = null;

  constructor(target: ReloadTarget<P>, events: EventLog, env?: Readonly<Record<string, string | undefined>>) {
    this.#target = target;
    this.#events = events;
    this.#env = env;
  }

  /** 1 at start, +1 for each reload applied (one that changed nothing included: `changes` says so). */
  get version(): number {
    return this.#version;
  }

  /** The last reload's result, or null before the first. */
  get last(): ReloadResult | null {
    return this.#last;
  }

  get counts(): ReloadCounts {
    return this.#counts;
  }

  /** Reloads now, or — while a reload runs — once more after it (one reload for all who ask meanwhile). */
  reload(): Promise<ReloadResult> {
    if (this.#running === null) return this.#begin();
    this.#queued ??= this.#running.then(() => {
      this.#queued = null;
      return this.#begin();
    });
    return this.#queued;
  }

  #begin(): Promise<ReloadResult> {
    const running = this.#run();
    this.#running = running;
    // Registered before any queued reload's continuation, so that one finds the way clear.
    void running.then(() => {
      if (this.#running === running) this.#running = null;
    });
    return running;
  }

  async #run(): Promise<ReloadResult> {
    const target = this.#target;
    try {
      if (!target.running) throw new ReloadError('RELOAD_FAILED', ['the proxy is not running']);
      const next = await this.#load(target.config);
      const plan = diffConfig(target.config, next);
      const prepared = await target.prepare(next, plan);
      if (!target.running) {
        target.abort(prepared);
        throw new ReloadError('RELOAD_FAILED', ['the proxy began shutting down']);
      }
      target.commit(prepared);
      this.#version++;
      return this.#finish({ ok: true, version: this.#version, at: now(), changes: plan.summary, errors: [] }, null);
    } catch (err) {
      const failure = asReloadError(err);
      return this.#finish({ ok: false, version: this.#version, at: now(), changes: [], errors: failure.errors }, failure.code);
    }
  }

  async #load(current: Config): Promise<Config> {
    // Loaded on the first reload: a worker (which is handed its config) never loads zod or yaml.
    const { loadConfig } = await import('../config/load.js');
    try {
      // Named as on the command line: the errors read as `hotwarm check -c` prints them.
      return await loadConfig(current.file, { name: current.source, ...(this.#env === undefined ? {} : { env: this.#env }) });
    } catch (err) {
      if (err instanceof ConfigError) throw new ReloadError('CONFIG_INVALID', err.issues.map(formatIssue));
      throw err;
    }
  }

  #finish(result: ReloadResult, code: ErrorCode | null): ReloadResult {
    this.#last = Object.freeze(result);
    if (result.ok) {
      this.#counts = { ...this.#counts, ok: this.#counts.ok + 1 };
      this.#events.emit('reload', { ok: true, version: result.version, changes: result.changes });
    } else {
      this.#counts = { ...this.#counts, failed: this.#counts.failed + 1 };
      this.#events.emit('reload', { ok: false, version: result.version, code, errors: result.errors }, 'error');
    }
    return this.#last;
  }
}

function asReloadError(err: unknown): ReloadError {
  if (err instanceof ReloadError) return err;
  if (err instanceof ProxyError) return new ReloadError(err.code, [err.message]);
  return new ReloadError('RELOAD_FAILED', [err instanceof Error ? err.message : String(err)]);
}

const now = (): string => new Date().toISOString();
