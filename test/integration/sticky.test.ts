/**
 * Sticky sessions with hot/warm semantics (SPEC §10), over real sockets: the cookie pins a
 * session to its backend; when that backend is down its sessions go to the warm that covers it
 * (cookie kept); with no cover they are re-balanced with a new cookie; forged cookies are
 * re-balanced; tokens survive reloads while their backend exists; a full backend lends the
 * request to another without touching the cookie.
 */
import t from 'tap';
import { TestBackend } from '../helpers/backend.js';
import { request, type Reply } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { FAST_CHECKS, startProxy, testWorkers, waitFor, writeConfig } from '../helpers/harness.js';

const COOKIE = 'hw_app';

function stickyConfig(backends: { name: string; address: string; role?: 'hot' | 'warm'; max_conns?: number }[], sticky: Record<string, unknown> = { cookie: COOKIE }): Record<string, unknown> {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: {
        health_check: FAST_CHECKS,
        connect_timeout: '200ms',
        response_timeout: '2s',
        failover: { slow_start: '0s', failback_hold: '1h' },
        sticky,
        backends,
      },
    },
  };
}

const setCookie = (r: Reply): string | undefined => {
  const value = r.headers['set-cookie'];
  return Array.isArray(value) ? value[0] : value;
};
const tokenOf = (r: Reply): string | undefined => setCookie(r)?.split(';')[0];

/** Requests without a cookie until `backend` answers; its cookie (`name=token`). */
async function cookieFor(port: number, backend: string): Promise<string> {
  for (let i = 0; i < 40; i++) {
    const r = await request(port);
    if (r.headers['x-backend'] === backend) return tokenOf(r) as string;
  }
  throw new Error(`no response from ${backend}`);
}

t.test('a session stays on its backend; forged cookies are re-balanced with a new cookie', async (t) => {
  const leaks = leakCheck();
  const backends = await Promise.all(['a', 'b', 'c'].map((name) => new TestBackend({ name }).start()));
  const h = await startProxy(stickyConfig(backends.map((b) => ({ name: b.name, address: b.address }))));
  const port = h.port();
  const first = await request(port);
  const cookie = setCookie(first) ?? '';
  t.match(cookie, new RegExp(`^${COOKIE}=[A-Za-z0-9_-]{22}; Path=/; HttpOnly; SameSite=Lax$`), 'opaque token, no Secure on plain HTTP');
  const token = (tokenOf(first) ?? '').slice(COOKIE.length + 1);
  t.notOk(/127\.0\.0\.1|backend|app/.test(token), 'the token reveals no address or name');
  t.notOk(backends.some((b) => token.includes(String(b.port))), 'nor a port');
  const pinned = first.headers['x-backend'];
  const replies = await Promise.all(Array.from({ length: 12 }, () => request(port, { headers: { cookie: `other=1; ${tokenOf(first)}` } })));
  t.same([...new Set(replies.map((r) => r.headers['x-backend']))], [pinned], 'every request with the cookie on the same backend');
  t.ok(replies.every((r) => setCookie(r) === undefined), 'a valid cookie is not re-set');

  const forged = await request(port, { headers: { cookie: `${COOKIE}=AAAAAAAAAAAAAAAAAAAAAA` } });
  t.equal(forged.status, 200);
  t.match(setCookie(forged), new RegExp(`^${COOKIE}=`), 'a forged cookie is replaced');
  t.not(tokenOf(forged), `${COOKIE}=AAAAAAAAAAAAAAAAAAAAAA`);
  await h.stop();
  await Promise.all(backends.map((b) => b.close()));
  await leaks.assertClean(t);
});

t.test('sticky backend down: its sessions go to the warm covering it, cookie kept', async (t) => {
  const leaks = leakCheck();
  const [a, b, w] = await Promise.all(['a', 'b', 'w'].map((name) => new TestBackend({ name }).start())) as [TestBackend, TestBackend, TestBackend];
  const h = await startProxy(stickyConfig([{ name: 'a', address: a.address }, { name: 'b', address: b.address }, { name: 'w', address: w.address, role: 'warm' }]));
  const port = h.port();
  const onA = await cookieFor(port, 'a');
  const onB = await cookieFor(port, 'b');
  await a.kill();
  await waitFor(() => h.log.events('promoted').length > 0, 5_000, 'w promoted');
  await waitFor(() => h.proxy.pools.get('app')?.core.serving.some((m) => m.name === 'w') === true, 5_000, 'w serving');
  const moved = await Promise.all(Array.from({ length: 6 }, () => request(port, { headers: { cookie: onA } })));
  t.same(moved.map((r) => r.headers['x-backend']), Array(6).fill('w'), 'a\'s sessions all go to its cover');
  t.ok(moved.every((r) => setCookie(r) === undefined), 'the cookie is left as it is while the cover serves');
  const stayed = await Promise.all(Array.from({ length: 6 }, () => request(port, { headers: { cookie: onB } })));
  t.same(stayed.map((r) => r.headers['x-backend']), Array(6).fill('b'), 'b\'s sessions do not move');

  // a comes back: with failback_hold 1h the pair holds, so a's sessions stay on the cover.
  await a.start();
  await waitFor(() => h.proxy.pools.get('app')?.core.serving.some((m) => m.name === 'a') === true, 5_000, 'a serving again');
  const held = await request(port, { headers: { cookie: onA } });
  t.equal(held.headers['x-backend'], 'w', 'until failback releases the warm, the session stays on it');
  await h.stop();
  await Promise.all([a.close(), b.close(), w.close()]);
  await leaks.assertClean(t);
});

