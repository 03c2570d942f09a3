/**
 * Security at the edge: the admin API is unreachable from the traffic port, forwarding headers
 * cannot be spoofed or smuggled through Connection, error bodies reveal nothing, TLS below 1.2
 * is refused, and metric label sets stay bounded whatever hosts and paths clients send.
 */
import t from 'tap';
import tls from 'node:tls';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { rawRequest, request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { backendSpecs, simpleConfig, startProxy, waitFor } from '../helpers/harness.js';
import { selfSigned } from '../helpers/tunnels.js';
import { closeAll, stopProxy, owned } from '../helpers/owned.js';

t.test('admin paths on the traffic port go to the backend, never to the admin API', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['app'])) as [TestBackend], closeAll);
  const h = own(await startProxy({ ...simpleConfig(backendSpecs([b])), admin: { listen: '127.0.0.1:0' } }), stopProxy);
  const paths: [string, string][] = [
    ['GET', '/status'],
    ['GET', '/metrics'],
    ['GET', '/events'],
    ['POST', '/reload'],
    ['POST', '/pools/app/backends/app/disable'],
    ['GET', '/'],
  ];
  for (const [method, path] of paths) {
    const reply = await request(h.port(), { method, path });
    t.equal(reply.body, 'app', `${method} ${path} answered by the backend`);
  }
  t.equal(b.traffic.length, paths.length, 'the backend received each request once');
  t.equal(h.log.events('admin').length, 0, 'no admin action happened');
  const status = await request(h.adminPort(), { path: '/status' });
  t.match(JSON.parse(status.body), { pools: [{ name: 'app', backends: [{ name: 'app', admin: 'enabled' }] }] });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('X-Forwarded-* from untrusted peers replaced; names listed in Connection stripped before ours are added', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['app'])) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]))), stopProxy);
  await rawRequest(
    h.port(),
    'GET / HTTP/1.1\r\nHost: site.example\r\nConnection: close, X-Forwarded-For, X-Real-Auth\r\nX-Forwarded-For: 6.6.6.6\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: evil.example\r\nX-Real-Auth: admin\r\n\r\n',
  );
  const seen = b.traffic[0]?.rawHeaders ?? [];
  const values = (name: string) => seen.filter((_, i) => i % 2 === 1 && seen[i - 1]?.toLowerCase() === name);
  t.strictSame(values('x-forwarded-for'), ['127.0.0.1'], 'exactly one X-Forwarded-For, ours');
  t.strictSame(values('x-forwarded-proto'), ['http']);
  t.strictSame(values('x-forwarded-host'), ['site.example']);
  t.strictSame(values('x-real-auth'), [], 'a header named in Connection does not cross the proxy');
  t.strictSame(values('connection').filter((v) => /x-forwarded|x-real/i.test(v)), [], 'nor does the Connection header that named it');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('error bodies never leak addresses, error text or stacks', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['app'])) as [TestBackend], closeAll);
  const h = own(await startProxy(simpleConfig(backendSpecs([b]), { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' }, passive: { consecutive_failures: 0 } })), stopProxy);
  await b.kill();
  const bad = await request(h.port());
  const malformed = await rawRequest(h.port(), 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n');
  for (const [name, text] of [['502', bad.body], ['400', malformed]] as const) {
    t.notMatch(text, /127\.0\.0\.1|:\d{4,5}\b|ECONN|HPE_|Error|at \S+ \(|node:/, `${name}: generic body`);
  }
  t.equal(bad.status, 502);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('TLS 1.1 and below are refused; TLS 1.2 works', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['app'])) as [TestBackend], closeAll);
  const dir = t.testdir();
  const { cert, key } = await selfSigned(dir, 'web');
  const h = own(await startProxy(simpleConfig(backendSpecs([b]), {}, { tls: { cert, key } }), { file: `${dir}/proxy.yaml` }), stopProxy);
  const handshake = (maxVersion: tls.SecureVersion) =>
    new Promise<string>((resolve) => {
      const socket = tls.connect({ host: '127.0.0.1', port: h.port(), rejectUnauthorized: false, maxVersion, minVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' });
      socket.once('secureConnect', () => {
        const version = socket.getProtocol() ?? '';
        socket.destroy();
        resolve(version);
      });
      socket.once('error', (err: NodeJS.ErrnoException) => resolve(`refused: ${err.code ?? err.message}`));
    });
  t.match(await handshake('TLSv1.1'), /^refused/, 'TLS 1.1 refused');
  t.match(await handshake('TLSv1'), /^refused/, 'TLS 1.0 refused');
  t.equal(await handshake('TLSv1.2'), 'TLSv1.2');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('metric label sets stay bounded under 10k random hosts and paths', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['app'])) as [TestBackend], closeAll);
  // Checks once at startup, then quiet, and a long response_timeout: on a loaded machine 10k
  // requests take a minute, and a check or a response timing out would turn some into 503/504.
  const h = own(await startProxy({
    ...simpleConfig(backendSpecs([b]), { health_check: { protocol: 'tcp', interval: '1h', timeout: '1s' }, response_timeout: '10s' }),
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ host: '*.known.example', pool: 'app' }, { path_prefix: '/api/', pool: 'app' }] }],
    admin: { listen: '127.0.0.1:0' },
  }), stopProxy);
  const http = await import('node:http');
  const agent = own(new http.Agent({ keepAlive: true, maxSockets: 16 }), (a) => a.destroy());
  const random = () => Math.random().toString(36).slice(2, 10);
  let sent = 0;
  const statuses = new Map<string, number>();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (sent < 10_000) {
        sent++;
        const host = Math.random() < 0.5 ? `${random()}.known.example` : `${random()}.other.example`;
        const path = Math.random() < 0.5 ? `/api/${random()}` : `/${random()}?q=${random()}`;
        const reply = await request(h.port(), { agent, path, headers: { host } });
        const key = reply.error === null ? String(reply.status) : `${reply.status} ${reply.error}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    }),
  );
  agent.destroy();
  const metrics = (await request(h.adminPort(), { path: '/metrics' })).body;
  const series = metrics.split('\n').filter((l) => l.startsWith('hotwarm_'));
  t.ok(series.length < 120, `${series.length} series after 10k requests with random hosts and paths`);
  t.notMatch(metrics, /other\.example|known\.example|\/api\//, 'no host or path in any label');
  // Access lines are written in batches (at most 50 ms late): wait for the last batch.
  const accounted = (): number => b.traffic.length + h.log.access.filter((l) => l.status === 404).length;
  await waitFor(() => accounted() >= 10_000, 2_000, 'the last access lines').catch(() => undefined);
  t.equal(accounted(), 10_000, `every request either routed or refused, none duplicated (${JSON.stringify(Object.fromEntries(statuses))})`);
  await own.stopAll();
  await leaks.assertClean(t);
});
