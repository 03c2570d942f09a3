/**
 * `watch: true` over a real file system: a plain rewrite and the Kubernetes ConfigMap swap
 * (`..data` renamed to a new timestamped folder) each give one reload; the same content again
 * gives none; through the binary the reload is the SIGHUP one (applied, or refused whole).
 */
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { stringify } from 'yaml';
import { ConfigWatcher, fileDigest } from '../../src/control/watch.js';
import { startBackends } from '../helpers/backend.js';
import { ProxyProcess } from '../helpers/process.js';

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await settle(10);
  }
}

/** A ConfigMap volume as the kubelet lays it out: proxy.yaml → ..data/proxy.yaml, ..data → ..<stamp>. */
class ConfigMapVolume {
  readonly dir: string;
  #generation = 0;

  constructor(dir: string, content: string) {
    this.dir = dir;
    const first = this.#writeFolder(content);
    symlinkSync(first, join(dir, '..data'));
    symlinkSync('..data/proxy.yaml', join(dir, 'proxy.yaml'));
  }

  get file(): string {
    return join(this.dir, 'proxy.yaml');
  }

  /** The kubelet's update: new folder, new `..data_tmp` link renamed over `..data`, old folder removed. */
  swap(content: string): void {
    const previous = `..2026_11_30_00_00_0${this.#generation}`;
    const next = this.#writeFolder(content);
    symlinkSync(next, join(this.dir, '..data_tmp'));
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    rmSync(join(this.dir, previous), { recursive: true });
  }

  #writeFolder(content: string): string {
    const name = `..2026_11_30_00_00_0${++this.#generation}`;
    mkdirSync(join(this.dir, name));
    writeFileSync(join(this.dir, name, 'proxy.yaml'), content);
    return name;
  }
}

t.test('ConfigWatcher: a ConfigMap swap is one change; the same content again is none', async (t) => {
  const volume = new ConfigMapVolume(t.testdir({}), 'a: 1\n');
  let changes = 0;
  const watcher = new ConfigWatcher({ file: volume.file, onChange: () => changes++ });
  t.teardown(() => watcher.stop());
  await watcher.start();

  volume.swap('a: 2\n');
  await until(() => changes === 1, 3_000, 'the swap to be seen');
  await settle(800);
  t.equal(changes, 1, 'one swap, one change (the burst of events is debounced)');

  volume.swap('a: 2\n');
  await settle(800);
  t.equal(changes, 1, 'a swap to the same content is no change');

  volume.swap('a: 3\n');
  await until(() => changes === 2, 3_000, 'a second swap');
});

t.test('ConfigWatcher: a file replaced by rename or written in place; stop() ends it', async (t) => {
  const dir = t.testdir({ 'proxy.yaml': 'a: 1\n' });
  const file = join(dir, 'proxy.yaml');
  let changes = 0;
  const watcher = new ConfigWatcher({ file, onChange: () => changes++ });
  await watcher.start();
  t.ok(watcher.active);

  writeFileSync(join(dir, 'tmp'), 'a: 2\n');
  renameSync(join(dir, 'tmp'), file);
  await until(() => changes === 1, 3_000, 'the rename');
  writeFileSync(file, 'a: 3\n');
  await until(() => changes === 2, 3_000, 'the in-place write');
  writeFileSync(join(dir, 'other.txt'), 'x');
  await settle(800);
  t.equal(changes, 2, 'another file in the folder changes nothing');

  watcher.stop();
  t.notOk(watcher.active);
  writeFileSync(file, 'a: 4\n');
  await settle(800);
  t.equal(changes, 2, 'stopped: no more changes');
});

t.test('ConfigWatcher: a change made after the config was loaded but before the watch began is seen', async (t) => {
  const dir = t.testdir({ 'proxy.yaml': 'a: 1\n' });
  const file = join(dir, 'proxy.yaml');
  const loaded = await fileDigest(file);
  writeFileSync(file, 'a: 2\n');
  let changes = 0;
  const watcher = new ConfigWatcher({ file, onChange: () => changes++ });
  t.teardown(() => watcher.stop());
  await watcher.start(loaded);
  await until(() => changes === 1, 3_000, 'the earlier change');
  const same = new ConfigWatcher({ file, onChange: () => changes++ });
  t.teardown(() => same.stop());
  await same.start(await fileDigest(file));
  await settle(600);
  t.equal(changes, 1, 'no change since the load: no reload');
});

function proxyConfig(backends: readonly string[], watch: boolean): string {
  return stringify({
    watch,
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: {
        health_check: { protocol: 'tcp', interval: '200ms', timeout: '1s', rise: 1, fall: 3 },
        backends: backends.map((address, i) => ({ name: `app-${i + 1}`, address })),
      },
    },
  });
}

t.test('the binary with watch: true reloads on a ConfigMap swap, exactly like SIGHUP', async (t) => {
  const backends = await startBackends(['app-1', 'app-2']);
  t.teardown(() => Promise.all(backends.map((b) => b.close())));
  const [one, two] = backends.map((b) => b.address) as [string, string];
  const volume = new ConfigMapVolume(t.testdir({}), proxyConfig([one], true));
  const proxy = new ProxyProcess(['-c', volume.file]);
  t.teardown(() => proxy.kill());
  // Generous: a loaded machine can take seconds to start a process.
  await proxy.waitForLine((l) => l.event === 'listening' && l.listener === 'web', 20_000);

  volume.swap(proxyConfig([one, two], true));
  const applied = await proxy.waitForLine((l) => l.event === 'reload', 15_000);
  t.match(applied, { ok: true, version: 2, changes: ['pool app: backend app-2 added (' + two + ', hot, weight 1)'] });
  t.ok(proxy.lines.some((l) => l.msg === 'reloading' && l.signal === 'watch'), 'logged as a reload caused by the watch');

  volume.swap('listeners: [oops\n');
  const refused = await proxy.waitForLine((l) => l.event === 'reload' && l.ok === false, 15_000);
  t.match(refused, { ok: false, version: 2, code: 'CONFIG_INVALID' });
  t.match(String((refused.errors as string[])[0]), /proxy\.yaml:\d+:\d+: \(yaml\): /);

  // watch turned off by a reload: later changes are not followed.
  volume.swap(proxyConfig([one], false));
  await proxy.waitForLine((l) => l.event === 'reload' && l.version === 3, 15_000);
  volume.swap(proxyConfig([one, two], false));
  await settle(1_000);
  t.equal(proxy.events('reload').length, 3, 'no reload after watch: false');

  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
});
