/**
 * `npm run docs`: writes docs/configuration.md from the schema (see render-configuration.ts).
 * `--check` writes nothing and exits 1 when the file differs from what it would write.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderConfigurationDoc } from './render-configuration.js';

const root = new URL('../../../', import.meta.url);
const template = readFileSync(new URL('scripts/docs/configuration.template.md', root), 'utf8');
const target = new URL('docs/configuration.md', root);
const text = renderConfigurationDoc(template);

if (process.argv.includes('--check')) {
  const current = readFileSync(target, 'utf8');
  if (current !== text) {
    process.stderr.write('docs/configuration.md is out of date: run `npm run docs`\n');
    process.exit(1);
  }
  process.stdout.write('docs/configuration.md is up to date\n');
} else {
  writeFileSync(target, text);
  process.stdout.write('wrote docs/configuration.md\n');
}
