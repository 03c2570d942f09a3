/**
 * Access lines with workers (SPEC §9), through the real binary: two workers write to one log
 * file or one stdout pipe at the same time, asynchronously. Every line arrives whole (parses),
 * none is lost — not at a SIGUSR1 reopen and not at SIGTERM right after the last answer — and
 * lines carry the worker that wrote them.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { stringify } from 'yaml';
import { startBackends } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { ProxyProcess } from '../helpers/process.js';

const REQUESTS = 400;
const CONCURRENCY = 16;

function config(backend: string, log: Record<string, unknown>): string {
  return stringify({
    workers: 2,
    log: { access: true, ...log },
    shutdown_timeout: '2s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: { app: { health_check: { protocol: 'tcp', interval: '200ms', timeout: '1s', rise: 1, fall: 3 }, backends: [{ name: 'app-1', address: backend }] } },
  });
}

const read = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);

/** Paths long enough (0.3–3 KB) that a batch of lines spans several pipe-sized writes. */
const pathOf = (n: number): string => `/r${n}/${'p'.repeat(300 + ((n * 997) % 2_700))}`;

/** `REQUESTS` requests, `CONCURRENCY` at a time, each on its own connection (spread over the workers); `midway` once half are done. */
async function load(port: number, midway: () => Promise<void>): Promise<number> {
  let next = 0;
  let ok = 0;
  let half: Promise<void> | null = null;
  const client = async (): Promise<void> => {
    while (next < REQUESTS) {
      const n = next++;
      if (n === REQUESTS / 2) half = midway();
      if ((await request(port, { path: pathOf(n), agent: false })).status === 200) ok++;
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  await half;
  return ok;
}

function checkLines(t: Test, lines: readonly string[]): void {
  const parsed: Record<string, unknown>[] = [];
  const torn = lines.filter((l) => {
    try {
      parsed.push(JSON.parse(l) as Record<string, unknown>);
      return false;
    } catch {
      return true;
    }
  });
  t.strictSame(torn.slice(0, 2), [], 'every line parses whole');
  const access = parsed.filter((l) => l.type === 'access');
  t.equal(access.length, REQUESTS, 'one access line per request, none lost');
  t.equal(new Set(access.map((l) => l.path)).size, REQUESTS, 'each request once');
  t.ok(access.every((l) => l.path === pathOf(Number(/^\/r(\d+)\//.exec(String(l.path))?.[1]))), 'paths intact');
  t.strictSame([...new Set(access.map((l) => l.worker))].sort(), [1, 2], 'both workers wrote, each line names its worker');
}

t.test('a shared log file: whole lines from both workers, through a SIGUSR1 reopen and a SIGTERM', async (t) => {
  const [backend] = await startBackends(['app-1']);
  t.teardown(() => backend?.close());
  const dir = t.testdir({ 'proxy.yaml': config(backend?.address ?? '', { file: 'hotwarm.log' }) });
  const file = join(dir, 'hotwarm.log');
  const proxy = new ProxyProcess(['-c', 'proxy.yaml'], { cwd: dir });
  t.teardown(() => proxy.kill());
  let listening: string | undefined;
  while ((listening = read(file).find((l) => l.includes('"type":"listening"'))) === undefined) await new Promise((r) => setTimeout(r, 20));
  const port = Number((JSON.parse(listening) as { address: string }).address.split(':').pop());

  const ok = await load(port, async () => {
    renameSync(file, `${file}.1`);
    proxy.signal('SIGUSR1');
    while (!read(file).some((l) => l.includes('log file reopened'))) await new Promise((r) => setTimeout(r, 20));
  });
  t.equal(ok, REQUESTS, 'every request answered');
  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  t.equal(exit.code, 0);
  t.equal(exit.stderr, '');
  checkLines(t, [...read(`${file}.1`), ...read(file)]);
  t.ok(read(file).some((l) => l.includes('"phase":"stopped"')), 'the shutdown event reached the new file');
});

t.test('a shared stdout pipe: whole lines from both workers, flushed at SIGTERM', async (t) => {
  const [backend] = await startBackends(['app-1']);
  t.teardown(() => backend?.close());
  const dir = t.testdir({ 'proxy.yaml': config(backend?.address ?? '', {}) });
  const proxy = new ProxyProcess(['-c', 'proxy.yaml'], { cwd: dir });
  t.teardown(() => proxy.kill());
  const listening = await proxy.waitForLine((l) => l.type === 'listening' && l.listener === 'web');
  const port = Number(String(listening.address).split(':').pop());
  t.equal(await load(port, async () => undefined), REQUESTS, 'every request answered');
  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  t.equal(exit.code, 0);
  checkLines(t, exit.stdout.split('\n').filter((l) => l !== ''));
});
