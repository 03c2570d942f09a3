/** SPEC §1: the command line, exit codes and startup errors, run as a real child process. */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { ProxyProcess, runBin } from '../helpers/process.js';
import { closeAll, owned } from '../helpers/owned.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NO_STACK = /\n\s+at |Error:/;

t.test('check accepts the shipped proxy.yaml and the full example in docs/', async (t) => {
  const out = await runBin(['check', '-c', join(ROOT, 'proxy.yaml')]);
  t.equal(out.code, 0);
  t.equal(out.stdout, 'ok: 1 listener, 1 pool, 3 backends\n');
  const full = await runBin(['check', '-c', join(ROOT, 'docs/proxy.full.yaml')]);
  t.equal(full.code, 0);
  t.equal(full.stdout, 'ok: 2 listeners, 3 pools, 8 backends\n');
});

t.test('check reports every error as FILE:LINE:COL: path: message and exits 1', async (t) => {
  const dir = t.testdir({
    'bad.yaml': [
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    pool: nope',
      '    bogus: 1',
      'pools:',
      '  app:',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3001, weight: 999 }',
      '',
    ].join('\n'),
  });
  const out = await runBin(['check', '-c', 'bad.yaml'], { cwd: dir });
  t.equal(out.code, 1);
  const lines = out.stderr.trim().split('\n');
  t.ok(lines.length >= 3, `all errors at once (${lines.length})`);
  for (const line of lines) t.match(line, /^bad\.yaml:\d+:\d+: [\w.[\]]+: .+$/, line);
  t.match(out.stderr, /^bad\.yaml:4:\d+: listeners\[0\]\.pool: .*nope/m);
  t.match(out.stderr, /^bad\.yaml:5:5: listeners\[0\]\.bogus: unknown key/m);
  t.match(out.stderr, /^bad\.yaml:9:\d+: pools\.app\.backends\[0\]\.weight: /m);
  t.notMatch(out.stderr, NO_STACK);
  t.equal(out.stdout, '');
});

t.test('run with an invalid config: errors on stderr, exit 1, nothing started', async (t) => {
  const dir = t.testdir({ 'p.yaml': 'listeners: []\npools: {}\n' });
  const out = await runBin(['-c', 'p.yaml'], { cwd: dir });
  t.equal(out.code, 1);
  t.match(out.stderr, /^p\.yaml:\d+:\d+: listeners: /m);
  t.notMatch(out.stderr, NO_STACK);
});

t.test('missing config file: one line, exit 1', async (t) => {
  const out = await runBin(['-c', '/nonexistent/proxy.yaml']);
  t.equal(out.code, 1);
  t.match(out.stderr, /nonexistent\/proxy\.yaml:1:1: \(root\): no config file at \/nonexistent\/proxy\.yaml: .*-c FILE/);
  t.notMatch(out.stderr, /ENOENT/);
  t.equal(out.stderr.trim().split('\n').length, 1);
});

t.test('flags in any order: --config FILE check works like check -c FILE', async (t) => {
  const dir = t.testdir({
    'p.yaml': 'listeners:\n  - { name: web, listen: 127.0.0.1:0, pool: app }\npools:\n  app:\n    backends:\n      - { name: a, address: 127.0.0.1:3001 }\n',
  });
  const out = await runBin(['--config', 'p.yaml', 'check'], { cwd: dir });
  t.equal(out.code, 0, out.stderr);
  t.equal(out.stdout, 'ok: 1 listener, 1 pool, 1 backend\n');
});

t.test('usage, --version and --help', async (t) => {
  const bad = await runBin(['--frobnicate']);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown argument/);
  const version = await runBin(['--version']);
  t.equal(version.code, 0);
  t.match(version.stdout, /^hotwarm \d+\.\d+\.\d+\n$/);
  const help = await runBin(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /usage: hotwarm/);
});

function config(dir: string, listen: string, backend: TestBackend): string {
  const file = join(dir, 'proxy.yaml');
  writeFileSync(
    file,
    [
      'shutdown_timeout: 2s',
      'listeners:',
      `  - { name: web, listen: "${listen}", pool: app }`,
      'pools:',
      '  app:',
      '    health_check: { protocol: tcp, interval: 200ms, timeout: 200ms }',
      `    backends: [{ name: a, address: "${backend.address}" }]`,
      '',
    ].join('\n'),
  );
  return file;
}

t.test('a listener that cannot bind: one line on stderr, exit 1', async (t) => {
  const own = owned(t);
  const blocker = own(net.createServer(), (s) => new Promise((resolve) => s.close(resolve)));
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const port = (blocker.address() as net.AddressInfo).port;
  const [b] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const out = await runBin(['-c', config(t.testdir(), `127.0.0.1:${port}`, b)]);
  t.equal(out.code, 1);
  t.match(out.stderr, /^hotwarm: listener web: cannot listen on 127\.0\.0\.1:\d+: EADDRINUSE\n$/);
});

t.test('serves, logs JSON, and exits 0 on SIGTERM', async (t) => {
  const own = owned(t);
  const [b] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const proxy = new ProxyProcess(['-c', config(t.testdir(), '127.0.0.1:0', b)]);
  t.teardown(() => proxy.kill());
  const port = await proxy.port('web');
  const reply = await request(port);
  t.equal(reply.status, 200);
  t.equal(reply.body, 'a');
  await proxy.waitForLine((l) => l.type === 'access');
  t.match(proxy.lines.find((l) => l.type === 'access'), { listener: 'web', pool: 'app', backend: 'a', method: 'GET', path: '/', status: 200, retries: 0, client: '127.0.0.1' });
  proxy.signal('SIGTERM');
  const exit = await proxy.exited;
  t.equal(exit.code, 0, 'clean shutdown');
  t.ok(proxy.events('shutdown').length >= 1, 'shutdown event flushed before exit');
});

t.test('a failed SIGHUP logs exactly the lines `hotwarm check -c FILE` prints for the same file', async (t) => {
  const own = owned(t);
  const [b] = own((await startBackends(['a'])) as [TestBackend], closeAll);
  const dir = t.testdir();
  config(dir, '127.0.0.1:0', b);
  // Named relative to the working directory, as an operator in the config's folder does.
  const proxy = new ProxyProcess(['-c', 'proxy.yaml'], { cwd: dir });
  t.teardown(() => proxy.kill());
  await proxy.port('web');
  writeFileSync(join(dir, 'proxy.yaml'), [
    'listeners:',
    '  - { name: web, listen: 127.0.0.1:0, pool: app }',
    'pools:',
    '  app:',
    '    backends:',
    `      - { name: a, address: "${b.address}", wieght: 2 }`,
    '',
  ].join('\n'));
  proxy.signal('SIGHUP');
  const event = await proxy.waitForLine((l) => l.type === 'reload');
  const checked = await runBin(['check', '-c', 'proxy.yaml'], { cwd: dir });
  t.equal(checked.code, 1);
  t.strictSame(event.errors, checked.stderr.trim().split('\n'), 'the same lines, the file named as on the command line');
  t.match(event.errors, [/^proxy\.yaml:6:\d+: pools\.app\.backends\[0\]\.wieght: unknown key; did you mean "weight"\?$/]);
  proxy.signal('SIGTERM');
  await proxy.exited;
});
