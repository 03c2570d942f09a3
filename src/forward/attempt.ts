/**
 * The attempt loop every forwarder shares — HTTP requests, WebSocket upgrades, TCP connections
 * (SPEC §3–4): choose a backend not yet tried for this client, hold it in flight while the
 * attempt runs, bound the connect and the response head with timers, and when an attempt fails
 * before anything reached the client, feed passive detection and decide whether the next
 * backend may be tried. What an attempt *is* (a request through http-proxy, an upgrade, a raw
 * connect) and how the client is answered stay with the forwarder, behind {@link AttemptOwner}.
 */
import type { Socket } from 'node:net';
import { ProxyError, type ErrorCode } from '../errors.js';
import type { UpstreamBackend } from '../upstream/backend.js';
import type { AttemptPool } from '../upstream/contracts.js';

export type { AttemptPool } from '../upstream/contracts.js';

/** A route's own limits; null = the pool's. */
export interface AttemptOverrides {
  readonly retries: number | null;
  readonly responseTimeoutMs: number | null;
}

/** The forwarder's side of the loop. */
export interface AttemptOwner {
  /** Starts an attempt on `backend`, already counted in flight; `retry` after a failed one. */
  attempt(backend: UpstreamBackend, retry: boolean): void;
  /** Drops the current attempt's upstream side (it failed, or a timer fired). */
  abandon(): void;
  /** Whether this client still allows another backend after `error` (not `never`): method, body, client present. */
  mayRetry(error: ProxyError): boolean;
  /** Nothing left to try: answer the client with `error`. */
  giveUp(error: ProxyError): void;
  /** The client is gone: failures are only bookkept, nobody is answered. */
  readonly settled: boolean;
}

