import { mkdir, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import {
  ConfigError,
  describeConfig,
  formatIssue,
  loadConfig,
  parseConfig,
  type ConfigIssue,
} from '../../../src/config/load.js';
import { DEFAULTS } from '../../../src/config/schema.js';
import { parseDuration, parseSize, parseStatusRange } from '../../../src/config/units.js';
import { MINIMAL, issuesOf, lines } from '../../helpers/config.js';

/** The full annotated example; the shipped proxy.yaml is the quick start's minimal one. */
const EXAMPLE = fileURLToPath(new URL('../../../docs/proxy.full.yaml', import.meta.url));
const QUICK_START = fileURLToPath(new URL('../../../proxy.yaml', import.meta.url));
const DEMO = fileURLToPath(new URL('../../../scripts/demo.ts', import.meta.url));

function ms(text: string): number {
  const parsed = parseDuration(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}
function bytes(text: string): number {
  const parsed = parseSize(text);
  if (!parsed.ok) throw new Error(parsed.message);
  return parsed.value;
}

t.test('defaults from DEFAULTS fill every optional key', async (t) => {
  const config = await parseConfig(MINIMAL, 'proxy.yaml', { env: {} });
  t.equal(config.admin, undefined, 'no admin block, no admin listener');
  t.strictSame(config.log, DEFAULTS.log);
  t.equal(config.shutdown_timeout, ms(DEFAULTS.shutdown_timeout));

  const listener = config.listeners[0];
  t.ok(listener);
  t.strictSame(listener, {
    name: 'web',
    listen: { host: '127.0.0.1', port: 8080 },
    pool: 'app',
    protocol: DEFAULTS.listener.protocol,
    trusted_proxies: [],
    header_timeout: ms(DEFAULTS.listener.header_timeout),
    idle_timeout: ms(DEFAULTS.listener.idle_timeout),
    max_connections: DEFAULTS.listener.max_connections,
    max_header_size: bytes(DEFAULTS.listener.max_header_size),
    http2: DEFAULTS.listener.http2,
    redirect_https: DEFAULTS.listener.redirect_https,
    max_body_size: DEFAULTS.listener.max_body_size,
    proxy_protocol: DEFAULTS.listener.proxy_protocol,
  });

  const pool = config.pools['app'];
  t.ok(pool);
  t.equal(pool?.connect_timeout, ms(DEFAULTS.pool.connect_timeout));
  t.equal(pool?.response_timeout, ms(DEFAULTS.pool.response_timeout));
  t.equal(pool?.tunnel_idle_timeout, ms(DEFAULTS.pool.tunnel_idle_timeout));
  t.equal(pool?.retries, DEFAULTS.pool.retries);
  t.equal(pool?.drain_timeout, ms(DEFAULTS.pool.drain_timeout));
  t.equal(pool?.max_replay_body, bytes(DEFAULTS.pool.max_replay_body));
  t.strictSame(pool?.passive, DEFAULTS.passive);
  t.strictSame(pool?.failover, {
    failback: DEFAULTS.failover.failback,
    failback_hold: ms(DEFAULTS.failover.failback_hold),
    slow_start: ms(DEFAULTS.failover.slow_start),
    spill: DEFAULTS.failover.spill,
  });
  t.strictSame(pool?.backends, [
    { name: 'a', address: { host: '127.0.0.1', port: 3001 }, ...DEFAULTS.backend },
  ]);
});

t.test('a pool without health_check gets the implicit tcp check', async (t) => {
  const config = await parseConfig(MINIMAL, 'proxy.yaml', { env: {} });
  const implicit = DEFAULTS.implicit_health_check;
  const status = parseStatusRange(DEFAULTS.health_check.expect_status);
  t.ok(status.ok);
  t.strictSame(config.pools['app']?.health_check, {
    protocol: implicit.protocol,
    interval: ms(implicit.interval),
    timeout: ms(implicit.timeout),
    rise: implicit.rise,
    fall: implicit.fall,
    expect_status: status.ok ? status.value : undefined,
  });
});

t.test('an explicit health check keeps its values and gets the other defaults', async (t) => {
  const text = MINIMAL.replace('    backends:', '    health_check: { path: /healthz, rise: 5 }\n    backends:');
  const config = await parseConfig(text, 'proxy.yaml', { env: {} });
  t.strictSame(config.pools['app']?.health_check, {
    protocol: 'http',
    path: '/healthz',
    expect_status: { min: 200, max: 399 },
    interval: ms(DEFAULTS.health_check.interval),
    timeout: ms(DEFAULTS.health_check.timeout),
    rise: 5,
    fall: DEFAULTS.health_check.fall,
  });
});

t.test('the config is deeply frozen', async (t) => {
  const config = await parseConfig(MINIMAL, 'proxy.yaml', { env: {} });
  const listener = config.listeners[0];
  const pool = config.pools['app'];
  const backend = pool?.backends[0];
  for (const [name, value] of Object.entries({
    config,
    listeners: config.listeners,
    listener,
    listen: listener?.listen,
    trusted_proxies: listener?.trusted_proxies,
    pools: config.pools,
    pool,
    health_check: pool?.health_check,
    expect_status: pool?.health_check.expect_status,
    failover: pool?.failover,
    backends: pool?.backends,
    backend,
    address: backend?.address,
  })) {
    t.ok(Object.isFrozen(value), `${name} is frozen`);
  }
  t.throws(() => {
    (backend as { weight: number }).weight = 99;
  }, TypeError);
  t.equal(backend?.weight, 1);
});

t.test('Config.file is absolute; issues keep the name the caller gave', async (t) => {
  const config = await parseConfig(MINIMAL, 'conf/proxy.yaml', { env: {} });
  t.ok(isAbsolute(config.file));
  t.equal(config.file, resolve('conf/proxy.yaml'));
});

t.test('accepted variants', async (t) => {
  const text = lines(
    'admin: { listen: "[::1]:9901" }',
    'listeners:',
    '  - name: web',
    '    listen: "[::]:8080"',
    '    max_header_size: 8192',
    '    trusted_proxies: [10.0.0.0/8, "fd00::/8", 192.168.1.1]',
    '    routes:',
    '      - { host: API.Example.com, path_prefix: /v1/, pool: app }',
    '      - { host: "*.example.com", pool: app }',
    '      - { pool: app }',
    '  - { name: raw, listen: 127.0.0.1:0, protocol: tcp, pool: app }',
    '  - { name: raw2, listen: 127.0.0.1:0, protocol: tcp, pool: app }',
    'pools:',
    '  app:',
    '    max_replay_body: 0',
    '    health_check: { path: /, expect_status: 204, interval: 1.5m }',
    '    failover: { failback_hold: 0s, slow_start: 0s, warmup: {} }',
    '    backends:',
    '      - { name: a, address: "[::1]:3001", weight: 256, max_conns: 1000000 }',
    '      - { name: b, address: backend.internal:3002, role: warm }',
  );
  const config = await parseConfig(text, 'proxy.yaml', { env: {} });
  const [web] = config.listeners;
  t.strictSame(web?.listen, { host: '::', port: 8080 });
  t.equal(web?.max_header_size, 8192, 'a size may be a plain number of bytes');
  t.equal(web?.routes?.[0]?.host, 'api.example.com', 'route hosts are lower-cased');
  t.equal(web?.trusted_proxies.length, 3);
  const pool = config.pools['app'];
  t.equal(pool?.max_replay_body, 0);
  t.strictSame(pool?.health_check.expect_status, { min: 204, max: 204 });
  t.equal(pool?.health_check.interval, 90_000);
  t.equal(pool?.failover.failback_hold, 0, '0s means "at once"');
  t.equal(pool?.failover.slow_start, 0, '0s means "no ramp"');
  t.strictSame(pool?.failover.warmup, DEFAULTS.warmup, 'an empty warmup block takes the defaults');
  t.equal(describeConfig(config), 'ok: 3 listeners, 1 pool, 2 backends');
});

t.test('admin on loopback needs no token; token_env is read from the env given, else process.env', async (t) => {
  const withAdmin = (admin: string) => `${admin}\n${MINIMAL}`;
  for (const listen of ['127.0.0.1:9901', '127.9.8.7:9901', '"[::1]:9901"', 'localhost:9901', 'LOCALHOST:9901']) {
    const config = await parseConfig(withAdmin(`admin: { listen: ${listen} }`), 'proxy.yaml', { env: {} });
    t.ok(config.admin, `loopback ${listen}`);
  }
  const remote = withAdmin('admin: { listen: 0.0.0.0:9901, token_env: HOTWARM_TEST_TOKEN }');
  const config = await parseConfig(remote, 'proxy.yaml', { env: { HOTWARM_TEST_TOKEN: 's3cret' } });
  t.equal(config.admin?.token_env, 'HOTWARM_TEST_TOKEN');

  process.env['HOTWARM_TEST_TOKEN'] = 'from-process-env';
  t.teardown(() => {
    delete process.env['HOTWARM_TEST_TOKEN'];
  });
  const fromProcess = await parseConfig(remote, 'proxy.yaml');
  t.equal(fromProcess.admin?.token_env, 'HOTWARM_TEST_TOKEN');
  const issues = await issuesOf(remote, { env: {} });
  t.strictSame(issues.map((i) => i.message), ['environment variable HOTWARM_TEST_TOKEN is not set'], 'options.env wins over process.env');
});

t.test('merge keys share settings between pools', async (t) => {
  const text = lines(
    'listeners:',
    '  - { name: web, listen: 127.0.0.1:8080, pool: app }',
    'pools:',
    '  app: &base',
    '    connect_timeout: 1s',
    '    backends: [{ name: a, address: 127.0.0.1:3001 }]',
    '  app2:',
    '    <<: *base',
    '    retries: 5',
  );
  const config = await parseConfig(text, 'proxy.yaml', { env: {} });
  t.equal(config.pools['app2']?.connect_timeout, 1000);
  t.equal(config.pools['app2']?.retries, 5);
  t.equal(config.pools['app2']?.backends[0]?.name, 'a');
});

t.test('proxy.yaml at the repository root is the quick start, on the backends of `npm run demo -- --backends`', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const config = await loadConfig(QUICK_START, { env: {} });
  t.equal(describeConfig(config), 'ok: 1 listener, 1 pool, 3 backends');
  const backends = config.pools['app']?.backends ?? [];
  t.strictSame(backends.map((b) => [b.name, b.role]), [['app-1', 'hot'], ['app-2', 'hot'], ['spare-1', 'warm']]);
  t.strictSame(config.pools['app']?.health_check.path, '/healthz', 'the demo backends answer /healthz');
  const demo = await readFile(DEMO, 'utf8');
  for (const b of backends) {
    t.equal(b.address.host, '127.0.0.1');
    t.match(demo, `'${b.name}': ${b.address.port}`, `the demo starts ${b.name} on ${b.address.port}`);
  }
  t.match(await readFile(QUICK_START, 'utf8'), 'npm run demo -- --backends', 'the file says what to start');
});

t.test('docs/proxy.full.yaml, the annotated example', async (t) => {
  const config = await loadConfig(EXAMPLE, { env: {} });
  t.equal(describeConfig(config), 'ok: 2 listeners, 3 pools, 8 backends');
  t.equal(config.file, EXAMPLE);

  const web = config.listeners.find((l) => l.name === 'web');
  const app = config.pools['app'];
  // The example writes out every default it shows; they must agree with DEFAULTS.
  t.equal(web?.header_timeout, ms(DEFAULTS.listener.header_timeout));
  t.equal(web?.idle_timeout, ms(DEFAULTS.listener.idle_timeout));
  t.equal(web?.max_connections, DEFAULTS.listener.max_connections);
  t.equal(web?.max_header_size, bytes(DEFAULTS.listener.max_header_size));
  t.equal(config.shutdown_timeout, ms(DEFAULTS.shutdown_timeout));
  t.strictSame(config.log, DEFAULTS.log);
  t.equal(app?.connect_timeout, ms(DEFAULTS.pool.connect_timeout));
  t.equal(app?.response_timeout, ms(DEFAULTS.pool.response_timeout));
  t.equal(app?.tunnel_idle_timeout, ms(DEFAULTS.pool.tunnel_idle_timeout));
  t.equal(app?.retries, DEFAULTS.pool.retries);
  t.equal(app?.max_replay_body, bytes(DEFAULTS.pool.max_replay_body));
  t.equal(app?.drain_timeout, ms(DEFAULTS.pool.drain_timeout));
  t.equal(app?.health_check.interval, ms(DEFAULTS.health_check.interval));
  t.equal(app?.health_check.timeout, ms(DEFAULTS.health_check.timeout));
  t.equal(app?.health_check.rise, DEFAULTS.health_check.rise);
  t.equal(app?.health_check.fall, DEFAULTS.health_check.fall);
  t.strictSame(app?.passive, DEFAULTS.passive);
  t.equal(app?.failover.failback_hold, ms(DEFAULTS.failover.failback_hold));
  t.equal(app?.failover.slow_start, ms(DEFAULTS.failover.slow_start));
  t.strictSame(app?.failover.warmup, DEFAULTS.warmup);
  t.equal(config.pools['api']?.health_check.protocol, 'tcp', 'the api pool shows the implicit check');
});

t.test('docs/proxy.full.yaml mentions every key that has a default', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const text = await readFile(EXAMPLE, 'utf8');
  const { shutdown_timeout: _top, workers: _workers, implicit_health_check: _implicit, ...sections } = DEFAULTS;
  t.match(text, /\bshutdown_timeout:/, 'shutdown_timeout');
  t.match(text, /\bworkers:/, 'workers');
  for (const [section, keys] of Object.entries(sections)) {
    for (const key of Object.keys(keys)) t.match(text, new RegExp(`\\b${key}:`), `${section}.${key}`);
  }
  for (const key of ['admin', 'listen', 'token_env', 'tls', 'cert', 'key', 'routes', 'host', 'path_prefix', 'pool', 'path', 'warmup', 'name', 'address']) {
    t.match(text, new RegExp(`\\b${key}:`), key);
  }
});

