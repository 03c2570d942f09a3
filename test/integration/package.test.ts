/**
 * Installing hotwarm as operators do: the `npm pack` tarball installed in an empty folder runs
 * with no build step and no development dependency, and a production install from a checkout
 * (`npm ci --omit=dev`) no longer fails for want of TypeScript.
 * Packages come from npm's cache when they are there (`--prefer-offline`).
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'];

function npm(args: readonly string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const out = spawnSync('npm', [...args, ...NPM_FLAGS], { cwd, encoding: 'utf8', timeout: 90_000 });
  return { status: out.status, stdout: out.stdout, stderr: out.stderr };
}

/**
 * A folder outside the repository: inside it, Node's module resolution would walk up to the
 * repository's own node_modules and hide a missing dependency (or find TypeScript).
 */
function outsideDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hotwarm-package-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const DEV_ONLY = ['typescript', 'tap', 'playwright-core', '@types'];

t.test('npm pack → npm i ./hotwarm-x.tgz in an empty folder → hotwarm runs, no build, no dev dependencies', async (t) => {
  t.ok(existsSync(join(ROOT, 'dist/src/main.js')), 'built (npm test builds first; npm pack builds itself through prepack)');
  const dir = outsideDir(t);
  mkdirSync(join(dir, 'app'));
  writeFileSync(join(dir, 'app/package.json'), '{ "name": "consumer", "private": true }\n');
  const pack = npm(['pack', '--ignore-scripts', '--pack-destination', dir], ROOT);
  t.equal(pack.status, 0, `npm pack: ${pack.stderr}`);
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  t.ok(tarball, 'a tarball');
  const app = join(dir, 'app');
  const install = npm(['install', join(dir, tarball ?? '')], app);
  t.equal(install.status, 0, `npm install: ${install.stderr}`);
  for (const name of DEV_ONLY) t.notOk(existsSync(join(app, 'node_modules', name)), `no ${name}`);
  t.notOk(existsSync(join(app, 'node_modules/hotwarm/src')), 'no TypeScript sources shipped');

  const bin = join(app, 'node_modules/.bin/hotwarm');
  const version = spawnSync(bin, ['--version'], { cwd: app, encoding: 'utf8' });
  t.match(version.stdout, /^hotwarm \d+\.\d+\.\d+\n$/, 'hotwarm --version');
  const check = spawnSync(bin, ['check', '-c', 'node_modules/hotwarm/proxy.yaml'], { cwd: app, encoding: 'utf8' });
  t.equal(check.status, 0, check.stderr);
  t.match(check.stdout, /^ok: \d+ listeners?, /, 'hotwarm check on the shipped example');
  t.ok(existsSync(join(app, 'node_modules/hotwarm/docs/configuration.md')), 'docs/ ships with it');
  t.ok(existsSync(join(app, 'node_modules/hotwarm/deploy/systemd/hotwarm.service')), 'deploy/ ships with it');
});

t.test('npm ci --omit=dev in a checkout: succeeds, says how to build, installs no dev dependency', async (t) => {
  const dir = outsideDir(t);
  for (const file of ['package.json', 'package-lock.json']) cpSync(join(ROOT, file), join(dir, file));
  mkdirSync(join(dir, 'scripts'));
  cpSync(join(ROOT, 'scripts/prepare.mjs'), join(dir, 'scripts/prepare.mjs'));
  writeFileSync(join(dir, 'tsconfig.json'), '{}\n');
  const install = npm(['ci', '--omit=dev'], dir);
  t.equal(install.status, 0, `npm ci --omit=dev: ${install.stderr}`);
  t.match(install.stderr, 'TypeScript is not installed, build skipped');
  t.match(install.stderr, 'npm ci && npm prune --omit=dev');
  t.notMatch(install.stderr, 'tsc: not found');
  for (const name of DEV_ONLY) t.notOk(existsSync(join(dir, 'node_modules', name)), `no ${name}`);
  t.ok(existsSync(join(dir, 'node_modules/pino')), 'runtime dependencies installed');
});
