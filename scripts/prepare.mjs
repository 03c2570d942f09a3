// `npm ci` runs this (the `prepare` script): it builds dist/ when TypeScript is installed. A
// production install (`--omit=dev`) has no TypeScript: it says how to get a build and succeeds,
// instead of failing with `tsc: not found`. A failing build still fails the install.
// Plain JavaScript on purpose: it must run before anything is compiled.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('..', import.meta.url);
let tsc;
try {
  tsc = createRequire(new URL('package.json', root)).resolve('typescript/bin/tsc');
} catch {
  tsc = null;
}
if (tsc === null) {
  const built = existsSync(new URL('dist/src/main.js', root));
  process.stderr.write(
    `hotwarm: TypeScript is not installed, build skipped${built ? ' (dist/ from an earlier build is used)' : ''}.\n` +
      'hotwarm: for a production install from a checkout run: npm ci && npm prune --omit=dev\n',
  );
  process.exit(0);
}
try {
  execFileSync(process.execPath, [tsc, '-p', 'tsconfig.json'], { cwd: root, stdio: 'inherit' });
  execFileSync('chmod', ['+x', 'dist/src/main.js'], { cwd: root, stdio: 'inherit' });
} catch {
  // tsc has printed its errors.
  process.stderr.write('hotwarm: the build failed\n');
  process.exit(1);
}
