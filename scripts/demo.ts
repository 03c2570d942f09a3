/**
 * `npm run demo`: hotwarm over five local demo backends (3 hot, 2 warm) under light load.
 * A hot backend crashes, a warm one is warmed up and takes over, the hot one comes back, and
 * after the failback hold the warm is released. Prints a timeline and exits 0 when no request
 * failed. `--keep` also starts the admin API (loopback, no token) and leaves everything running
 * afterwards to explore, with the dashboard URL printed. `--backends` only starts the backends
 * the shipped proxy.yaml names (app-1 on 3001, app-2 on 3002, spare-1 on 3101) until Ctrl-C, to
 * run `hotwarm -c proxy.yaml` against.
 */
import http from 'node:http';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load.js';
import type { ProxyEvent } from '../src/control/events.js';
import { createLogger, flushLogger } from '../src/log.js';
import { Proxy } from '../src/proxy.js';

const KEEP = process.argv.includes('--keep');
const BACKENDS_ONLY = process.argv.includes('--backends');
/** The backends of the shipped proxy.yaml. */
const QUICK_START_PORTS = { 'app-1': 3001, 'app-2': 3002, 'spare-1': 3101 } as const;
const NAMES = ['app-1', 'app-2', 'app-3', 'spare-1', 'spare-2'] as const;
const CLIENTS = 6;

class DemoBackend {
  readonly name: string;
  port = 0;
  served = 0;
  #server: http.Server | null = null;
  readonly #sockets = new Set<Socket>();

  constructor(name: string) {
    this.name = name;
  }

