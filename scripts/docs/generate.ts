/**
 * `npm run docs`: writes docs/configuration.md and src/config/key-classes.ts from the schema's
 * annotations (see render-configuration.ts). `--check` writes nothing and exits 1 when either
 * file differs from what it would write.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigurationDoc, renderKeyClasses } from './render-configuration.js';

const root = new URL('../../../', import.meta.url);
const template = readFileSync(new URL('scripts/docs/configuration.template.md', root), 'utf8');
const outputs: [string, string][] = [
  ['docs/configuration.md', renderConfigurationDoc(template)],
  ['src/config/key-classes.ts', renderKeyClasses()],
];

if (process.argv.includes('--check')) {
  const stale = outputs.filter(([path, text]) => readFileSync(new URL(path, root), 'utf8') !== text).map(([path]) => path);
  if (stale.length > 0) {
    process.stderr.write(`out of date: ${stale.join(', ')}: run \`npm run docs\`\n`);
    process.exit(1);
  }
  process.stdout.write('generated files are up to date\n');
} else {
  for (const [path, text] of outputs) {
    writeFileSync(new URL(path, root), text);
    process.stdout.write(`wrote ${path}\n`);
  }
}
