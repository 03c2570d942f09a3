/**
 * Every kind of config error, each asserted with its exact line:col, path and message. Each
 * case lists *all* the issues of its file, in the order they are reported (by position).
 */
import t from 'tap';
import { issuesOf, lines, row } from '../../helpers/config.js';

interface Case {
  readonly name: string;
  readonly yaml: string;
  readonly env?: Record<string, string | undefined>;
  readonly issues: readonly string[];
}

const BACKEND = '      - { name: a, address: 127.0.0.1:3001 }';
const DURATION_HINT = 'use a number with a unit, e.g. 250ms, 2s, 1m, 1h';
const NAME_RULE = 'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit';

const schemaCases: Case[] = [
  {
    name: 'unknown top-level key',
    yaml: lines('listeners:', '  - name: web', '    listen: 127.0.0.1:8080', '    pool: app', 'pools:', '  app:', '    backends:', BACKEND, 'listner: x'),
    issues: ['9:1 listner: unknown key'],
  },
  {
    name: 'unknown nested keys, positioned at the key',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    pool: app',
      'pools:',
      '  app:',
      '    health_check: { protocol: tcp, intervall: 2s }',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3001, wieght: 2 }',
    ),
    issues: ['7:36 pools.app.health_check.intervall: unknown key', '9:45 pools.app.backends[0].wieght: unknown key'],
  },
  {
    name: 'wrong types',
    yaml: lines(
      'log: { level: info, access: yes }',
      'listeners:',
      '  - name: web',
      '    listen: 8080',
      '    pool: app',
      '    max_connections: "100"',
      'pools:',
      '  app:',
      '    retries: 1.5',
      '    health_check: { protocol: tcp, interval: 2 }',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3001, weight: "3" }',
      '      - just-a-string',
    ),
    issues: [
      '1:29 log.access: expected true or false, got "yes"',
      '4:13 listeners[0].listen: expected an address like 127.0.0.1:8080, got 8080',
      '6:22 listeners[0].max_connections: must be an integer between 1 and 1000000',
      '9:14 pools.app.retries: must be an integer between 0 and 10',
      '10:46 pools.app.health_check.interval: expected a duration string like 2s, got 2',
      '12:53 pools.app.backends[0].weight: must be an integer between 1 and 256',
      '13:9 pools.app.backends[1]: expected a mapping, got "just-a-string"',
    ],
  },
  {
    name: 'a mapping where a list belongs',
    yaml: lines('listeners: { name: web }', 'pools: {}'),
    issues: ['1:12 listeners: expected a list, got a mapping'],
  },
  {
    name: 'out-of-range values',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:70000',
      '    pool: app',
      '    max_header_size: 2MiB',
      '    max_connections: 0',
      'pools:',
      '  app:',
      '    max_replay_body: 17MiB',
      '    health_check: { protocol: tcp, rise: 0, fall: 101 }',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:0, weight: 0, max_conns: -1 }',
      '      - { name: b, address: 127.0.0.1:3002, weight: 257 }',
    ),
    issues: [
      '3:13 listeners[0].listen: port 70000 out of range 0-65535',
      '5:22 listeners[0].max_header_size: must be between 1KiB and 1MiB',
      '6:22 listeners[0].max_connections: must be an integer between 1 and 1000000',
      '9:22 pools.app.max_replay_body: must be at most 16MiB',
      '10:42 pools.app.health_check.rise: must be an integer between 1 and 100',
      '10:51 pools.app.health_check.fall: must be an integer between 1 and 100',
      '12:29 pools.app.backends[0].address: port 0 out of range 1-65535',
      '12:50 pools.app.backends[0].weight: must be an integer between 1 and 256',
      '12:64 pools.app.backends[0].max_conns: must be an integer between 0 and 1000000',
      '13:53 pools.app.backends[1].weight: must be an integer between 1 and 256',
    ],
  },
  {
    name: 'bad durations (and 0s only where it means "off")',
    yaml: lines(
      'shutdown_timeout: 10 s',
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    pool: app',
      '    header_timeout: -1s',
      '    idle_timeout: 2d',
      'pools:',
      '  app:',
      '    tunnel_idle_timeout: 1000h',
      '    connect_timeout: 0s',
      '    health_check: { protocol: tcp, interval: 0s }',
      '    failover: { slow_start: 0s, failback_hold: 0ms }',
      '    backends:',
      BACKEND,
    ),
    issues: [
      `1:19 shutdown_timeout: invalid duration "10 s": ${DURATION_HINT}`,
      `6:21 listeners[0].header_timeout: invalid duration "-1s": ${DURATION_HINT}`,
      `7:19 listeners[0].idle_timeout: invalid duration "2d": ${DURATION_HINT}`,
      '10:26 pools.app.tunnel_idle_timeout: duration "1000h" is too long: at most 596h',
      '11:22 pools.app.connect_timeout: must be greater than 0s',
      '12:46 pools.app.health_check.interval: must be greater than 0s',
    ],
  },
  {
    name: 'bad sizes',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    pool: app',
      '    max_header_size: 16KB',
      'pools:',
      '  app:',
      '    max_replay_body: 1.5MiB',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '5:22 listeners[0].max_header_size: invalid size "16KB": use bytes or KiB / MiB, e.g. 16KiB',
      '8:22 pools.app.max_replay_body: invalid size "1.5MiB": use bytes or KiB / MiB, e.g. 16KiB',
    ],
  },
  {
    name: 'bad addresses',
    yaml: lines(
      'admin: { listen: localhost }',
      'listeners:',
      '  - name: web',
      '    listen: "[::1:8080"',
      '    pool: app',
      '  - name: web2',
      '    listen: bad_host:80',
      '    pool: app',
      'pools:',
      '  app:',
      '    backends:',
      '      - { name: a, address: ":3001" }',
    ),
    issues: [
      '1:18 admin.listen: invalid address "localhost": use host:port or [ipv6]:port',
      '4:13 listeners[0].listen: invalid address "[::1:8080": use host:port or [ipv6]:port',
      '7:13 listeners[1].listen: invalid host "bad_host" in "bad_host:80"',
      '12:29 pools.app.backends[0].address: invalid address ":3001": use host:port or [ipv6]:port',
    ],
  },
  {
    name: 'bad CIDRs in trusted_proxies',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    pool: app',
      '    trusted_proxies: [10.0.0.0/33, foo, 10.0.0.0/8, "::1/129"]',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '5:23 listeners[0].trusted_proxies[0]: invalid prefix length in "10.0.0.0/33" (0-32)',
      '5:36 listeners[0].trusted_proxies[1]: invalid CIDR "foo"',
      '5:53 listeners[0].trusted_proxies[3]: invalid prefix length in "::1/129" (0-128)',
    ],
  },
  {
    name: 'bad status ranges',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, pool: p1 }',
      'pools:',
      '  p1: { health_check: { path: /, expect_status: 600 }, backends: [{ name: a, address: 127.0.0.1:3001 }] }',
      '  p2: { health_check: { path: /, expect_status: 399-200 }, backends: [{ name: a, address: 127.0.0.1:3001 }] }',
      '  p3: { health_check: { path: /, expect_status: 2xx }, backends: [{ name: a, address: 127.0.0.1:3001 }] }',
      '  p4: { health_check: { path: /, expect_status: true }, backends: [{ name: a, address: 127.0.0.1:3001 }] }',
    ),
    issues: [
      '4:49 pools.p1.health_check.expect_status: status range "600" must lie within 100-599, low to high',
      '5:49 pools.p2.health_check.expect_status: status range "399-200" must lie within 100-599, low to high',
      '6:49 pools.p3.health_check.expect_status: invalid status range "2xx": use 200 or 200-399',
      '7:49 pools.p4.health_check.expect_status: expected a status or range like 200-399, got true',
    ],
  },
  {
    name: 'values outside an enum',
    yaml: lines(
      'log: { level: verbose }',
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    protocol: udp',
      '    pool: app',
      'pools:',
      '  app:',
      '    health_check: { protocol: icmp }',
      '    failover: { failback: never }',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3001, role: cold }',
    ),
    issues: [
      '1:15 log.level: must be one of: trace, debug, info, warn, error',
      '5:15 listeners[0].protocol: must be one of: http, tcp',
      '9:31 pools.app.health_check.protocol: must be one of: http, tcp',
      '10:27 pools.app.failover.failback: must be one of: auto, manual',
      '12:51 pools.app.backends[0].role: must be one of: hot, warm',
    ],
  },
  {
    name: 'bad names, including a pool name (positioned at the key)',
    yaml: lines(
      'listeners:',
      '  - name: "web app"',
      '    listen: 127.0.0.1:8080',
      '    pool: app',
      'pools:',
      '  app:',
      '    backends:',
      '      - { name: -a, address: 127.0.0.1:3001 }',
      '  BAD!:',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3002 }',
    ),
    issues: [
      `2:11 listeners[0].name: ${NAME_RULE}`,
      `8:17 pools.app.backends[0].name: ${NAME_RULE}`,
      `9:3 pools["BAD!"]: invalid name: ${NAME_RULE}`,
    ],
  },
  {
    name: 'missing keys, positioned at the mapping they are missing from',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    pool: app',
      'pools:',
      '  app:',
      '    backends:',
      '      - { name: a }',
      '  empty:',
      '    backends: []',
      '  none: {}',
    ),
    issues: [
      '2:5 listeners[0].listen: missing required key',
      '7:9 pools.app.backends[0].address: missing required key',
      '9:15 pools.empty.backends: a pool needs at least one backend',
      '10:9 pools.none.backends: missing required key',
    ],
  },
  {
    name: 'missing top-level keys',
    yaml: lines('log: { level: info }'),
    issues: ['1:1 listeners: missing required key', '1:1 pools: missing required key'],
  },
  {
    name: 'no listeners',
    yaml: lines('listeners: []', 'pools: {}'),
    issues: ['1:12 listeners: at least one listener is required'],
  },
  {
    name: 'an empty value is not the default',
    yaml: lines('listeners:', '  - name: web', '    listen: 127.0.0.1:8080', '    pool: app', '    idle_timeout:', 'pools:', '  app:', '    backends:', BACKEND),
    issues: ['5:5 listeners[0].idle_timeout: expected a duration string like 2s, got an empty value'],
  },
  {
    name: 'empty strings and lists, numbers for booleans',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    routes: []',
      '    tls: { cert: "", key: k.pem }',
      'pools:',
      '  app:',
      '    failover: { warmup: { requests: 0 }, spill: 1 }',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '4:13 listeners[0].routes: must not be empty',
      '5:18 listeners[0].tls.cert: must not be empty',
      '8:37 pools.app.failover.warmup.requests: must be an integer between 1 and 1000',
      '8:49 pools.app.failover.spill: expected true or false, got 1',
    ],
  },
  {
    name: 'bad route fields and token_env name',
    yaml: lines(
      'admin: { listen: 127.0.0.1:9901, token_env: 1BAD }',
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    routes:',
      '      - { host: "api example", path_prefix: v1, pool: app }',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '1:45 admin.token_env: must be an environment variable name',
      '6:17 listeners[0].routes[0].host: invalid host pattern "api example": use an exact host or *.example.com',
      '6:45 listeners[0].routes[0].path_prefix: must start with "/"',
    ],
  },
];

