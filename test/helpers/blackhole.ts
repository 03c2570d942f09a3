/**
 * A backend whose connects hang, for connect_timeout: a child process listens with a backlog of
 * one and answers health checks; `swallow()` then blocks its event loop (nothing is accepted any
 * more) and fills the accept queue, after which the kernel drops new SYNs — a connect neither
 * succeeds nor fails, as with a host that went away. Loopback only, no root, no firewall rules.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';

const CHILD = `
const http = require('node:http');
const server = http.createServer((req, res) => res.end('ok'));
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => process.stdout.write(server.address().port + '\\n'));
// Blocked for at most a minute, then gone: a test killed at its timeout cannot leave it behind.
process.stdin.once('data', () => { process.stdout.write('blocked\\n', () => { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 60000); process.exit(0); }); });
`;

export class Blackhole {
  readonly #child: ChildProcess;
  readonly port: number;
  readonly #fillers: net.Socket[] = [];

  private constructor(child: ChildProcess, port: number) {
    this.#child = child;
    this.port = port;
  }

  static async start(): Promise<Blackhole> {
    const child = spawn(process.execPath, ['-e', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout?.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
      child.once('error', reject);
    });
    return new Blackhole(child, port);
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** From now on connects hang: the loop stops accepting and the queue is filled. */
  async swallow(): Promise<void> {
    const blocked = new Promise((resolve) => this.#child.stdout?.once('data', resolve));
    this.#child.stdin?.write('block\n');
    await blocked; // its event loop stops right after saying so
    for (let i = 0; i < 4; i++) {
      const s = net.connect(this.port, '127.0.0.1');
      s.on('error', () => undefined);
      this.#fillers.push(s);
    }
    // The first connects complete into the queue; wait until one more would hang.
    await new Promise((r) => setTimeout(r, 100));
  }

  async close(): Promise<void> {
    for (const s of this.#fillers) s.destroy();
    if (this.#child.exitCode === null) {
      const exited = new Promise((r) => this.#child.once('exit', r));
      this.#child.kill('SIGKILL');
      await exited;
    }
  }
}
