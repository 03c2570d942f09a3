/**
 * The typical site the README walks a new user through (docs/site-example.yaml), as shipped:
 * `hotwarm check` accepts it once its certificates are in place (paths relative to the file), the
 * copy in docs/web-apps.md is the same file, and, run over local backends with only addresses,
 * ports and two timeouts changed, it does what its comments say: HTTP → HTTPS, two certificates
 * by SNI, the old domain redirected, /api/ stripped with HSTS set and Server removed, the long-poll
 * route outwaiting the pool's timeout, uploads over 10 MiB refused, sticky sessions that follow
 * a failover to the covering warm.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { TestBackend } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { adminRequest } from '../helpers/admin.js';
import { leakCheck } from '../helpers/handles.js';
import { FAST_CHECKS, startProxy, waitFor } from '../helpers/harness.js';
import { runBin } from '../helpers/process.js';

const run = promisify(execFile);
const EXAMPLE = fileURLToPath(new URL('../../docs/site-example.yaml', import.meta.url));
const WEB_APPS = fileURLToPath(new URL('../../docs/web-apps.md', import.meta.url));
const KEY_ENV = { HOTWARM_STICKY_KEY: 'k'.repeat(64) };

/** The README's certificates: `certs/<name>.crt|key` serving `<name>` and `*.<name>`. */
async function certificates(dir: string): Promise<void> {
  mkdirSync(join(dir, 'certs'), { recursive: true });
  for (const name of ['example.com', 'example.org']) {
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1', '-subj', `/CN=${name}`,
      '-addext', `subjectAltName=DNS:${name},DNS:*.${name}`, '-keyout', join(dir, 'certs', `${name}.key`), '-out', join(dir, 'certs', `${name}.crt`),
    ]);
  }
}

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
  /** CN of the certificate the server presented. */
  readonly subject: string;
}

/** An HTTPS/1.1 request to 127.0.0.1:`port` with `host` as SNI and Host. */
function get(port: number, host: string, path: string, options: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', servername: host, rejectUnauthorized: false, agent: false, headers: { host, ...options.headers } }, (res) => {
      const subject = String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN);
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body, subject }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

t.test('the README walk-through: `hotwarm check` accepts the example as shipped; docs/web-apps.md shows the same file', async (t) => {
  const dir = t.testdir({});
  await certificates(dir);
  copyFileSync(EXAMPLE, join(dir, 'proxy.yaml'));
  const ok = await runBin(['check', '-c', 'proxy.yaml'], { cwd: dir, env: { ...process.env, ...KEY_ENV } });
  t.equal(ok.stdout, 'ok: 2 listeners, 2 pools, 5 backends\n');
  t.equal(ok.code, 0);
  const withoutKey = await runBin(['check', '-c', 'proxy.yaml'], { cwd: dir, env: { ...process.env, HOTWARM_STICKY_KEY: '' } });
  t.equal(withoutKey.code, 1);
  t.match(withoutKey.stderr, /^proxy\.yaml:\d+:\d+: pools\.app\.sticky\.secret_env: environment variable HOTWARM_STICKY_KEY is empty/m, 'the key is required, with its position');
  const shown = /```yaml\n([\s\S]*?)```/.exec(readFileSync(WEB_APPS, 'utf8'))?.[1];
  t.equal(shown, readFileSync(EXAMPLE, 'utf8'), 'the page shows the shipped file');
});

