/**
 * Active health probes (SPEC §4): `http` — GET path, success is a status in expect_status;
 * `tcp` — the connection opens. Each is bounded by the check timeout, uses its own connection
 * (never the traffic pool, so a check measures the backend, not our idle sockets), and always
 * resolves — a probe never throws.
 */
import http from 'node:http';
import net from 'node:net';
import { formatProxyHeader } from '../core/proxy-header.js';
import { ProxyHeaderAgent } from './agent.js';
import type { HealthCheckConfig } from '../config/schema.js';

export interface ProbeResult {
  readonly ok: boolean;
  /** `200`, `503`, `ECONNREFUSED`, `timeout after 1000ms`. */
  readonly detail: string;
  readonly durationMs: number;
}

export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly address: string;
  /** The pool sends the PROXY protocol: checks carry it too (the backend expects it first). */
  readonly sendProxyProtocol?: 'off' | 'v1' | 'v2';
}

/** A check's own connection: `PROXY UNKNOWN` (v1) or LOCAL (v2) — the backend keeps the peer address. */
function checkHeader(target: ProbeTarget): Buffer | null {
  const version = target.sendProxyProtocol ?? 'off';
  return version === 'off' ? null : formatProxyHeader(version, null);
}

/** A timer this much later than asked means our own event loop was held up (GC, a busy host). */
const STALL_MS = 20;

/**
 * A check's timeout, counted in time this process could actually wait. When the timer fires late
 * because our event loop was blocked, the reply may be sitting unread in the socket — timers run
 * before I/O in a loop turn — so the probe gets the lost time once more, and the verdict waits
 * for the I/O of that turn (setImmediate). A backend is not marked down for our own stall.
 */
class Deadline {
  #timer: NodeJS.Timeout;
  #immediate: NodeJS.Immediate | null = null;
  #forgiven = false;
  #due: number;
  readonly #expire: () => void;

  constructor(timeoutMs: number, expire: () => void) {
    this.#expire = expire;
    this.#due = performance.now() + timeoutMs;
    this.#timer = setTimeout(this.#fire, timeoutMs);
  }

  readonly #fire = (): void => {
    const late = performance.now() - this.#due;
    if (late > STALL_MS && !this.#forgiven) {
      this.#forgiven = true;
      this.#due += late;
      this.#timer = setTimeout(this.#fire, late);
      return;
    }
    this.#immediate = setImmediate(this.#expire);
  };

  clear(): void {
    clearTimeout(this.#timer);
    if (this.#immediate !== null) clearImmediate(this.#immediate);
  }
}

export function probe(target: ProbeTarget, check: HealthCheckConfig): Promise<ProbeResult> {
  return check.protocol === 'http' ? probeHttp(target, check) : probeTcp(target, check.timeout);
}

function probeTcp(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const header = checkHeader(target);
    if (header !== null) socket.write(header);
    const finish = (ok: boolean, detail: string): void => {
      deadline.clear();
      socket.destroy();
      resolve({ ok, detail, durationMs: performance.now() - started });
    };
    const deadline = new Deadline(timeoutMs, () => finish(false, `timeout after ${timeoutMs}ms`));
    socket.once('connect', () => finish(true, 'connected'));
    socket.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
  });
}

function probeHttp(target: ProbeTarget, check: HealthCheckConfig): Promise<ProbeResult> {
  const started = performance.now();
  const header = checkHeader(target);
  // A check's connection is its own (`connection: close`); with a PROXY header, an agent that writes it first.
  const agent = header === null ? false : new ProxyHeaderAgent(header);
  return new Promise((resolve) => {
    let settled = false;
    const req = http.request({
      host: target.host,
      port: target.port,
      method: 'GET',
      path: check.path ?? '/',
      agent,
      headers: { host: check.host ?? target.address, 'user-agent': 'hotwarm-health-check', connection: 'close' },
    });
    const finish = (ok: boolean, detail: string): void => {
      if (settled) return;
      settled = true;
      deadline.clear();
      req.destroy();
      if (agent !== false) agent.destroy();
      resolve({ ok, detail, durationMs: performance.now() - started });
    };
    const deadline = new Deadline(check.timeout, () => finish(false, `timeout after ${check.timeout}ms`));
    req.once('response', (res) => {
      const status = res.statusCode ?? 0;
      res.on('error', () => undefined);
      res.resume();
      finish(status >= check.expect_status.min && status <= check.expect_status.max, String(status));
    });
    req.once('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message));
    req.end();
  });
}
