/**
 * Runs a real Proxy in-process over loopback, built from a plain config object the way an
 * operator writes proxy.yaml (it goes through the real loader), with its log captured.
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { Proxy } from '../../src/proxy.js';
import { Primary } from '../../src/workers/primary.js';
import type { Clock } from '../../src/upstream/clock.js';
import { workerCount } from '../../src/workers/protocol.js';
import { LogSink } from './log-sink.js';
import type { TestBackend } from './backend.js';

export interface Harness {
  readonly proxy: Proxy;
  readonly log: LogSink;
  readonly config: Config;
  /** Bound port of a listener (default: the first). */
  port(listener?: string): number;
  /** Bound port of the admin listener (the config needs an `admin` block). */
  adminPort(): number;
  stop(): Promise<void>;
  /**
   * Brings the host up to date: with workers, waits until every worker has applied the primary's
   * newest snapshot (the primary's decisions reach workers within milliseconds, not at once),
   * then asks each for its in-flight counts and counters (as a read of `/status` does). With one
   * process there is nothing to wait for.
   */
  refresh(): Promise<void>;
}

export interface BackendSpec {
  readonly name: string;
  readonly address: string;
  readonly weight?: number;
  readonly role?: 'hot' | 'warm';
  readonly max_conns?: number;
}

/** Backends as config entries: hot unless named in `warm`. */
export function backendSpecs(backends: readonly TestBackend[], extra: (b: TestBackend, i: number) => Partial<BackendSpec> = () => ({})): BackendSpec[] {
  return backends.map((b, i) => ({ name: b.name, address: b.address, ...extra(b, i) }));
}

/**
 * Fast health checks for tests: http /healthz every 100 ms, rise 1, fall 2. The timeout is long
 * on purpose: a crashed test backend refuses at once, so detection stays fast, while a 100 ms
 * timeout fails healthy backends whenever the event loop is busy (a load test, or a neighbour
 * test file hogging the two cores) and turns their requests into 503s.
 */
export const FAST_CHECKS = { protocol: 'http', path: '/healthz', interval: '100ms', timeout: '1s', rise: 1, fall: 2 } as const;

/** One http listener on an ephemeral loopback port with one pool `app`. */
export function simpleConfig(backends: readonly BackendSpec[], pool: Record<string, unknown> = {}, listener: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app', ...listener }],
    pools: { app: { health_check: FAST_CHECKS, connect_timeout: '200ms', response_timeout: '1s', backends, ...pool } },
  };
}

/** Frequent checks that a busy machine's event-loop lag cannot turn into a backend marked down. */
export const STEADY_CHECKS = { protocol: 'tcp', interval: '100ms', timeout: '500ms', rise: 1, fall: 3 } as const;

/** {@link simpleConfig} with {@link STEADY_CHECKS}: for tests that must not see a backend flap. */
export function steadyConfig(backends: readonly BackendSpec[], pool: Record<string, unknown> = {}, listener: Record<string, unknown> = {}): Record<string, unknown> {
  return simpleConfig(backends, { health_check: STEADY_CHECKS, ...pool }, listener);
}

export interface StartOptions {
  readonly now?: () => number;
  /** Simulated time (manual-clock.ts) for pools, checks, drains, DNS and tunnels; like `now`, one process. */
  readonly clock?: Clock;
  /**
   * Where the config is written, so that `proxy.reload()` re-reads it from there (rewrite it with
   * {@link writeConfig}); relative TLS paths resolve against its folder. Without it the config
   * exists only in memory.
   */
  readonly file?: string;
  /** The environment the loader sees; `admin.token_env` is looked up here and passed on as main.ts does. */
  readonly env?: Readonly<Record<string, string>>;
}

