/** A route's path_prefix must be a path in normal form: requests are matched by theirs (SPEC §5). */
import t from 'tap';
import { issuesOf, lines, row } from '../../helpers/config.js';
import { parseConfig } from '../../../src/config/load.js';

const config = (prefix: string): string =>
  lines(
    'listeners:',
    '  - name: web',
    '    listen: 127.0.0.1:8080',
    '    routes:',
    `      - { path_prefix: "${prefix}", pool: app }`,
    '      - { pool: app }',
    'pools:',
    '  app:',
    '    backends:',
    '      - { name: a, address: 127.0.0.1:3001 }',
  );

t.test('prefixes that no normalised path could start with are refused, with their normal form', async (t) => {
  const cases: [string, string][] = [
    ['/a//b/', 'must be in normal form: write /a/b/ (requests are matched by their normalised path)'],
    ['/a/../b/', 'must be in normal form: write /b/ (requests are matched by their normalised path)'],
    ['/./admin', 'must be in normal form: write /admin (requests are matched by their normalised path)'],
    ['/%61dmin/', 'must be in normal form: write /admin/ (requests are matched by their normalised path)'],
    ['/files%2fx', 'must be in normal form: write /files%2Fx (requests are matched by their normalised path)'],
    ['/search?q=', 'must be a path without "?" or "#" (routes match the path only)'],
  ];
  for (const [prefix, message] of cases) {
    const issues = await issuesOf(config(prefix));
    t.strictSame(issues.map(row), [`5:24 listeners[0].routes[0].path_prefix: ${message}`], prefix);
  }
});

t.test('normal prefixes are accepted as written', async (t) => {
  for (const prefix of ['/admin/', '/api/v1', '/files%2Fx', '/a;v=1/', '/.well-known/']) {
    const parsed = await parseConfig(config(prefix), 'proxy.yaml', { env: {} });
    t.equal(parsed.listeners[0]?.routes?.[0]?.path_prefix, prefix);
  }
});