/** How an upstream error before the response head is named (HTTP and WebSocket attempts). */
export function classifyUpstreamError(err: NodeJS.ErrnoException, connected: boolean, reusedSocket: boolean): ProxyError {
  const code = err.code ?? '';
  let kind: ErrorCode;
  if (!connected) kind = 'UPSTREAM_CONNECT_FAILED';
  else if (code.startsWith('HPE_')) kind = 'UPSTREAM_BAD_RESPONSE';
  else if (reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE')) kind = 'UPSTREAM_STALE_CONNECTION';
  else kind = 'UPSTREAM_RESET_BEFORE_HEAD';
  return new ProxyError(kind, code === '' ? err.message : code, { cause: err });
}

export class Attempts {
  readonly #pool: AttemptPool;
  readonly #owner: AttemptOwner;
  /** Backends tried for this client, in order (retries never repeat one). */
  readonly tried: UpstreamBackend[] = [];
  /** The backend of the current attempt while it is counted in flight here. */
  #held: UpstreamBackend | null = null;
  /** How the last backend was chosen. */
  via: 'serving' | 'spill' | 'standby' | null = null;
  retries = 0;
  /** The last failure (answered when no backend is left). */
  error: ProxyError | null = null;
  /** Whether the current attempt's connection is established (a failure before that sent nothing). */
  connected = false;
  #connectTimer: NodeJS.Timeout | null = null;
  #responseTimer: NodeJS.Timeout | null = null;
  /** The pool's retries and response_timeout, or the route's overrides (SPEC §10). */
  readonly #retries: number;
  readonly #responseTimeoutMs: number;

  constructor(pool: AttemptPool, owner: AttemptOwner, overrides?: AttemptOverrides) {
    this.#pool = pool;
    this.#owner = owner;
    this.#retries = overrides?.retries ?? pool.retries;
    this.#responseTimeoutMs = overrides?.responseTimeoutMs ?? pool.responseTimeoutMs;
  }

  /** The backend the first attempt goes to instead of a balanced pick (sticky sessions). */
  #preferred: UpstreamBackend | null = null;

  prefer(backend: UpstreamBackend | null): void {
    this.#preferred = backend;
  }

  /** Extra attempts this client may get. */
  get retryBudget(): number {
    return this.#retries;
  }

  get pool(): AttemptPool {
    return this.#pool;
  }

  /** The backend last tried, or null. */
  get last(): UpstreamBackend | null {
    return this.tried[this.tried.length - 1] ?? null;
  }

  get held(): UpstreamBackend | null {
    return this.#held;
  }

  /** The first attempt (`retry` false), or the next one after a failure. */
  next(retry: boolean): void {
    if (!retry && this.#preferred !== null) {
      // A sticky session's backend (the pool checked it serves and has room); retries balance.
      const backend = this.#preferred;
      this.#preferred = null;
      this.via = 'serving';
      this.#run(backend, false);
      return;
    }
    const selection = this.#pool.select(this.tried, retry);
    if (selection.backend === null) {
      const error = retry && this.error !== null ? this.error : new ProxyError(selection.reason === 'all_full' ? 'ALL_BACKENDS_FULL' : 'NO_SERVING_BACKEND');
      this.#owner.giveUp(error);
      return;
    }
    if (selection.via === 'spill') this.#pool.noteSpill(selection.backend);
    this.via = selection.via;
    this.#run(selection.backend, retry);
  }

  #run(backend: UpstreamBackend, retry: boolean): void {
    this.#pool.acquire(backend);
    this.#held = backend;
    this.tried.push(backend);
    this.connected = false;
    this.#owner.attempt(backend, retry);
  }

  /** Bounds the connect of a fresh upstream socket by connect_timeout; a reused one is connected. */
  watchConnect(socket: Socket, isCurrent: () => boolean): void {
    if (!socket.connecting) {
      this.connected = true;
      return;
    }
    this.#connectTimer = setTimeout(onConnectTimer, this.#pool.connectTimeoutMs, this);
    socket.once('connect', () => {
      if (!isCurrent()) return;
      this.connected = true;
      this.#clearConnectTimer();
    });
  }

  /** Bounds the wait for the response head by response_timeout (0 = none). */
  startResponseTimer(): void {
    const timeout = this.#responseTimeoutMs;
    if (timeout > 0) this.#responseTimer = setTimeout(onResponseTimer, timeout, this);
  }

  /** The backend answered (or connected, for TCP): timers stop, its passive failure streak ends. */
  succeeded(): void {
    this.clearTimers();
    if (this.#held !== null) this.#pool.upstreamSucceeded(this.#held);
  }

  /** The current attempt failed before the client got anything: retry elsewhere, or give up. */
  failed(error: ProxyError): void {
    const backend = this.#drop(error);
    if (this.#owner.settled) return;
    if (this.tried.length <= this.#retries && error.retry !== 'never' && this.#owner.mayRetry(error)) {
      this.retries++;
      if (backend !== null) this.#pool.noteRetry(backend, error);
      this.next(true);
      return;
    }
    this.#owner.giveUp(error);
  }

  /**
   * The backend did nothing wrong — our pooled connection was closed under us — so the same
   * backend is asked again, on a fresh connection (the caller closes the idle ones). Once per
   * client, within the retry budget; false when not allowed.
   */
  retrySame(error: ProxyError): boolean {
    const backend = this.#held;
    if (backend === null || this.#owner.settled || this.tried.length > this.#retries || !this.#owner.mayRetry(error)) return false;
    this.#drop(error);
    this.retries++;
    this.#pool.noteRetry(backend, error);
    this.tried.pop();
    this.#run(backend, true);
    return true;
  }

  /** Ends the current attempt: timers, upstream, in-flight count, passive feedback. */
  #drop(error: ProxyError): UpstreamBackend | null {
    this.clearTimers();
    this.#owner.abandon();
    const backend = this.#held;
    this.release();
    if (backend !== null) this.#pool.upstreamFailed(backend, error);
    this.error = error;
    return backend;
  }

  /** Releases the held backend's in-flight count (idempotent). */
  release(): void {
    const backend = this.#held;
    if (backend === null) return;
    this.#held = null;
    this.#pool.release(backend);
  }

  /** Gives the held backend's in-flight count to someone else (a tunnel, which releases it). */
  handOver(): UpstreamBackend | null {
    const backend = this.#held;
    this.#held = null;
    return backend;
  }

  clearTimers(): void {
    this.#clearConnectTimer();
    if (this.#responseTimer !== null) {
      clearTimeout(this.#responseTimer);
      this.#responseTimer = null;
    }
  }

  #clearConnectTimer(): void {
    if (this.#connectTimer !== null) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = null;
    }
  }

  connectTimedOut(): void {
    this.#connectTimer = null;
    this.failed(new ProxyError('UPSTREAM_CONNECT_TIMEOUT', `no connection within ${this.#pool.connectTimeoutMs}ms`));
  }

  responseTimedOut(): void {
    this.#responseTimer = null;
    this.failed(new ProxyError('UPSTREAM_RESPONSE_TIMEOUT', `no response head within ${this.#responseTimeoutMs}ms`));
  }
}

/** Timer callbacks take the attempts as an argument: no closure per client. */
function onConnectTimer(attempts: Attempts): void {
  attempts.connectTimedOut();
}

function onResponseTimer(attempts: Attempts): void {
  attempts.responseTimedOut();
}
