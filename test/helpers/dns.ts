/**
 * A real DNS server for discovery tests: Debian's dnsmasq on a loopback port, answering only
 * from files the test writes — A/AAAA records from a hosts file (rewritten, then SIGHUP), SRV
 * records from `srv-host` lines (dnsmasq reads those at start only: changing them restarts it
 * on the same port). Names under `hw.test` that are in neither are NXDOMAIN.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts } from './harness.js';

export const DOMAIN = 'hw.test';

export interface SrvRecord {
  readonly name: string;
  readonly target: string;
  readonly port: number;
  readonly priority?: number;
  readonly weight?: number;
}

export function dnsmasqAvailable(): boolean {
  return spawnSync('sh', ['-c', 'command -v dnsmasq || test -x /usr/sbin/dnsmasq']).status === 0;
}

export class DnsServer {
  readonly port: number;
  readonly #dir: string;
  #hosts: Record<string, readonly string[]> = {};
  #srv: readonly SrvRecord[] = [];
  #child: ChildProcess | null = null;

  private constructor(port: number) {
    this.port = port;
    // dnsmasq drops to `nobody` when started as root: its files must be world-readable.
    this.#dir = mkdtempSync(join(tmpdir(), 'hotwarm-dns-'));
    chmodSync(this.#dir, 0o755);
  }

  /** `hosts`: name → addresses; `srv`: SRV records; `port`: a given one, else a free one. */
  static async start(hosts: Record<string, readonly string[]> = {}, srv: readonly SrvRecord[] = [], port?: number): Promise<DnsServer> {
    port ??= ((await freePorts(1)) as [number])[0];
    const server = new DnsServer(port);
    server.#hosts = hosts;
    server.#srv = srv;
    await server.#spawn();
    return server;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** New A/AAAA records; dnsmasq re-reads the hosts file on SIGHUP. */
  async setHosts(hosts: Record<string, readonly string[]>): Promise<void> {
    this.#hosts = hosts;
    this.#writeFiles();
    this.#child?.kill('SIGHUP');
    // Answered from the new file once a lookup of a name shows it (or its absence).
    await this.#waitUntil(async (resolver) => {
      const [name, addresses] = Object.entries(hosts)[0] ?? [];
      if (name === undefined) return true;
      const answer = await resolver.resolve4(name).catch(() => [] as string[]);
      return (addresses ?? []).filter((a) => !a.includes(':')).every((a) => answer.includes(a));
    });
  }

  /** New SRV records: dnsmasq restarts on the same port. */
  async setSrv(srv: readonly SrvRecord[]): Promise<void> {
    this.#srv = srv;
    await this.stop();
    await this.#spawn();
  }

  /** Stops answering (the port refuses) until {@link resume}. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = null;
    if (child === null || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  resume(): Promise<void> {
    return this.#spawn();
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #writeFiles(): void {
    const hostLines = Object.entries(this.#hosts).flatMap(([name, addresses]) => addresses.map((a) => `${a} ${name}`));
    writeFileSync(join(this.#dir, 'hosts'), `${hostLines.join('\n')}\n`, { mode: 0o644 });
    const srvLines = this.#srv.map((r) => `srv-host=${r.name},${r.target},${r.port},${r.priority ?? 0},${r.weight ?? 0}`);
    writeFileSync(join(this.#dir, 'dnsmasq.conf'), `${srvLines.join('\n')}\n`, { mode: 0o644 });
  }

  async #spawn(): Promise<void> {
    this.#writeFiles();
    const child = spawn(
      'dnsmasq',
      [
        '--keep-in-foreground',
        `--conf-file=${join(this.#dir, 'dnsmasq.conf')}`,
        `--port=${this.port}`,
        '--listen-address=127.0.0.1',
        '--bind-interfaces',
        '--no-resolv',
        '--no-hosts',
        '--no-negcache',
        `--addn-hosts=${join(this.#dir, 'hosts')}`,
        `--local=/${DOMAIN}/`,
        '--pid-file=',
        '--log-facility=-',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin` } },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d));
    this.#child = child;
    const exited = new Promise<string>((resolve) => child.once('exit', () => resolve(`dnsmasq exited: ${stderr}`)));
    const ready = this.#waitUntil(async (resolver) => {
      // Any answer, NXDOMAIN included, means it is serving.
      const code = await resolver.resolve4(`ready.${DOMAIN}`).then(
        () => 'ok',
        (err: { code?: string }) => err.code,
      );
      return code === 'ok' || code === 'ENOTFOUND' || code === 'ENODATA';
    });
    const outcome = await Promise.race([ready.then(() => null), exited]);
    if (outcome !== null) throw new Error(outcome);
  }

  async #waitUntil(predicate: (resolver: Resolver) => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
    const resolver = new Resolver({ timeout: 200, tries: 1 });
    resolver.setServers([this.address]);
    const deadline = Date.now() + timeoutMs;
    while (!(await predicate(resolver))) {
      if (Date.now() > deadline) throw new Error(`dns server on ${this.address} not answering as expected`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
