/**
 * The README and docs/ are part of the contract: the configuration reference is generated from
 * the schema, and the error, metric and action tables must list exactly what the code has.
 */
import t from 'tap';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { DEFAULTS } from '../../src/config/schema.js';
import { configKeys } from '../../src/config/keys.js';
import { CONTROL_ACTIONS } from '../../src/control/admin-types.js';
import { EVENT_TYPES } from '../../src/control/events.js';
import { METRICS } from '../../src/control/metrics.js';
import { ERROR_CODES, REFUSAL_CODES } from '../../src/errors.js';
import { renderConfigurationDoc } from '../../scripts/docs/render-configuration.js';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');
const readme = read('README.md');
const DOCS = readdirSync(new URL('docs/', ROOT)).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`);
const rows = (text: string): string[] => text.split('\n').filter((l) => l.startsWith('|'));

t.test('README starts with the demo and test commands', async (t) => {
  const firstBlock = readme.slice(0, readme.indexOf('```', readme.indexOf('```') + 3));
  t.match(firstBlock, 'npm ci && npm run demo');
  t.match(firstBlock, 'npm ci && npm test');
});

t.test('README is a short guide that links every page of docs/ and the dependency reasons', async (t) => {
  t.ok(readme.split('\n').length <= 200, `README has ${readme.split('\n').length} lines`);
  for (const page of DOCS) t.match(readme, `](${page}`, `README links ${page}`);
  t.match(readme, '](docs/architecture.md#dependencies)');
  t.match(read('docs/architecture.md'), /^## Dependencies$/m);
});

/** GitHub's anchor for a heading. */
const slug = (heading: string): string => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
const anchors = (text: string): Set<string> => new Set([...text.matchAll(/^#+ (.*)$/gm)].map((m) => slug(m[1] ?? '')));

t.test('every relative link in README.md and docs/ leads to a file and heading that exist', async (t) => {
  for (const file of ['README.md', ...DOCS]) {
    const text = read(file);
    const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/') + 1) : '';
    for (const [, target = ''] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const resolved = path === '' ? file : new URL(path, new URL(dir, ROOT)).pathname.slice(new URL(ROOT).pathname.length);
      t.ok(existsSync(new URL(resolved, ROOT)), `${file}: ${target}`);
      if (anchor !== undefined && resolved.endsWith('.md')) t.ok(anchors(read(resolved)).has(anchor), `${file}: ${target} (heading)`);
    }
  }
});

t.test('the docs stand alone: no references to documents a user does not have', async (t) => {
  for (const file of ['README.md', ...DOCS]) {
    const text = read(file);
    t.notMatch(text, /\bSPEC\b|SPEC\.md|hotwarm addition|the spec\b/i, file);
  }
});

t.test('docs/configuration.md is what `npm run docs` generates from the schema', async (t) => {
  const expected = renderConfigurationDoc(read('scripts/docs/configuration.template.md'));
  t.ok(read('docs/configuration.md') === expected, 'docs/configuration.md is up to date (run `npm run docs`)');
});

/** [key, default as written] for every leaf of DEFAULTS, except the implicit check described in prose. */
function leaves(obj: Record<string, unknown>): [string, string][] {
  const out: [string, string][] = [];
  for (const [key, value] of Object.entries(obj)) {
    if (key === 'implicit_health_check') continue;
    if (Array.isArray(value)) out.push([key, `[${value.join(', ')}]`]);
    else if (value !== null && typeof value === 'object') out.push(...leaves(value as Record<string, unknown>));
    else out.push([key, String(value)]);
  }
  return out;
}

t.test('every default appears in the configuration reference with its key', async (t) => {
  const table = rows(read('docs/configuration.md'));
  const text = read('docs/configuration.md');
  for (const [key, value] of leaves(DEFAULTS)) {
    t.ok(table.find((l) => l.includes(`\`${key}\``) && l.includes(`\`${value}\``)), `${key}: ${value}`);
  }
  t.match(text, 'protocol: tcp, interval: 2s, timeout: 1s, rise: 2, fall: 3');
});