t.test('loadConfig: a file that cannot be read is one issue at 1:1', async (t) => {
  const dir = t.testdir({ 'sub': {} });
  const missing = join(dir, 'nope.yaml');
  const err = await loadConfig(missing).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof ConfigError, 'a ConfigError, not the fs error');
  const says = `no config file at ${resolve(missing)}: create it, or name another with -c FILE`;
  t.strictSame((err as ConfigError).issues, [{ file: missing, line: 1, col: 1, path: '(root)', message: says }]);
  t.equal((err as ConfigError).message, `${missing}:1:1: (root): ${says}`);
  t.notMatch((err as ConfigError).message, /ENOENT/);
  await t.rejects(loadConfig(join(dir, 'sub')), { name: 'ConfigError', issues: [{ message: `${resolve(dir, 'sub')} is a folder, not a config file: name the file with -c FILE` }] });
});

t.test('loadConfig reads the file and reports issues under the name given', async (t) => {
  const dir = t.testdir({});
  await mkdir(join(dir, 'conf'));
  await writeFile(join(dir, 'conf', 'proxy.yaml'), MINIMAL.replace('pool: app', 'pool: nope'));
  const name = join(dir, 'conf', '..', 'conf', 'proxy.yaml');
  await t.rejects(loadConfig(name, { env: {} }), {
    name: 'ConfigError',
    code: 'CONFIG_INVALID',
    issues: [{ file: name, line: 4, col: 11, path: 'listeners[0].pool', message: 'unknown pool "nope"' }],
  });
  await writeFile(join(dir, 'conf', 'proxy.yaml'), MINIMAL);
  const config = await loadConfig(name, { env: {} });
  t.equal(config.file, join(dir, 'conf', 'proxy.yaml'));
});

t.test('ConfigError: message is the formatted issues, sorted, one per line', async (t) => {
  const issues: ConfigIssue[] = [
    { file: 'p.yaml', line: 9, col: 2, path: 'b', message: 'second' },
    { file: 'p.yaml', line: 3, col: 7, path: 'a.c[1]', message: 'first' },
    { file: 'p.yaml', line: 9, col: 2, path: 'c', message: 'third' },
  ];
  const error = new ConfigError(issues);
  t.equal(formatIssue(issues[1] as ConfigIssue), 'p.yaml:3:7: a.c[1]: first');
  t.equal(error.message, 'p.yaml:3:7: a.c[1]: first\np.yaml:9:2: b: second\np.yaml:9:2: c: third');
  t.strictSame(error.issues.map((i) => i.message), ['first', 'second', 'third']);
  t.ok(error instanceof Error);
  t.equal(error.name, 'ConfigError');
  t.ok(Object.isFrozen(error.issues));
});

t.test('describeConfig counts listeners, pools and backends', async (t) => {
  const config = await parseConfig(MINIMAL, 'proxy.yaml', { env: {} });
  t.equal(describeConfig(config), 'ok: 1 listener, 1 pool, 1 backend');
});