const yamlCases: Case[] = [
  {
    name: 'YAML syntax error: only the YAML errors are reported',
    yaml: lines('listeners:', '  - name: web', '    listen: [127.0.0.1:8080', 'pools:', '  app: {}'),
    issues: ['4:1 (yaml): Flow sequence in block collection must be sufficiently indented and end with a ]'],
  },
  {
    name: 'YAML syntax error: tab indentation',
    yaml: lines('listeners:', '\t- name: web'),
    issues: ['2:1 (yaml): Tabs are not allowed as indentation'],
  },
  {
    name: 'duplicate top-level key',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    pool: app',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: ['9:1 pools: duplicate key (first at line 5)'],
  },
  {
    name: 'duplicate nested key; the document is still validated',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    pool: app',
      '    pool: app',
      'pools:',
      '  app:',
      '    retries: 20',
      '    backends:',
      BACKEND,
    ),
    issues: ['5:5 listeners[0].pool: duplicate key (first at line 4)', '8:14 pools.app.retries: must be an integer between 0 and 10'],
  },
  {
    name: 'an empty file',
    yaml: '',
    issues: ['1:1 (root): the file is empty: it needs at least "listeners" and "pools"'],
  },
  {
    name: 'a list at the top',
    yaml: lines('- listeners'),
    issues: ['1:1 (root): expected a mapping, got a list'],
  },
  {
    name: 'errors in an anchor are reported where the anchor is written, for each user',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, pool: app }',
      'pools:',
      '  app: &base',
      '    connect_timeout: 2x',
      '    backends:',
      BACKEND,
      '  app2:',
      '    <<: *base',
      '    retries: 99',
    ),
    issues: [
      `5:22 pools.app.connect_timeout: invalid duration "2x": ${DURATION_HINT}`,
      `5:22 pools.app2.connect_timeout: invalid duration "2x": ${DURATION_HINT}`,
      '10:14 pools.app2.retries: must be an integer between 0 and 10',
    ],
  },
  {
    name: 'a merge of something other than a mapping',
    yaml: lines('x: &n 5', 'pools:', '  app:', '    <<: *n'),
    issues: ['4:9 pools.app["<<"]: can only merge a mapping or a list of mappings'],
  },
  {
    name: 'alias expansion beyond the limit (billion laughs)',
    yaml: lines(
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
    ),
    issues: ['1:1 (root): Excessive alias count indicates a resource exhaustion attack'],
  },
];

