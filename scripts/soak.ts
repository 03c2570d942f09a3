/**
 * `npm run soak [-- --minutes N]`: hotwarm under steady load for N minutes (default 10) while
 * backends are killed with SIGKILL and restarted and the config is reloaded at random. Reports
 * lost requests (GETs: must be 0) and the proxy's memory and descriptors over time (must stay
 * flat). Loopback only, bounded in time, not part of `npm test`. Exits 1 on a lost request or a
 * memory trend.
 */
import http from 'node:http';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDrillBackend } from './bench/backends.js';
import { PROXY_CORE, rssMb, startPinned, waitForPort, type Started } from './bench/tools.js';

const HOTWARM = fileURLToPath(new URL('../src/main.js', import.meta.url));
const LISTEN = 19380;
const HOT = ['hot-1', 'hot-2', 'hot-3', 'hot-4'];
const WARM = ['warm-1', 'warm-2'];
const PORTS: Record<string, number> = Object.fromEntries([...HOT, ...WARM].map((name, i) => [name, 19381 + i]));
const CLIENTS = 16;

const minutes = Number(process.argv[process.argv.indexOf('--minutes') + 1] ?? 10) || 10;
const dir = mkdtempSync(join(tmpdir(), 'hotwarm-soak-'));
const file = join(dir, 'proxy.yaml');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const pick = <T>(list: readonly T[]): T => list[Math.floor(Math.random() * list.length)] as T;

function writeConfig(): void {
  const backends = [
    ...HOT.map((name) => `      - { name: ${name}, address: 127.0.0.1:${PORTS[name]}, weight: ${1 + Math.floor(Math.random() * 3)} }`),
    ...WARM.map((name) => `      - { name: ${name}, address: 127.0.0.1:${PORTS[name]}, role: warm }`),
  ].join('\n');
  writeFileSync(
    file,
    `log: { level: warn, access: false }
listeners:
  - { name: web, listen: 127.0.0.1:${LISTEN}, pool: app }
pools:
  app:
    connect_timeout: 300ms
    response_timeout: ${pick(['3s', '5s'])}
    health_check: { protocol: http, path: /healthz, interval: 500ms, timeout: 400ms, rise: 2, fall: 2 }
    passive: { consecutive_failures: 2 }
    failover: { failback: auto, failback_hold: 3s, slow_start: 2s, warmup: { path: /, requests: 3 } }
    drain_timeout: 5s
    backends:
${backends}
`,
  );
}

async function main(): Promise<number> {
  const backends = new Map<string, Started | null>();
  for (const name of [...HOT, ...WARM]) backends.set(name, await startDrillBackend(name, PORTS[name] as number, dir, 5, 16));
  writeConfig();
  const proxy = startPinned('hotwarm', PROXY_CORE, [HOTWARM, '-c', file], join(dir, 'hotwarm.log'));
  await waitForPort(LISTEN);
  const pid = proxy.child.pid as number;
  process.stdout.write(`soak: ${minutes} min, work dir ${dir}, proxy pid ${pid}\n`);

  let sent = 0;
  let lost = 0;
  let running = true;
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  const clients = Array.from({ length: CLIENTS }, async () => {
    while (running) {
      const ok = await new Promise<boolean>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port: LISTEN, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode === 200 && res.complete));
          res.on('error', () => resolve(false));
        });
        req.setTimeout(10_000, () => req.destroy());
        req.on('error', () => resolve(false));
      });
      sent++;
      if (!ok) lost++;
    }
  });

  const end = Date.now() + minutes * 60_000;
  const samples: { minute: number; rss: number; fds: number; sent: number; lost: number }[] = [];
  const sample = (): void => {
    const s = { minute: (Date.now() - (end - minutes * 60_000)) / 60_000, rss: rssMb(pid), fds: readdirSync(`/proc/${pid}/fd`).length, sent, lost };
    samples.push(s);
    process.stdout.write(`  t=${s.minute.toFixed(1)}m rss ${s.rss.toFixed(1)} MB fds ${s.fds} requests ${sent} lost ${lost}\n`);
  };
  let nextSample = Date.now();
  let actions = 0;
  while (Date.now() < end) {
    if (Date.now() >= nextSample) {
      sample();
      nextSample += 30_000;
    }
    await sleep(3_000 + Math.random() * 5_000);
    actions++;
    const down = [...backends].filter(([, b]) => b === null).map(([name]) => name);
    if (Math.random() < 0.3) {
      writeConfig();
      proxy.child.kill('SIGHUP');
    } else if (down.length > 0 && Math.random() < 0.6) {
      const name = pick(down);
      backends.set(name, await startDrillBackend(name, PORTS[name] as number, dir, 5, 16));
    } else if (down.length < 2) {
      // Keep at least two hot backends alive so the pool never empties (that would be 503s by design).
      const alive = [...backends].filter(([name, b]) => b !== null && !(HOT.includes(name) && HOT.filter((h) => backends.get(h) !== null).length <= 2));
      if (alive.length > 0) {
        const [name, started] = pick(alive);
        await started?.stop('SIGKILL');
        backends.set(name, null);
      }
    }
  }
  sample();
  running = false;
  await Promise.all(clients);
  agent.destroy();
  await proxy.stop('SIGTERM');
  for (const b of backends.values()) await b?.stop('SIGKILL');

  // The first samples include heap warm-up; the trend is judged on the rest (after minute 2, or the
  // second half of a shorter run).
  const warmUp = Math.min(2, minutes / 2);
  const settled = samples.filter((s) => s.minute >= warmUp);
  const first = settled[0] ?? samples[0];
  const last = samples.at(-1);
  const growth = first && last ? last.rss - first.rss : 0;
  process.stdout.write(
    `\nsoak: ${sent} requests, ${lost} lost, ${actions} chaos actions; ` +
      `RSS ${first?.rss.toFixed(1)} → ${last?.rss.toFixed(1)} MB and fds ${first?.fds} → ${last?.fds} from minute ${first?.minute.toFixed(1)} to ${last?.minute.toFixed(1)}\n`,
  );
  return lost === 0 && growth < 20 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
