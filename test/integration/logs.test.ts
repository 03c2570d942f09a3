/**
 * Logs for operators, through the real binary: `log.file` takes every line (stdout stays empty),
 * SIGUSR1 reopens it after logrotate moved it, `log.format: text` writes one readable line per
 * entry, and a log file that cannot be opened is a one-line startup error on stderr.
 */
import { existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { startBackends } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { ProxyProcess, runBin } from '../helpers/process.js';

function config(backend: string, log: Record<string, unknown>): string {
  return stringify({
    log,
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: { app: { health_check: { protocol: 'tcp', interval: '200ms', timeout: '1s', rise: 1, fall: 3 }, backends: [{ name: 'app-1', address: backend }] } },
  });
}

/** Lines of `file` (empty while it does not exist). */
const read = (file: string): string[] => (existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l !== '') : []);

async function waitForLine(file: string, predicate: (line: string) => boolean, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = read(file).find(predicate);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`no matching line in ${file} within ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('log.file: every line in the file, none on stdout; SIGUSR1 reopens it after a rotation', async (t) => {
  const [backend] = await startBackends(['app-1']);
  t.teardown(() => backend?.close());
  const dir = t.testdir({ 'proxy.yaml': config(backend?.address ?? '', { file: 'logs/../hotwarm.log' }) });
  const file = join(dir, 'hotwarm.log');
  const proxy = new ProxyProcess(['-c', 'proxy.yaml'], { cwd: dir });
  t.teardown(() => proxy.kill());

  const listening = JSON.parse(await waitForLine(file, (l) => l.includes('"event":"listening"'))) as { address: string };
  const port = Number(listening.address.split(':').pop());
  t.equal((await request(port, { path: '/one' })).status, 200);
  await waitForLine(file, (l) => l.includes('"path":"/one"'));

  renameSync(file, `${file}.1`);
  t.equal((await request(port, { path: '/two' })).status, 200);
  await waitForLine(`${file}.1`, (l) => l.includes('"path":"/two"'));
  proxy.signal('SIGUSR1');
  await waitForLine(file, (l) => l.includes('log file reopened'));
  t.equal((await request(port, { path: '/three' })).status, 200);
  await waitForLine(file, (l) => l.includes('"path":"/three"'));

  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  t.equal(exit.code, 0);
  t.equal(exit.stdout, '', 'nothing on stdout');
  t.equal(exit.stderr, '');
  const fresh = read(file);
  t.ok(fresh.some((l) => l.includes('"phase":"stopped"')), 'the last shutdown event reached the new file');
  t.notOk(fresh.some((l) => l.includes('"path":"/two"')), 'rotated lines stay in the old file');
  t.ok(read(`${file}.1`).some((l) => l.includes('"path":"/one"')));
});

t.test('log.format: text — one readable line per entry, events and access lines alike', async (t) => {
  const [backend] = await startBackends(['app-1']);
  t.teardown(() => backend?.close());
  const dir = t.testdir({ 'proxy.yaml': config(backend?.address ?? '', { format: 'text', file: 'text.log' }) });
  const file = join(dir, 'text.log');
  const proxy = new ProxyProcess(['-c', 'proxy.yaml'], { cwd: dir });
  t.teardown(() => proxy.kill());
  const listening = await waitForLine(file, (l) => / listening listener=web /.test(l));
  t.match(listening, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z INFO  listening listener=web protocol=http tls=false address=127\.0\.0\.1:\d+$/);
  const port = Number(/address=127\.0\.0\.1:(\d+)/.exec(listening)?.[1]);
  t.equal((await request(port, { path: '/a%20b' })).status, 200);
  const access = await waitForLine(file, (l) => l.includes(' access '));
  t.match(access, /INFO  access listener=web pool=app backend=app-1 method=GET path=\/a%20b status=200 /);
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
  for (const line of read(file)) t.notOk(line.startsWith('{'), `not JSON: ${line.slice(0, 60)}`);
});

t.test('a log file that cannot be opened: one line on stderr, exit 1', async (t) => {
  const dir = t.testdir({ 'proxy.yaml': config('127.0.0.1:9', { file: 'no/such/dir/hotwarm.log' }) });
  const out = await runBin(['-c', 'proxy.yaml'], { cwd: dir });
  t.equal(out.code, 1);
  t.match(out.stderr, /^hotwarm: cannot open log file .*no\/such\/dir\/hotwarm\.log: ENOENT\n$/);
  t.equal(out.stdout, '');
});

t.test('check validates the new log keys with their positions', async (t) => {
  const dir = t.testdir({ 'bad.yaml': 'log:\n  format: pretty\n  file: ""\nlisteners: []\npools: {}\n' });
  const out = await runBin(['check', '-c', 'bad.yaml'], { cwd: dir });
  t.equal(out.code, 1);
  t.match(out.stderr, /^bad\.yaml:2:11: log\.format: /m);
  t.match(out.stderr, /^bad\.yaml:3:9: log\.file: must be a file path/m);
});