const crossCases: Case[] = [
  {
    name: 'duplicate listener and backend names',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, pool: app }',
      '  - { name: web, listen: 127.0.0.1:8081, pool: app }',
      'pools:',
      '  app:',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3001 }',
      '      - { name: b, address: 127.0.0.1:3002 }',
      '      - { name: a, address: 127.0.0.1:3003 }',
    ),
    issues: ['3:13 listeners[1].name: duplicate listener name "web" (first at line 2)', '9:17 pools.app.backends[2].name: duplicate backend name "a" (first at line 7)'],
  },
  {
    name: 'unknown pools, from a route and from a listener',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, routes: [{ path_prefix: /a/, pool: api }, { pool: app }] }',
      '  - { name: db, listen: 127.0.0.1:6432, protocol: tcp, pool: dbs }',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: ['2:77 listeners[0].routes[0].pool: unknown pool "api"', '3:62 listeners[1].pool: unknown pool "dbs"'],
  },
  {
    name: 'listener shapes: http needs routes xor pool, tcp needs pool and no routes',
    yaml: lines(
      'listeners:',
      '  - name: both',
      '    listen: 127.0.0.1:8080',
      '    routes: [{ pool: app }]',
      '    pool: app',
      '  - name: neither',
      '    listen: 127.0.0.1:8081',
      '  - name: tcp-routes',
      '    listen: 127.0.0.1:8082',
      '    protocol: tcp',
      '    routes: [{ pool: app }]',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '5:11 listeners[0].pool: an http listener takes either "routes" or "pool", not both',
      '6:5 listeners[1]: an http listener needs "routes" or "pool"',
      '8:5 listeners[2].pool: required for a tcp listener',
      '11:13 listeners[2].routes: a tcp listener has no routes: name one "pool" instead',
    ],
  },
  {
    name: 'http2: TLS http listeners only (no h2c); false is fine anywhere on http',
    yaml: lines(
      'listeners:',
      '  - { name: plain, listen: 127.0.0.1:8080, pool: app, http2: true }',
      '  - { name: off, listen: 127.0.0.1:8081, pool: app, http2: false }',
      '  - { name: db, listen: 127.0.0.1:8082, protocol: tcp, pool: app, http2: false }',
      '  - { name: typo, listen: 127.0.0.1:8083, pool: app, http2: yes }',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '2:62 listeners[0].http2: HTTP/2 is offered on TLS listeners only (by ALPN); h2c on plain TCP is not: add "tls" or remove "http2"',
      '4:74 listeners[2].http2: applies to http listeners only',
      '5:61 listeners[3].http2: expected true or false, got "yes"',
    ],
  },
  {
    name: 'two cross-check problems at the same key are both reported',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, routes: [{ pool: app }], pool: nope }',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '2:73 listeners[0].pool: an http listener takes either "routes" or "pool", not both',
      '2:73 listeners[0].pool: unknown pool "nope"',
    ],
  },
  {
    name: 'http health checks need a path (http is the default protocol)',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, pool: app }',
      'pools:',
      '  app:',
      '    health_check: { interval: 1s }',
      '    backends:',
      BACKEND,
      '  b:',
      '    health_check:',
      '      protocol: http',
      '      interval: 1s',
      '    backends:',
      BACKEND,
    ),
    issues: ['5:19 pools.app.health_check.path: required for http health checks', '10:7 pools.b.health_check.path: required for http health checks'],
  },
  {
    name: 'a pool needs a hot backend',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, pool: app }',
      'pools:',
      '  app:',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3001, role: warm }',
      '      - { name: b, address: 127.0.0.1:3002, role: warm }',
    ),
    issues: ['6:7 pools.app.backends: a pool needs at least one hot backend (all are warm)'],
  },
  {
    name: 'address conflicts: same address, wildcards, localhost, admin; port 0 never conflicts',
    yaml: lines(
      'admin: { listen: 127.0.0.1:8080 }',
      'listeners:',
      '  - { name: a, listen: 127.0.0.1:8080, pool: app }',
      '  - { name: b, listen: 0.0.0.0:9000, pool: app }',
      '  - { name: c, listen: 10.1.2.3:9000, pool: app }',
      '  - { name: d, listen: "[::]:7000", pool: app }',
      '  - { name: e, listen: 127.0.0.1:7000, pool: app }',
      '  - { name: f, listen: 127.0.0.1:0, pool: app }',
      '  - { name: g, listen: 127.0.0.1:0, pool: app }',
      '  - { name: h, listen: localhost:6000, pool: app }',
      '  - { name: i, listen: "[::1]:6000", pool: app }',
      '  - { name: j, listen: 127.0.0.2:7001, pool: app }',
      '  - { name: k, listen: 127.0.0.1:7001, pool: app }',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '3:24 listeners[0].listen: 127.0.0.1:8080 conflicts with admin on 127.0.0.1:8080 (line 1)',
      '5:24 listeners[2].listen: 10.1.2.3:9000 conflicts with listener "b" on 0.0.0.0:9000 (line 4)',
      '7:24 listeners[4].listen: 127.0.0.1:7000 conflicts with listener "d" on [::]:7000 (line 6)',
      '11:24 listeners[8].listen: [::1]:6000 conflicts with listener "h" on localhost:6000 (line 10)',
    ],
  },
  {
    name: 'admin on a non-loopback address needs token_env',
    yaml: lines('admin:', '  listen: 0.0.0.0:9901', 'listeners:', '  - { name: web, listen: 127.0.0.1:8080, pool: app }', 'pools:', '  app:', '    backends:', BACKEND),
    issues: ['2:3 admin.token_env: required when admin.listen is not a loopback address'],
  },
  {
    name: 'token_env naming an unset variable',
    yaml: lines('admin: { listen: 127.0.0.1:9901, token_env: HOTWARM_TOKEN }', 'listeners:', '  - { name: web, listen: 127.0.0.1:8080, pool: app }', 'pools:', '  app:', '    backends:', BACKEND),
    env: { OTHER: 'x' },
    issues: ['1:45 admin.token_env: environment variable HOTWARM_TOKEN is not set'],
  },
  {
    name: 'token_env naming an empty variable',
    yaml: lines('admin: { listen: 0.0.0.0:9901, token_env: HOTWARM_TOKEN }', 'listeners:', '  - { name: web, listen: 127.0.0.1:8080, pool: app }', 'pools:', '  app:', '    backends:', BACKEND),
    env: { HOTWARM_TOKEN: ' ' },
    issues: ['1:43 admin.token_env: environment variable HOTWARM_TOKEN is empty'],
  },
  {
    name: 'routes after a catch-all, or after a route that matches the same requests',
    yaml: lines(
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:8080',
      '    routes:',
      '      - { host: api.example.com, pool: app }',
      '      - { path_prefix: /, pool: app }',
      '      - { host: late.example.com, pool: app }',
      '  - name: web2',
      '    listen: 127.0.0.1:8081',
      '    routes:',
      '      - { host: a.example.com, path_prefix: /v1/, pool: app }',
      '      - { host: A.example.com, path_prefix: /v1/, pool: app }',
      '      - { path_prefix: /v2/, pool: app }',
      '      - { host: b.example.com, path_prefix: /v2/, pool: app }',
      '      - { pool: app }',
      'pools:',
      '  app:',
      '    backends:',
      BACKEND,
    ),
    issues: [
      '7:9 listeners[0].routes[2]: unreachable: routes[1] (line 6) above it is a catch-all',
      '12:9 listeners[1].routes[1]: unreachable: routes[0] (line 11) above it already matches every request it would',
      '14:9 listeners[1].routes[3]: unreachable: routes[2] (line 13) above it already matches every request it would',
    ],
  },
  {
    name: 'schema and cross-check errors together, sorted; an unknown pool that is also a bad name is reported once',
    yaml: lines(
      'listeners:',
      '  - { name: web, listen: 127.0.0.1:8080, pool: "no such" }',
      '  - { name: web, listen: 127.0.0.1:8081, pool: app, idle_timeout: 5 }',
      'pools:',
      '  app:',
      '    backends:',
      '      - { name: a, address: 127.0.0.1:3001, role: warm }',
    ),
    issues: [
      `2:48 listeners[0].pool: ${NAME_RULE}`,
      '3:13 listeners[1].name: duplicate listener name "web" (first at line 2)',
      '3:67 listeners[1].idle_timeout: expected a duration string like 2s, got 5',
      '7:7 pools.app.backends: a pool needs at least one hot backend (all are warm)',
    ],
  },
];