t.test('no cover: re-balanced with a new cookie; tokens survive reloads while their backend exists', async (t) => {
  const leaks = leakCheck();
  const [a, b] = await Promise.all(['a', 'b'].map((name) => new TestBackend({ name }).start())) as [TestBackend, TestBackend];
  const file = `${t.testdir({})}/proxy.yaml`;
  const env = { HW_STICKY_KEY: 'a-long-shared-secret' };
  const sticky = { cookie: COOKIE, secret_env: 'HW_STICKY_KEY' };
  const config = stickyConfig([{ name: 'a', address: a.address }, { name: 'b', address: b.address }], sticky);
  const h = await startProxy(config, { file, env });
  const port = h.port();
  const onA = await cookieFor(port, 'a');

  // A reload that keeps a: the token still names it.
  writeConfig(file, stickyConfig([{ name: 'a', address: a.address }, { name: 'b', address: b.address, weight: 2 } as never], sticky));
  t.equal((await h.proxy.reload()).ok, true);
  const after = await request(port, { headers: { cookie: onA } });
  t.equal(after.headers['x-backend'], 'a', 'valid across the reload');
  t.equal(setCookie(after), undefined);

  await a.kill();
  await waitFor(() => h.proxy.pools.get('app')?.core.serving.every((m) => m.name !== 'a') === true, 5_000, 'a down');
  const lost = await request(port, { headers: { cookie: onA } });
  t.equal(lost.headers['x-backend'], 'b', 're-balanced');
  t.equal(tokenOf(lost), await cookieFor(port, 'b'), 'with a cookie for the new backend');

  // a removed from the config: its token is stale.
  await a.start();
  writeConfig(file, stickyConfig([{ name: 'b', address: b.address }], sticky));
  t.equal((await h.proxy.reload()).ok, true);
  const stale = await request(port, { headers: { cookie: onA } });
  t.equal(stale.headers['x-backend'], 'b');
  t.match(setCookie(stale), new RegExp(`^${COOKIE}=`), 'a stale token is replaced');
  await h.stop();
  await Promise.all([a.close(), b.close()]);
  await leaks.assertClean(t);
});

t.test('sticky backend full: that request is balanced, the cookie left as it is', async (t) => {
  const leaks = leakCheck();
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const a = await new TestBackend({
    name: 'a',
    handler: async (req, res) => {
      if (req.url === '/hold') await gate;
      res.writeHead(200, { 'x-backend': 'a' }).end('a');
    },
  }).start();
  const b = await new TestBackend({ name: 'b' }).start();
  // One request at a time on a in each process: with workers each takes ⌈max_conns / N⌉ (README),
  // so a is full on the whole host once every worker holds one request on it.
  const workers = testWorkers();
  const h = await startProxy(stickyConfig([{ name: 'a', address: a.address, max_conns: workers }, { name: 'b', address: b.address }]));
  const port = h.port();
  const onA = await cookieFor(port, 'a');
  const heldOnA = (): number => a.traffic.filter((r) => r.url === '/hold').length;
  const held: Promise<Reply>[] = [];
  // A hold handed to a worker whose slice of a is taken goes to b, which answers at once.
  for (let i = 0; i < 50 && heldOnA() < workers; i++) {
    const before = heldOnA();
    let answered = false;
    held.push(request(port, { path: '/hold', headers: { cookie: onA } }).finally(() => (answered = true)));
    await waitFor(() => answered || heldOnA() > before, 3_000, 'a busy');
  }
  t.equal(heldOnA(), workers, workers > 1 ? 'every worker holds a request on a' : 'a holds a request');
  const lent = await request(port, { headers: { cookie: onA } });
  t.equal(lent.headers['x-backend'], 'b', 'a is full: balanced to b');
  t.equal(setCookie(lent), undefined, 'the cookie is left as it is');
  release();
  t.ok((await Promise.all(held)).every((r) => r.status === 200), 'the held requests complete');
  // a has room once the held requests are released (in every worker): read, not slept on.
  await h.refresh();
  await waitFor(() => h.proxy.pools.get('app')?.backends.find((x) => x.name === 'a')?.inFlight === 0, 5_000, 'a to carry nothing');
  t.equal((await request(port, { headers: { cookie: onA } })).headers['x-backend'], 'a', 'back on a once it has room');
  await h.stop();
  await Promise.all([a.close(), b.close()]);
  await leaks.assertClean(t);
});