t.test('every schema key has a type, a reload effect and a row of its own', async (t) => {
  const text = read('docs/configuration.md');
  const keys = configKeys();
  t.ok(keys.length > 70, `${keys.length} keys`);
  for (const key of keys) {
    t.ok(key.type !== '', `${key.path}: type`);
    t.match(text, `| \`${key.name}\` |`, key.path);
  }
});

/** The codes a docs page lists in the first column of its tables. */
const documentedCodes = (text: string): string[] =>
  rows(text).map((l) => /^\| `([A-Z][A-Z0-9_]+)` \|/.exec(l)?.[1]).filter((c): c is string => c !== undefined);

t.test('error codes: every code in errors.ts is documented, and every documented code exists', async (t) => {
  const text = read('docs/errors.md');
  const documented = documentedCodes(text);
  const known = [...Object.keys(ERROR_CODES), ...Object.keys(REFUSAL_CODES)];
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    const status = spec.status === 0 ? 'closed' : String(spec.status);
    t.match(text, `| \`${code}\` | ${status} | ${spec.source} | ${spec.retry} | ${spec.passive ? 'yes' : 'no'} |`, code);
  }
  for (const code of Object.keys(REFUSAL_CODES)) t.ok(documented.includes(code), code);
  for (const code of documented) t.ok(known.includes(code), `${code} is documented and exists in errors.ts`);
  t.equal(new Set(documented).size, documented.length, 'each code documented once');
});

t.test('every metric is in docs/metrics.md with its type and labels, and no other', async (t) => {
  const lines = rows(read('docs/metrics.md'));
  for (const m of METRICS) {
    const row = lines.find((l) => l.startsWith(`| \`${m.name}\` |`));
    t.ok(row, m.name);
    t.match(row, `| ${m.type} | ${m.labels.join(', ')} |`, `${m.name}: type and labels`);
  }
  const documented = lines.filter((l) => /^\| `hotwarm_/.test(l)).length;
  t.equal(documented, METRICS.length, 'and no metric the code does not export');
});

t.test('every control action is in docs/admin-api.md', async (t) => {
  const text = read('docs/admin-api.md');
  for (const action of CONTROL_ACTIONS) t.match(text, `| \`${action}\` |`, action);
});

t.test('every event type is in the events table of docs/operations.md, and no other', async (t) => {
  const documented = rows(read('docs/operations.md'))
    .map((l) => /^\| `([a-z_]+)` \| (?:info|warn|error)/.exec(l)?.[1])
    .filter((type): type is string => type !== undefined);
  t.strictSame([...documented].sort(), [...EVENT_TYPES].sort());
});

t.test("the README's quick start is the shipped proxy.yaml, and its sample error is what a typo there gives", async (t) => {
  const { parseConfig } = await import('../../src/config/load.js');
  const { ConfigError, formatIssue } = await import('../../src/errors.js');
  const block = /```yaml\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const shipped = read('proxy.yaml');
  const strip = ({ file: _file, source: _source, ...rest }: { file: string; source: string }): object => rest;
  t.strictSame(strip(await parseConfig(block, 'proxy.yaml')), strip(await parseConfig(shipped, 'proxy.yaml')), 'same config');
  const sample = /^(proxy\.yaml:\d+:\d+: .*wieght.*)$/m.exec(readme)?.[1];
  t.ok(sample, 'the README shows a typo and its error');
  const typo = shipped.replace('{ name: app-1, address', '{ name: app-1, wieght: 2, address');
  const issues = await parseConfig(typo, 'proxy.yaml').then(
    () => [],
    (err: unknown) => (err instanceof ConfigError ? err.issues.map(formatIssue) : [String(err)]),
  );
  t.strictSame(issues, [sample]);
});