for (const [group, cases] of [['schema', schemaCases], ['yaml', yamlCases], ['cross-checks', crossCases]] as const) {
  t.test(group, async (t) => {
    for (const c of cases) {
      const issues = await issuesOf(c.yaml, c.env ? { env: c.env } : {});
      t.strictSame(issues.map(row), c.issues, c.name);
    }
  });
}

t.test('issues name the file as given', async (t) => {
  const issues = await issuesOf(lines('pools: {}'), { file: 'conf/../my proxy.yaml' });
  t.equal(issues.length, 1);
  t.equal(issues[0]?.file, 'conf/../my proxy.yaml');
});

t.test('values of the wrong shape never crash the checks', async (t) => {
  const weird = [
    '123',
    '"text"',
    lines('listeners: [1, null, "x", [], {}]', 'pools: [1]'),
    lines('listeners:', '  - { listen: 5, routes: 5, pool: 5, protocol: 5, tls: 5, name: 5 }', 'pools: { a: null }'),
    lines('listeners:', '  - { tls: { cert: 5, key: [] }, routes: [1, { host: 5, path_prefix: 6 }] }', 'pools: { a: { backends: [1, null, { role: 5 }], health_check: 5 } }'),
    lines('admin: 5', 'listeners: "x"', 'pools: "y"'),
    lines('admin: { listen: 5, token_env: 5 }', 'listeners: []', 'pools: {}'),
    lines('admin: { listen: "[::1]:1", token_env: [] }'),
  ];
  for (const text of weird) {
    const issues = await issuesOf(text);
    t.ok(issues.length > 0, `rejected: ${JSON.stringify(text)}`);
    t.ok(issues.every((i) => i.line >= 1 && i.col >= 1 && i.path !== '' && i.message !== ''), 'every issue is positioned and worded');
  }
});
