/** The README is part of the contract: its error table and defaults must match the code. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { DEFAULTS } from '../../src/config/schema.js';
import { CONTROL_ACTIONS } from '../../src/control/admin-types.js';
import { METRICS } from '../../src/control/metrics.js';
import { ERROR_CODES } from '../../src/errors.js';

const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const lines = readme.split('\n');

t.test('README starts with the demo and test commands', async (t) => {
  const firstBlock = readme.slice(0, readme.indexOf('```', readme.indexOf('```') + 3));
  t.match(firstBlock, 'npm ci && npm run demo');
  t.match(firstBlock, 'npm ci && npm test');
});

t.test('every error code is documented', async (t) => {
  for (const code of Object.keys(ERROR_CODES)) t.match(readme, `| \`${code}\` |`, code);
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
  for (const [key, value] of leaves(DEFAULTS)) {
    const row = lines.find((l) => l.startsWith('|') && (l.includes(`\`${key}\``) || l.includes(`.${key}\``)) && l.includes(`\`${value}\``));
    t.ok(row, `${key}: ${value}`);
  }
  t.match(readme, 'protocol: tcp, interval: 2s');
});

t.test('every metric is in the README with its type and labels', async (t) => {
  for (const m of METRICS) {
    const row = lines.find((l) => l.startsWith(`| \`${m.name}\` |`));
    t.ok(row, m.name);
    t.match(row, `| ${m.type} | ${m.labels.join(', ')} |`, `${m.name}: type and labels`);
  }
  const documented = lines.filter((l) => /^\| `hotwarm_/.test(l)).length;
  t.equal(documented, METRICS.length, 'and no metric the code does not export');
});

t.test('every control action is in the README', async (t) => {
  for (const action of CONTROL_ACTIONS) t.match(readme, `| \`${action}\` |`, action);
});