export async function startProxy(config: Record<string, unknown>, options: StartOptions = {}): Promise<Harness> {
  const env = options.env ?? {};
  if (options.file !== undefined) writeConfig(options.file, config);
  const loaded = await parseConfig(stringify(withTestWorkers(config)), options.file ?? 'test.yaml', { env });
  const log = new LogSink();
  const tokenEnv = loaded.admin?.token_env;
  const adminToken = tokenEnv === undefined ? null : (env[tokenEnv] ?? null);
  const workers = workerCount(loaded.workers);
  // With workers the test process is the primary, and the proxy's surface is the same for what
  // the contract scenarios use (ports, pools, events, reload, shutdown): hence the cast.
  const proxy =
    workers > 1 && options.now === undefined && options.clock === undefined
      ? (new Primary(loaded, { logger: log.logger('debug'), env, adminToken, workers, pipeWorkerOutput: true }) as unknown as Proxy)
      : new Proxy(loaded, { logger: log.logger('debug'), env, adminToken, ...(options.now ? { now: options.now } : {}), ...(options.clock ? { clock: options.clock } : {}) });
  await proxy.start();
  return {
    proxy,
    log,
    config: loaded,
    port(listener = loaded.listeners[0]?.name ?? 'web') {
      return proxy.address(listener).port;
    },
    adminPort() {
      return proxy.adminAddress().port;
    },
    stop: () => proxy.shutdown(),
    refresh: async () => {
      if (!(proxy instanceof Primary)) return;
      await proxy.settled();
      await proxy.refresh();
    },
  };
}

/**
 * The least a {@link waitFor} waits before giving up. A wait is bounded, not timed: on a loaded
 * machine (two cores shared with other work) what takes 300 ms on a quiet one can take seconds,
 * and a test that means "soon" asserts the order of events instead.
 */
export const WAIT_FLOOR_MS = 10_000;

/** Polls `predicate` every 10 ms until true, or throws with `what` after `timeoutMs` (at least {@link WAIT_FLOOR_MS}). */
export async function waitFor(predicate: () => boolean, timeoutMs = WAIT_FLOOR_MS, what = 'condition'): Promise<void> {
  const bound = Math.max(timeoutMs, WAIT_FLOOR_MS);
  const deadline = Date.now() + bound;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${bound} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Writes `config` as proxy.yaml text to `file`, atomically (a temporary file renamed over it),
 * as editors and deploy tools do: a reload running while a plain write truncates and refills
 * the file would read half a config and rightly refuse it.
 */
export function writeConfig(file: string, config: Record<string, unknown>): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, stringify(withTestWorkers(config)));
  renameSync(temporary, file);
}

/**
 * Loopback ports that were free a moment ago, all different: for configs that must keep one
 * listen address across reloads, where port 0 would mean a new port. They are drawn below the
 * kernel's ephemeral range, so no port-0 bind or outgoing connection of a test running in
 * parallel can take one between our check and the proxy's bind, and all are held at once while
 * choosing, so two calls cannot hand out the same port (binding port 0 twice in a row can).
 */
export async function freePorts(count: number): Promise<number[]> {
  const [low, high] = portRangeBelowEphemeral();
  const held: net.Server[] = [];
  try {
    while (held.length < count) {
      const port = low + Math.floor(Math.random() * (high - low));
      const server = net.createServer();
      const bound = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (bound) held.push(server);
    }
    return held.map((server) => (server.address() as net.AddressInfo).port);
  } finally {
    await Promise.all(held.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
}

export async function freePort(): Promise<number> {
  const [port] = await freePorts(1);
  return port as number;
}

/** 10,000 ports just below the ephemeral range (Linux default 32768–60999). */
function portRangeBelowEphemeral(): [number, number] {
  let ephemeralLow = 32768;
  try {
    const [first] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
    if (Number(first) > 12000) ephemeralLow = Number(first);
  } catch {
    // Not Linux: keep the default; the port is still checked by binding it.
  }
  return [ephemeralLow - 10000, ephemeralLow];
}

/**
 * How many workers the proxies of a test run have (SPEC §9): 1 unless HOTWARM_TEST_WORKERS says
 * otherwise. The contract suite (workers-contract.test.ts) runs scenario files again with 2.
 */
export function testWorkers(): number {
  const n = Number(process.env.HOTWARM_TEST_WORKERS ?? '1');
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/** `config` with `workers` set to {@link testWorkers} unless the test chose a number itself. */
export function withTestWorkers(config: Record<string, unknown>): Record<string, unknown> {
  return 'workers' in config ? config : { workers: testWorkers(), ...config };
}
