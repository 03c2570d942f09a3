/**
 * Config errors of the web-app keys (redirects, header rules, strip_prefix, body limits), each
 * with its line:col; and what a valid route compiles to.
 */
import t from 'tap';
import { issuesOf, lines, row } from '../../helpers/config.js';
import { parseConfig } from '../../../src/config/load.js';

const POOLS = ['pools:', '  app:', '    backends:', '      - { name: a, address: 127.0.0.1:3001 }'];
const listener = (...extra: string[]): string => lines('listeners:', '  - name: web', '    listen: 127.0.0.1:8080', ...extra, ...POOLS);

t.test('web rule errors carry line and column', async (t) => {
  const cases: [string, string, string[]][] = [
    ['redirect together with pool', listener('    routes:', '      - { pool: app, redirect: { to: "https://x.example" } }'), ['5:32 listeners[0].routes[0].redirect: a route takes either "pool" or "redirect", not both']],
    ['route with neither', listener('    routes:', '      - { host: a.example }'), ['5:9 listeners[0].routes[0]: a route needs "pool" or "redirect"']],
    ['redirect target not absolute', listener('    routes:', '      - { redirect: { to: "/elsewhere" } }'), ['5:27 listeners[0].routes[0].redirect.to: "/elsewhere" is not an absolute http(s) URL like https://example.com']],
    ['redirect target ftp', listener('    routes:', '      - { redirect: { to: "ftp://x.example" } }'), ['5:27 listeners[0].routes[0].redirect.to: "ftp://x.example" is not an absolute http(s) URL like https://example.com']],
    ['redirect target with a query', listener('    routes:', '      - { redirect: { to: "https://x.example/?a=1" } }'), ['5:27 listeners[0].routes[0].redirect.to: "https://x.example/?a=1" must be scheme://host[:port][/path], without credentials, query or fragment (the request\'s path and query are appended)']],
    ['redirect code', listener('    routes:', '      - { redirect: { to: "https://x.example", code: 300 } }'), ['5:54 listeners[0].routes[0].redirect.code: must be one of 301, 302, 303, 307, 308']],
    ['strip_prefix without path_prefix', listener('    routes:', '      - { pool: app, strip_prefix: true }'), ['5:36 listeners[0].routes[0].strip_prefix: needs a path_prefix to strip']],
    ['invalid header name', listener('    routes:', '      - pool: app', '        request_headers: { set: { "X Bad": v } }'), ['6:35 listeners[0].routes[0].request_headers.set["X Bad"]: invalid name: "X Bad" is not a header name: only letters, digits and !#$%&\'*+.^_`|~- are allowed']],
    ['hop-by-hop header', listener('    routes:', '      - pool: app', '        response_headers: { remove: [Connection] }'), ['6:38 listeners[0].routes[0].response_headers.remove[0]: "Connection" is a hop-by-hop or framing header: the proxy manages it, rules may not']],
    ['set and remove the same header', listener('    routes:', '      - pool: app', '        response_headers: { set: { Server: x }, remove: [server] }'), ['6:58 listeners[0].routes[0].response_headers.remove[0]: "server" is both set and removed: set already replaces it']],
    ['redirect_https with a pool', listener('    redirect_https: true', '    pool: app'), ['5:11 listeners[0].pool: a redirect_https listener answers every request itself: it takes no pool']],
    ['forwarding keys on a redirect route', listener('    routes:', '      - { redirect: { to: "https://x.example" }, retries: 1 }'), ['5:59 listeners[0].routes[0].retries: a redirect route forwards nothing: this key does not apply']],
    ['proxy_protocol without trusted_proxies', listener('    proxy_protocol: true', '    pool: app'), ['4:21 listeners[0].proxy_protocol: needs trusted_proxies: the peers allowed to send the PROXY header (every other connection is closed)']],
    ['sticky cookie name and secret_env', lines('listeners:', '  - { name: web, listen: 127.0.0.1:8080, pool: app }', 'pools:', '  app:', '    sticky: { cookie: "a b", secret_env: NOPE_UNSET }', '    backends:', '      - { name: a, address: 127.0.0.1:3001 }'), ['5:23 pools.app.sticky.cookie: must be a cookie name (letters, digits and !#$%&\'*+.^_`|~-)', '5:42 pools.app.sticky.secret_env: environment variable NOPE_UNSET is not set']],
    ['max_body_size', listener('    max_body_size: lots', '    pool: app'), ['4:20 listeners[0].max_body_size: invalid size "lots": use bytes or KiB / MiB, e.g. 16KiB']],
  ];
  for (const [name, yaml, expected] of cases) {
    const issues = await issuesOf(yaml);
    t.strictSame(issues.map(row), expected, name);
  }
});

t.test('valid web rules load', async (t) => {
  const config = await parseConfig(
    listener(
      '    max_body_size: 1MiB',
      '    routes:',
      '      - { host: old.example.com, redirect: { to: "https://example.com/" } }',
      '      - path_prefix: /api/',
      '        pool: app',
      '        strip_prefix: true',
      '        response_timeout: 5m',
      '        retries: 0',
      '        request_headers: { set: { X-Env: prod }, remove: [X-Debug] }',
      '        response_headers: { set: { Strict-Transport-Security: "max-age=31536000" }, remove: [Server] }',
      '      - { pool: app }',
    ),
    'proxy.yaml',
    { env: {} },
  );
  const [redirect, api] = config.listeners[0]?.routes ?? [];
  t.same(redirect?.redirect, { to: 'https://example.com', code: 308 }, 'trailing / dropped, code defaults to 308');
  t.equal(api?.response_timeout, 300_000);
  t.equal(api?.retries, 0);
  t.equal(config.listeners[0]?.max_body_size, 1024 * 1024);
});
