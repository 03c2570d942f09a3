/**
 * Routing cannot be bypassed by spelling (SPEC §5), over real sockets: every class of spelling of
 * a protected prefix reaches the protected pool, and the backend receives the request target
 * exactly as the client sent it. Encoded slashes, backslashes and other letter case do not.
 */
import t, { type Test } from 'tap';
import { TestBackend } from '../helpers/backend.js';
import { rawRequest } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { FAST_CHECKS, startProxy } from '../helpers/harness.js';

async function setup(t: Test): Promise<{ admin: TestBackend; app: TestBackend; port: number; stop(): Promise<void> }> {
  const admin = await new TestBackend({ name: 'admin' }).start();
  const app = await new TestBackend({ name: 'app' }).start();
  t.teardown(() => Promise.all([admin.close(), app.close()]));
  const h = await startProxy({
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ path_prefix: '/admin/', pool: 'admin' }, { pool: 'app' }] }],
    pools: {
      admin: { health_check: FAST_CHECKS, backends: [{ name: 'admin', address: admin.address }] },
      app: { health_check: FAST_CHECKS, backends: [{ name: 'app', address: app.address }] },
    },
  });
  t.teardown(() => h.stop());
  return {
    admin,
    app,
    port: h.port(),
    async stop() {
      await h.stop();
      await Promise.all([admin.close(), app.close()]);
    },
  };
}

/** Sends one request with `target` as its exact request-target; resolves to the answering backend's name. */
async function routedTo(port: number, target: string): Promise<string> {
  const reply = await rawRequest(port, `GET ${target} HTTP/1.1\r\nHost: site.test\r\nConnection: close\r\n\r\n`);
  return /\r\nx-backend: (\w+)/i.exec(reply)?.[1] ?? reply.split('\r\n')[0] ?? '';
}

t.test('every spelling class of /admin/ reaches the admin pool, with its target unchanged', async (t) => {
  const leaks = leakCheck();
  const s = await setup(t);
  const spellings: [string, string][] = [
    ['encoded unreserved', '/%61dmin/panel'],
    ['encoded unreserved, lower and upper hex', '/%61%64%6d%69%6E/panel'],
    ['encoded dot segment', '/public/%2e%2E/admin/panel'],
    ['dot segments', '/public/../admin/./panel'],
    ['.. above the root', '/../../admin/panel'],
    ['merged slashes', '//admin//panel'],
    ['merged slashes around a dot segment', '/public//..//admin/panel'],
    ['all at once, with a query', '/./x/.%2E//%61dmin/panel?next=/public/&q=%2F'],
    ['the prefix itself', '/admin/'],
  ];
  for (const [what, target] of spellings) {
    t.equal(await routedTo(s.port, target), 'admin', `${what}: ${target}`);
    t.equal(s.admin.traffic.at(-1)?.url, target, `${what}: forwarded byte for byte`);
  }
  t.equal(s.app.traffic.length, 0, 'none reached the other pool');
  await s.stop();
  await leaks.assertClean(t);
});

t.test('encoded slashes, backslashes and other case are other paths; odd targets are forwarded as sent', async (t) => {
  const leaks = leakCheck();
  const s = await setup(t);
  const elsewhere = ['/admin%2Fpanel', '/admin%2fpanel', '/ADMIN/panel', '/%41dmin/panel', '/admin', '/x/..%2Fadmin/panel', '/admin\\panel'];
  for (const target of elsewhere) {
    t.equal(await routedTo(s.port, target), 'app', target);
    t.equal(s.app.traffic.at(-1)?.url, target, `${target}: forwarded byte for byte`);
  }
  for (const target of ['/a%20b;v=1/c?x=%2F&y=a%20b', '/%zz/%4', '/a//b/../c']) {
    t.equal(await routedTo(s.port, target), 'app', target);
    t.equal(s.app.traffic.at(-1)?.url, target, `${target}: forwarded byte for byte`);
  }
  t.equal(s.admin.traffic.length, 0, 'none reached the admin pool');
  await s.stop();
  await leaks.assertClean(t);
});

t.test('WebSocket upgrades are routed by the normalised path too', async (t) => {
  const leaks = leakCheck();
  const s = await setup(t);
  // The admin backend is not a WebSocket server: it answers 200, passed back as HTTP.
  const reply = await rawRequest(
    s.port,
    'GET /public/..//%61dmin/ws HTTP/1.1\r\nHost: site.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  );
  t.match(reply, /\r\nx-backend: admin\r\n/i, 'answered by the admin pool');
  t.equal(s.admin.traffic.at(-1)?.url, '/public/..//%61dmin/ws', 'forwarded byte for byte');
  t.equal(s.app.traffic.length, 0);
  await s.stop();
  await leaks.assertClean(t);
});
