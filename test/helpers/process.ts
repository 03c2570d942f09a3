/**
 * Runs the built `hotwarm` binary as a child process, the way an operator does: real argv,
 * real signals, stdout JSON log lines collected, stderr kept for startup errors.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { fileURLToPath } from 'node:url';

/**
 * The bound on waiting for a child's start-up or a log line. A bound, not an expectation: a
 * quiet machine starts the proxy in ~200 ms, a loaded one can take seconds, and a wait that
 * gives up still fails at once when the process exits first.
 */
export const STARTUP_BOUND_MS = 30_000;

export const BIN = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs to completion (bounded). */
export function runBin(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? STARTUP_BOUND_MS);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export type LogLine = Record<string, unknown>;

/** A running proxy process with its log lines parsed as they arrive. */
export class ProxyProcess {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  stderr = '';
  readonly exited: Promise<Exit>;
  #stdout = '';
  #exit: Exit | null = null;
  /** 'line' for every parsed log line, 'exit' once. */
  readonly #events = new EventEmitter();

  constructor(args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: 'pipe' });
    let partial = '';
    this.child.stdout?.on('data', (d: Buffer) => {
      this.#stdout += d;
      partial += d;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        if (line.trim() === '') continue;
        let parsed: LogLine;
        try {
          parsed = JSON.parse(line) as LogLine;
        } catch {
          parsed = { unparsed: line };
        }
        this.lines.push(parsed);
        this.#events.emit('line', parsed);
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d));
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        this.#exit = { code, signal, stdout: this.#stdout, stderr: this.stderr };
        this.#events.emit('exit', this.#exit);
        resolve(this.#exit);
      });
    });
  }

  events(type: string): LogLine[] {
    return this.lines.filter((l) => l.event === type);
  }

  /**
   * Waits for a log line matching `predicate` (already logged, or as it arrives). A predicate that
   * looks at state outside the log (a backend's traffic) is also re-checked every 50 ms. Fails at
   * once if the process exits first, and after `timeoutMs` otherwise, with its stderr.
   */
  waitForLine(predicate: (line: LogLine) => boolean, timeoutMs = STARTUP_BOUND_MS): Promise<LogLine> {
    const found = this.lines.find(predicate);
    if (found !== undefined) return Promise.resolve(found);
    const exited = (exit: Exit): string => `the process exited (code ${exit.code}, signal ${exit.signal}) before a matching log line; stderr: ${exit.stderr}`;
    if (this.#exit !== null) return Promise.reject(new Error(exited(this.#exit)));
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        clearInterval(recheck);
        this.#events.off('line', onLine);
        this.#events.off('exit', onExit);
      };
      const onLine = (line: LogLine): void => {
        if (!predicate(line)) return;
        done();
        resolve(line);
      };
      const onExit = (exit: Exit): void => {
        done();
        reject(new Error(exited(exit)));
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no matching log line within ${timeoutMs}ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      const recheck = setInterval(() => {
        const line = this.lines.find(predicate);
        if (line === undefined) return;
        done();
        resolve(line);
      }, 50);
      this.#events.on('line', onLine);
      this.#events.on('exit', onExit);
    });
  }

  /** The port a listener bound (from its `listening` event). */
  async port(listener: string): Promise<number> {
    const line = await this.waitForLine((l) => l.event === 'listening' && l.listener === listener);
    return Number(String(line.address).split(':').pop());
  }

  signal(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  /** Kills the process if still running (test cleanup). */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}

/** Resident set size of a process in KB (Linux). */
export async function rssKb(pid: number): Promise<number> {
  const { readFileSync } = await import('node:fs');
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
}

/** Open file descriptors of a process (Linux). */
export async function openFds(pid: number): Promise<number> {
  const { readdirSync } = await import('node:fs');
  return readdirSync(`/proc/${pid}/fd`).length;
}