  async start(): Promise<void> {
    const server = http.createServer((req, res) => {
      if (req.url === '/healthz') {
        res.end('ok');
        return;
      }
      if (req.headers['user-agent'] !== 'hotwarm-warmup') this.served++;
      setTimeout(() => res.end(`hello from ${this.name}: ${req.method ?? ''} ${req.url ?? ''}\n`), 5);
    });
    server.on('connection', (s: Socket) => {
      this.#sockets.add(s);
      s.once('close', () => this.#sockets.delete(s));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.#server = server;
  }

  /** Like a crashed process: the port closes and open connections are reset. */
  async crash(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    for (const s of this.#sockets) s.resetAndDestroy();
    await new Promise<void>((resolve) => server?.close(() => resolve()) ?? resolve());
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** `--backends`: the quick start's backends on their fixed ports, until Ctrl-C or SIGTERM. */
async function backendsOnly(): Promise<number> {
  const backends = Object.entries(QUICK_START_PORTS).map(([name, port]) => {
    const b = new DemoBackend(name);
    b.port = port;
    return b;
  });
  for (const b of backends) {
    await b.start();
    process.stdout.write(`${b.name} on http://127.0.0.1:${b.port}/ (health: /healthz)\n`);
  }
  process.stdout.write('now run `npx hotwarm -c proxy.yaml` in another terminal; Ctrl-C here stops the backends\n');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  for (const b of backends) await b.crash();
  return 0;
}

async function main(): Promise<number> {
  if (BACKENDS_ONLY) return backendsOnly();
  const backends = NAMES.map((n) => new DemoBackend(n));
  for (const b of backends) await b.start();
  const dir = mkdtempSync(join(tmpdir(), 'hotwarm-demo-'));
  const file = join(dir, 'proxy.yaml');
  const yaml = `# written by scripts/demo.ts
${KEEP ? 'admin: { listen: 127.0.0.1:0 }\n' : ''}log: { level: info, access: false }
shutdown_timeout: 2s
listeners:
  - { name: web, listen: 127.0.0.1:0, pool: app }
pools:
  app:
    connect_timeout: 500ms
    response_timeout: 5s
    health_check: { protocol: http, path: /healthz, interval: 250ms, timeout: 200ms, rise: 2, fall: 2 }
    passive: { consecutive_failures: 2 }
    failover: { failback: auto, failback_hold: 2s, slow_start: 2s, warmup: { path: /, requests: 5 }, spill: true }
    drain_timeout: 5s
    backends:
${backends.map((b) => `      - { name: ${b.name}, address: 127.0.0.1:${b.port}, role: ${b.name.startsWith('spare') ? 'warm' : 'hot'} }`).join('\n')}
`;
  writeFileSync(file, yaml);
  const logFile = join(dir, 'hotwarm.log');
  const logger = createLogger({ level: 'info', destination: (await import('pino')).pino.destination({ dest: logFile, sync: false }) });
  const proxy = new Proxy(await parseConfig(yaml, file), { logger });
  const t0 = Date.now();
  const at = (ms = Date.now() - t0): string => `${(ms / 1000).toFixed(2).padStart(6)}s`;
  const timeline: string[] = [];
  const note = (line: string): void => {
    timeline.push(line);
    process.stdout.write(`${line}\n`);
  };
  proxy.events.subscribe((e: ProxyEvent) => note(`${at()}  ${describe(e)}`));

  process.stdout.write(`hotwarm demo — config ${file}, log ${logFile}\n\n`);
  await proxy.start();
  const port = proxy.address('web').port;
  if (KEEP) process.stdout.write(`\ndashboard: http://127.0.0.1:${proxy.adminAddress().port}/ (watch the swap live)\n\n`);

  let failed = 0;
  let sent = 0;
  let running = true;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const clients = Array.from({ length: CLIENTS }, async () => {
    while (running) {
      const ok = await get(port, agent);
      sent++;
      if (!ok) failed++;
      await sleep(20);
    }
  });

  const snapshot = (): number[] => backends.map((b) => b.served);
  const phases: { name: string; from: number[]; to: number[] }[] = [];
  const phase = async (name: string, work: () => Promise<void>): Promise<void> => {
    const from = snapshot();
    await work();
    phases.push({ name, from, to: snapshot() });
  };

  const app2 = backends[1] as DemoBackend;
  const spare1 = backends[3] as DemoBackend;
  let crashAt = 0;
  let firstWarmServed = 0;
  await phase('steady', () => sleep(2_000));
  await phase('app-2 down', async () => {
    note(`${at()}  ** crashing app-2 (port closed, connections reset)`);
    crashAt = Date.now();
    const before = spare1.served;
    await app2.crash();
    await waitUntil(() => spare1.served > before, 5_000);
    firstWarmServed = Date.now() - crashAt;
    await sleep(2_000);
  });
  await phase('app-2 back', async () => {
    note(`${at()}  ** restarting app-2`);
    await app2.start();
    await waitUntil(() => proxy.events.recent().some((e) => e.type === 'released'), 10_000);
    await sleep(1_000);
  });
  running = false;
  await Promise.all(clients);
  agent.destroy();

  process.stdout.write(`\nrequests per backend (warm-up requests not counted)\n`);
  process.stdout.write(`  ${'phase'.padEnd(12)}${NAMES.map((n) => n.padStart(9)).join('')}\n`);
  for (const p of phases) {
    process.stdout.write(`  ${p.name.padEnd(12)}${p.to.map((n, i) => String(n - (p.from[i] ?? 0)).padStart(9)).join('')}\n`);
  }
  process.stdout.write(`\ncrash → first request served by the warm: ${firstWarmServed} ms\n`);
  process.stdout.write(`requests: ${sent} sent, ${failed} failed\n`);

  if (KEEP) {
    const admin = proxy.adminAddress().port;
    process.stdout.write(`\n--keep: proxy on http://127.0.0.1:${port}/, dashboard on http://127.0.0.1:${admin}/ — Ctrl-C to stop\n`);
    await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
  }
  await proxy.shutdown();
  await flushLogger(logger);
  for (const b of backends) await b.crash();
  return failed === 0 ? 0 : 1;
}

function describe(e: ProxyEvent): string {
  switch (e.type) {
    case 'backend_down':
      return `backend_down  ${String(e.backend)} (${String(e.source)}: ${lastEvidence(e)})`;
    case 'backend_up':
      return `backend_up    ${String(e.backend)}`;
    case 'promoted':
      return `promoted      ${String(e.backend)} covers ${String(e.covers)}`;
    case 'released':
      return `released      ${String(e.backend)} (${String(e.reason)}, ${String(e.covered)} is back)`;
    case 'listening':
      return `listening     ${e.admin === true ? 'admin API' : String(e.listener)} on ${String(e.address)}`;
    default:
      return `${e.type.padEnd(13)} ${JSON.stringify({ ...e, seq: undefined, time: undefined, type: undefined })}`;
  }
}

function lastEvidence(e: ProxyEvent): string {
  const evidence = e.evidence as { detail: string }[] | undefined;
  return evidence?.at(-1)?.detail ?? 'no evidence';
}

function get(port: number, agent: http.Agent): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 && res.complete));
      res.on('error', () => resolve(false));
    });
    req.on('error', () => resolve(false));
    req.setTimeout(5_000, () => req.destroy());
  });
}

async function waitUntil(predicate: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate() && Date.now() < deadline) await sleep(10);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
