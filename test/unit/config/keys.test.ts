/** The key annotations of schema.ts, as keys.ts collects them for the docs and the reload diff. */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { configKeys, keysWith } from '../../../src/config/keys.js';
import { renderKeyClasses } from '../../../scripts/docs/render-configuration.js';

t.test('the reload classes the diff relies on', async (t) => {
  t.strictSame([...keysWith('listeners[]', 'rebind')].sort(), ['http2', 'listen', 'protocol', 'tls'], 'a listener is rebound for these');
  t.strictSame([...keysWith('pools.<name>.backends[]', 'replace')].sort(), ['address', 'role'], 'a backend is replaced for these');
  t.strictSame([...keysWith('listeners[]', 'name')], ['name']);
  t.strictSame([...keysWith('pools.<name>.backends[]', 'name')], ['name']);
  const atStart = configKeys().filter((k) => k.reload === 'restart').map((k) => k.path).sort();
  t.strictSame(atStart, ['admin', 'admin.listen', 'admin.token_env', 'log.file', 'log.format', 'workers'], 'read at startup only');
});

t.test('a key inherits its mapping\'s reload effect; the top level is live', async (t) => {
  const byPath = new Map(configKeys().map((k) => [k.path, k]));
  t.equal(byPath.get('admin.listen')?.reload, 'restart');
  t.equal(byPath.get('log.level')?.reload, 'live');
  t.equal(byPath.get('pools.<name>.health_check.interval')?.reload, 'live');
});

t.test('defaults come from the schema, or from the annotation when the schema has none', async (t) => {
  const byPath = new Map(configKeys().map((k) => [k.path, k]));
  t.equal(byPath.get('shutdown_timeout')?.default, '`30s`');
  t.equal(byPath.get('listeners[].trusted_proxies')?.default, '`[]`');
  t.equal(byPath.get('listeners')?.default, '**required**');
  t.equal(byPath.get('listeners[].tls')?.default, 'none');
  t.equal(byPath.get('listeners[].routes[].retries')?.default, "the pool's");
});

t.test('inline mappings are described by their key, not walked into', async (t) => {
  const paths = configKeys().map((k) => k.path);
  t.ok(paths.includes('listeners[].tls'));
  t.notOk(paths.some((p) => p.startsWith('listeners[].tls.')), 'no tls.cert row');
  t.ok(paths.includes('pools.<name>.passive.consecutive_failures'), 'a mapping that is not inline has its own rows');
  t.equal(new Set(paths).size, paths.length, 'each key once');
});

t.test('src/config/key-classes.ts (what diff.ts reads) is what `npm run docs` generates from the annotations', async (t) => {
  const file = readFileSync(new URL('../../../src/config/key-classes.ts', import.meta.url), 'utf8');
  t.ok(file === renderKeyClasses(), 'key-classes.ts is up to date (run `npm run docs`)');
});
