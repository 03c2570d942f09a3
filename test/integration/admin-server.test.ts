/**
 * The admin listener against a fake {@link AdminHost}: the HTTP contract without a proxy behind
 * it — a reload that succeeds (200) or fails (422), control outcomes mapped to status codes, a
 * host that throws (500 without details), and refused upgrades.
 */
import t, { type Test } from 'tap';
import { AdminServer } from '../../src/control/admin.js';
import type { AdminHost, ControlOutcome, ReloadResult } from '../../src/control/admin-types.js';
import { EventLog } from '../../src/control/events.js';
import { adminRequest as get, body } from '../helpers/admin.js';
import { rawRequest } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { LogSink } from '../helpers/log-sink.js';

class FakeHost implements AdminHost {
  version = 3;
  lastReload: ReloadResult | null = null;
  next: ReloadResult = { ok: true, version: 4, at: '2026-01-01T00:00:00.000Z', changes: ['pool app: backend b added'], errors: [] };
  outcome: ControlOutcome = { ok: false, status: 404, error: 'unknown pool "x"' };
  calls: string[] = [];
  broken = false;
  ready = true;

  snapshot() {
    if (this.broken) throw new Error('secret internal detail');
    return { pools: [], listeners: [], workers: [] };
  }

  control(pool: string, backend: string, action: string, client: string): ControlOutcome {
    this.calls.push(`${action} ${pool}/${backend} by ${client}`);
    return this.outcome;
  }

  async reload(): Promise<ReloadResult> {
    this.lastReload = this.next;
    return this.next;
  }
}

/** An admin server for `host`, closed with the test (closing twice is allowed). */
async function serve(t: Test, host: AdminHost, log = new LogSink()) {
  const events = new EventLog(log.logger('error'));
  const server = new AdminServer({
    listen: { host: '127.0.0.1', port: 0 },
    token: null,
    host,
    events,
    metrics: { render: async () => 'm 1\n', contentType: 'text/plain; version=0.0.4; charset=utf-8' },
    logger: log.logger('error'),
  });
  t.teardown(() => server.close());
  const { port } = await server.listen();
  return { server, port, log };
}

t.test('reload: 200 with the result when applied, 422 when rejected; /status shows version and last reload', async (t) => {
  const leaks = leakCheck();
  const host = new FakeHost();
  const { server, port } = await serve(t, host);
  const ok = await get(port, '/reload', { method: 'POST' });
  t.equal(ok.status, 200);
  t.strictSame(body(ok), host.next);
  t.match(body(await get(port, '/status')), { version: 3, last_reload: { ok: true, version: 4 }, pools: [], listeners: [] });
  host.next = { ok: false, version: 3, at: '2026-01-01T00:00:01.000Z', changes: [], errors: ['proxy.yaml:3:5: pools: ...'] };
  const rejected = await get(port, '/reload', { method: 'POST' });
  t.equal(rejected.status, 422);
  t.match(body(rejected), { ok: false, errors: ['proxy.yaml:3:5: pools: ...'] });
  await server.close();
  await leaks.assertClean(t);
});

t.test('control outcomes: 200 with the backend, 404 and 409 with the error; the client address is passed on', async (t) => {
  const leaks = leakCheck();
  const host = new FakeHost();
  const { server, port } = await serve(t, host);
  const missing = await get(port, '/pools/x/backends/a/drain', { method: 'POST' });
  t.equal(missing.status, 404);
  t.strictSame(body(missing), { error: 'unknown pool "x"' });
  host.outcome = { ok: false, status: 409, error: 'a covers nothing: it is not promoted' };
  const refused = await get(port, '/pools/app/backends/a/demote', { method: 'POST' });
  t.equal(refused.status, 409);
  t.strictSame(body(refused), { error: 'a covers nothing: it is not promoted' });
  t.strictSame(host.calls, ['drain x/a by 127.0.0.1', 'demote app/a by 127.0.0.1']);
  t.equal((await get(port, '/metrics')).body, 'm 1\n');
  await server.close();
  await server.close();
  await leaks.assertClean(t);
});

t.test('a failing host: 500 with a generic error, the detail only in the log', async (t) => {
  const leaks = leakCheck();
  const host = new FakeHost();
  host.broken = true;
  const { server, port, log } = await serve(t, host);
  const reply = await get(port, '/status');
  t.equal(reply.status, 500);
  t.strictSame(body(reply), { error: 'internal error' });
  t.ok(log.lines.some((l) => l.msg === 'admin request failed'), 'logged');
  await server.close();
  await leaks.assertClean(t);
});

t.test('refused upgrades: wrong path 404, not a WebSocket 400', async (t) => {
  const leaks = leakCheck();
  const { server, port } = await serve(t, new FakeHost());
  const wrongPath = await rawRequest(port, 'GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n');
  t.match(wrongPath, /^HTTP\/1\.1 404 /);
  const notWs = await rawRequest(port, 'GET /events/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
  t.match(notWs, /^HTTP\/1\.1 400 /);
  await server.close();
  await leaks.assertClean(t);
});