t.test('the example does what its comments say, over local backends', async (t) => {
  const leaks = leakCheck();
  const dir = t.testdir({});
  await certificates(dir);
  // The app holds /events/ polls 800 ms: over the pool's timeout (300 ms here), under the route's.
  const handler = (name: string) => (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse, body: string): void => {
    const answer = (): void => {
      res.writeHead(200, { server: 'app-server/1.0', 'x-backend': name, 'x-seen-env': String(req.headers['x-env'] ?? ''), 'x-seen-debug': String(req.headers['x-debug'] ?? '') });
      res.end(`${name} ${req.method ?? ''} ${req.url ?? ''} ${body.length}`);
    };
    if (req.url?.includes('poll') === true) setTimeout(answer, 800);
    else answer();
  };
  const names = ['api-1', 'api-2', 'app-1', 'app-2', 'spare-1'];
  const backends = new Map(await Promise.all(names.map(async (name) => [name, await new TestBackend({ name, handler: handler(name) }).start()] as const)));
  const config = parse(readFileSync(EXAMPLE, 'utf8')) as {
    admin: { listen: string };
    listeners: { listen: string; tls?: { certificates: { cert: string; key: string }[] } }[];
    pools: Record<string, { response_timeout?: string; health_check?: unknown; failover?: Record<string, unknown>; backends: { name: string; address: string }[] }>;
  };
  config.admin.listen = '127.0.0.1:0';
  for (const listener of config.listeners) {
    listener.listen = '127.0.0.1:0';
    for (const c of listener.tls?.certificates ?? []) {
      c.cert = join(dir, c.cert);
      c.key = join(dir, c.key);
    }
  }
  for (const pool of Object.values(config.pools)) {
    pool.health_check = FAST_CHECKS;
    pool.response_timeout = '300ms';
    pool.failover = { ...pool.failover, slow_start: '0s' };
    for (const b of pool.backends) b.address = backends.get(b.name)?.address ?? '';
  }
  const h = await startProxy({ ...config, shutdown_timeout: '1s' }, { env: KEY_ENV });
  const http = h.port('http');
  const port = h.port('https');

  const redirect = await request(http, { path: '/login?next=/', headers: { host: 'example.com:80' } });
  t.equal(redirect.status, 308, 'port 80: every request to HTTPS');
  t.equal(redirect.headers.location, 'https://example.com/login?next=/');

  t.equal((await get(port, 'www.example.org', '/')).subject, 'example.org', 'SNI picks the second certificate');
  t.equal((await get(port, 'example.com', '/')).subject, 'example.com');
  const old = await get(port, 'old.example.com', '/a?b=1');
  t.equal(old.status, 301, 'the old domain moves permanently');
  t.equal(old.headers.location, 'https://example.com/a?b=1', 'path and query kept');

  const api = await get(port, 'example.com', '/api/users?id=7', { headers: { 'x-debug': '1', 'x-env': 'dev' } });
  t.match(api.body, /^api-[12] GET \/users\?id=7 0$/, '/api/ stripped, to the API pool');
  t.equal(api.headers['x-seen-env'], 'prod', 'X-Env set for the backend');
  t.equal(api.headers['x-seen-debug'], '', 'X-Debug removed');
  t.equal(api.headers['strict-transport-security'], 'max-age=31536000', 'HSTS added');
  t.equal(api.headers.server, undefined, 'Server removed');
  const slowApi = await get(port, 'example.com', '/api/poll');
  t.equal(slowApi.status, 504, 'the API pool keeps its own response timeout');
  t.equal(slowApi.headers['strict-transport-security'], 'max-age=31536000', 'HSTS on the proxy\'s own 504 too');

  const poll = await get(port, 'example.com', '/events/poll');
  t.equal(poll.status, 200, 'the long-poll route outwaits the pool\'s timeout');
  t.match(poll.headers['x-backend'], /^app-/);

  const upload = await get(port, 'example.com', '/upload', { method: 'POST', body: Buffer.alloc(10 * 1024 * 1024 + 1) });
  t.equal(upload.status, 413, 'an upload over 10 MiB is refused');
  t.equal(upload.headers['strict-transport-security'], 'max-age=31536000');

  const first = await get(port, 'example.com', '/');
  const cookie = String(first.headers['set-cookie']);
  t.match(cookie, /^hw_app=[\w-]{22}; Path=\/; HttpOnly; SameSite=Lax; Secure$/, 'the sticky cookie, Secure on TLS');
  t.equal(first.headers['strict-transport-security'], 'max-age=31536000', 'HSTS on the app too');
  const pinned = String(first.headers['x-backend']);
  const session = { cookie: cookie.split(';')[0] as string };
  for (let i = 0; i < 4; i++) t.equal((await get(port, 'example.com', '/', { headers: session })).headers['x-backend'], pinned, 'the session stays');

  await backends.get(pinned)?.kill();
  await waitFor(() => h.log.events('promoted').some((e) => e['backend'] === 'spare-1' && e['covers'] === pinned), 10_000, 'spare-1 covers the session\'s backend');
  await waitFor(() => h.proxy.pools.get('app')?.core.serving.some((m) => m.name === 'spare-1') === true, 10_000, 'spare-1 serving');
  const moved = await get(port, 'example.com', '/', { headers: session });
  t.equal(moved.headers['x-backend'], 'spare-1', 'the session follows its backend to the covering warm');
  t.equal(moved.headers['set-cookie'], undefined, 'the cookie is left as it is');

  // failback: manual — the backend comes back, the session stays with the warm until an operator
  // demotes it, then returns to its backend with the same cookie (moved once out, once back).
  await backends.get(pinned)?.start();
  await waitFor(() => h.proxy.pools.get('app')?.core.serving.some((m) => m.name === pinned) === true, 10_000, 'the backend serving again');
  t.equal((await get(port, 'example.com', '/', { headers: session })).headers['x-backend'], 'spare-1', 'back up: the session stays on the warm that covers it');
  t.equal((await adminRequest(h.adminPort(), '/pools/app/backends/spare-1/demote', { method: 'POST' })).status, 200, 'the operator demotes the warm');
  await waitFor(() => h.proxy.pools.get('app')?.core.serving.some((m) => m.name === 'spare-1') === false, 10_000, 'spare-1 released');
  const back = await get(port, 'example.com', '/', { headers: session });
  t.equal(back.headers['x-backend'], pinned, 'the session returns to its backend');
  t.equal(back.headers['set-cookie'], undefined, 'with the cookie it always had');

  await h.stop();
  await Promise.all([...backends.values()].map((b) => b.close()));
  await leaks.assertClean(t);
});
