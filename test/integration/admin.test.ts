/**
 * The admin API over real sockets (SPEC §7): authentication, routing, /status, runtime control
 * and its effect on traffic, /metrics, and the event stream.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import t, { type Test } from 'tap';
import { adminRequest as get, body, isOpen, openStream } from '../helpers/admin.js';
import { startBackends, type TestBackend } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { FAST_CHECKS, startProxy, waitFor, writeConfig, type Harness } from '../helpers/harness.js';
import { closeAll, stopProxy, owned } from '../helpers/owned.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const TOKEN = 'adm-7f3c9b1e-token';
const ENV = { HOTWARM_TEST_ADMIN_TOKEN: TOKEN };

type Backends = [TestBackend, TestBackend, TestBackend, TestBackend];

function config(backends: readonly TestBackend[], options: { token?: boolean; failover?: Record<string, unknown>; admin?: string } = {}) {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    admin: { listen: options.admin ?? '127.0.0.1:0', ...(options.token ? { token_env: 'HOTWARM_TEST_ADMIN_TOKEN' } : {}) },
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: {
        health_check: FAST_CHECKS,
        connect_timeout: '200ms',
        response_timeout: '1s',
        failover: { failback: 'auto', failback_hold: '0s', slow_start: '0s', ...options.failover },
        backends: backends.map((b) => ({ name: b.name, address: b.address, role: b.name.startsWith('spare') ? 'warm' : 'hot' })),
      },
    },
  };
}

/** A proxy over four backends, stopped with the test (or earlier with {@link teardown}). */
async function setup(t: Test, options: Parameters<typeof config>[1] = {}): Promise<{ h: Harness; backends: Backends; port: number }> {
  const own = owned(t);
  const backends = own((await startBackends(['app-1', 'app-2', 'spare-1', 'spare-2'])) as Backends, closeAll);
  const h = own(await startProxy(config(backends, options), options.token ? { env: ENV } : {}), stopProxy);
  return { h, backends, port: h.adminPort() };
}

/** Stops the proxy, then its backends (both may be stopped again). */
async function teardown(h: Harness, backends: readonly TestBackend[]): Promise<void> {
  await h.stop();
  await Promise.all(backends.map((b) => b.close()));
}

/** Sends `n` requests one after another; returns how many each backend took. */
async function spread(h: Harness, backends: readonly TestBackend[], n = 12): Promise<Record<string, number>> {
  const before = backends.map((b) => b.traffic.length);
  for (let i = 0; i < n; i++) {
    const reply = await request(h.port());
    if (reply.status !== 200) throw new Error(`request failed: ${reply.status} ${reply.error ?? ''}`);
  }
  return Object.fromEntries(backends.map((b, i) => [b.name, b.traffic.length - (before[i] ?? 0)]));
}

const control = (port: number, backend: string, action: string, token?: string) =>
  get(port, `/pools/app/backends/${backend}/${action}`, { method: 'POST', ...(token ? { token } : {}) });

t.test('auth: bearer token on every endpoint but /healthz, ?token= on the page, subprotocol on the stream', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t, { token: true });

  const none = await get(port, '/status');
  t.equal(none.status, 401, 'no token → 401');
  t.match(none.headers['www-authenticate'], /^Bearer/);
  t.strictSame(body(none), { error: 'a bearer token is required' });
  const wrong = await get(port, '/status', { token: 'nope' });
  t.equal(wrong.status, 401, 'wrong token → 401');
  t.match(wrong.headers['www-authenticate'], 'error="invalid_token"');
  t.equal((await get(port, '/status', { token: `${TOKEN}x` })).status, 401, 'a longer token → 401');
  t.equal((await get(port, '/status', { token: TOKEN })).status, 200, 'right token → 200');
  t.equal((await get(port, '/status', { headers: { authorization: `Basic ${TOKEN}` } })).status, 401, 'another scheme → 401');
  t.equal((await get(port, '/healthz')).status, 200, '/healthz is open');

  for (const path of ['/metrics', '/events', '/nope']) t.equal((await get(port, path)).status, 401, `${path} needs the token`);
  const shell = await get(port, '/');
  t.equal(shell.status, 200, 'the page shell carries no data: served without the token, it asks for one');
  t.notMatch(shell.body, 'app-1', 'no pool or backend in the shell');
  t.equal((await get(port, '/reload', { method: 'POST' })).status, 401, 'POST /reload needs the token');
  t.equal((await control(port, 'app-1', 'drain')).status, 401, 'control needs the token');
  t.equal(h.proxy.pools.get('app')?.core.memberState('app-1')?.admin, 'enabled', 'and nothing happened');

  const page = await get(port, `/?token=${TOKEN}`);
  t.equal(page.status, 200, 'the dashboard accepts ?token=');
  t.match(page.headers['content-type'], 'text/html');
  t.match(page.headers['content-security-policy'], /script-src 'sha256-/);
  t.equal((await get(port, '/?token=nope')).status, 200, 'the shell again: a wrong token fails on its first /status');
  t.equal((await get(port, `/status?token=${TOKEN}`)).status, 401, '?token= is only for the page');

  const refused = await openStream(port);
  t.strictSame(refused, { refused: 401 }, 'stream without token → 401');
  t.strictSame(await openStream(port, { protocolToken: 'nope' }), { refused: 401 });
  const byProtocol = await openStream(port, { protocolToken: TOKEN });
  t.ok(isOpen(byProtocol), 'stream with the token subprotocol opens');
  if (isOpen(byProtocol)) {
    t.equal(byProtocol.ws.protocol, 'hotwarm.v1', 'the server selects hotwarm.v1, never echoes the token');
    await byProtocol.close();
  }
  const byHeader = await openStream(port, { headerToken: TOKEN });
  t.ok(isOpen(byHeader), 'stream with Authorization opens');
  if (isOpen(byHeader)) await byHeader.close();

  const traffic = await request(h.port(), { path: '/status' });
  t.equal(traffic.body, 'app-1', 'the traffic port never answers admin paths');
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('without a token: loopback Host names only, cross-origin mutations and streams refused', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t);
  t.equal((await get(port, '/status')).status, 200);
  t.equal((await get(port, '/status', { headers: { host: `localhost:${port}` } })).status, 200);
  const rebound = await get(port, '/status', { headers: { host: `evil.example:${port}` } });
  t.equal(rebound.status, 403, 'a non-loopback Host (DNS rebinding) → 403');
  const csrf = await get(port, '/pools/app/backends/app-1/drain', { method: 'POST', headers: { origin: 'http://evil.example' } });
  t.equal(csrf.status, 403, 'cross-origin POST → 403');
  t.equal(h.proxy.pools.get('app')?.core.memberState('app-1')?.admin, 'enabled');
  t.strictSame(await openStream(port, { origin: 'http://evil.example' }), { refused: 403 }, 'cross-origin stream → 403');
  const same = await get(port, '/pools/app/backends/app-1/enable', { method: 'POST', headers: { origin: `http://127.0.0.1:${port}` } });
  t.equal(same.status, 200, 'same-origin POST is fine');
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('routing: 404 for unknown paths, 405 with Allow for wrong methods, JSON errors', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t);
  const cases: [string, string, number, string | undefined][] = [
    ['GET', '/nope', 404, undefined],
    ['GET', '/status/', 404, undefined],
    ['GET', '/pools/app/backends/app-1/drain', 405, 'POST'],
    ['PUT', '/pools/app/backends/app-1/drain', 405, 'POST'],
    ['GET', '/reload', 405, 'POST'],
    ['POST', '/status', 405, 'GET, HEAD'],
    ['DELETE', '/events', 405, 'GET, HEAD'],
    ['POST', '/healthz', 405, 'GET, HEAD'],
    ['POST', '/pools/app/backends/app-1/explode', 404, undefined],
    ['POST', '/pools/nope/backends/app-1/drain', 404, undefined],
    ['POST', '/pools/app/backends/nope/drain', 404, undefined],
    ['POST', '/pools/app/backends/%E0%A4%A/drain', 404, undefined],
  ];
  for (const [method, path, status, allow] of cases) {
    const reply = await get(port, path, { method });
    t.equal(reply.status, status, `${method} ${path} → ${status}`);
    t.equal(reply.headers.allow, allow, `${method} ${path}: Allow`);
    t.type(body(reply).error, 'string', 'a JSON error');
  }
  t.match(body(await get(port, '/pools/nope/backends/app-1/drain', { method: 'POST' })), { error: 'unknown pool "nope"' });
  t.match(body(await get(port, '/pools/app/backends/nope/drain', { method: 'POST' })), { error: 'pool "app" has no backend "nope"' });
  const plain = await get(port, '/events/stream');
  t.equal(plain.status, 426, 'a plain GET on the stream → 426');
  const head = await get(port, '/status', { method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '');
  t.equal(h.log.events('admin').length, 0, 'nothing refused left an admin event');
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('/status: pools, backends, listeners, version and last reload; POST /reload applies the file or answers 422 with its errors', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backends = own((await startBackends(['app-1', 'app-2', 'spare-1', 'spare-2'])) as Backends, closeAll);
  const file = join(t.testdir(), 'proxy.yaml');
  const h = own(await startProxy(config(backends), { file }), stopProxy);
  const port = h.adminPort();
  const status = body<{ version: number; last_reload: unknown; pools: { name: string; uncovered: string[]; capacity_percent: number; backends: Record<string, unknown>[] }[]; listeners: unknown[] }>(await get(port, '/status'));
  t.equal(status.version, 1);
  t.equal(status.last_reload, null);
  t.match(status.listeners, [{ name: 'web', protocol: 'http', address: `127.0.0.1:${h.port()}`, open_connections: Number }]);
  const pool = status.pools[0];
  t.equal(pool?.name, 'app');
  t.strictSame(pool?.uncovered, []);
  t.equal(pool?.capacity_percent, 100, 'every hot backend serving: full capacity');
  t.strictSame(pool?.backends.map((b) => b.name), ['app-1', 'app-2', 'spare-1', 'spare-2'], 'config order');
  t.match(pool?.backends[0], {
    name: 'app-1', address: backends[0].address, role: 'hot', state: 'serving', health: 'up', admin: 'enabled', serving: true,
    in_flight: 0, max_conns: 0, weight: 1, effective_weight: 1, covers: null, covered_by: null, promotion: null, phase: null,
    serving_for_ms: Number, down_since: null, failback_hold_remaining_ms: null, last_check: { source: 'check', ok: true, detail: '200', at: String }, evidence: Array,
  });
  t.match(pool?.backends[2], { name: 'spare-1', role: 'warm', state: 'standby', phase: 'standby', serving: false, serving_for_ms: null });

  const changed = config(backends);
  changed.pools.app.backends[0] = { ...changed.pools.app.backends[0], weight: 3 } as (typeof changed.pools.app.backends)[number];
  writeConfig(file, changed);
  const applied = await get(port, '/reload', { method: 'POST' });
  t.equal(applied.status, 200);
  t.match(body(applied), { ok: true, version: 2, errors: [], changes: [/app-1 weight 1 → 3/] });
  t.match(body(await get(port, '/status')), { version: 2, last_reload: { ok: true, version: 2 } });

  writeFileSync(file, 'listeners: [\n');
  const refused = await get(port, '/reload', { method: 'POST' });
  t.equal(refused.status, 422);
  t.match(body(refused), { ok: false, version: 2, changes: [], errors: [/proxy\.yaml:\d+:\d+: /] });
  t.equal(body(await get(port, '/healthz')).status, 'ok');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('drain a hot: no new requests to it, a warm covers it; enable: it serves again and the warm is released', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t);
  const drained = await control(port, 'app-1', 'drain');
  t.equal(drained.status, 200);
  t.match(body(drained), { name: 'app-1', admin: 'draining', state: 'draining', serving: false, covered_by: 'spare-1' });
  const during = await spread(h, backends);
  t.equal(during['app-1'], 0, 'the drained hot gets no new requests');
  t.ok((during['spare-1'] ?? 0) > 0, `spare-1 covers it (${during['spare-1']} requests)`);
  t.equal(during['spare-2'], 0);
  t.match(h.log.events('admin'), [{ pool: 'app', backend: 'app-1', action: 'drain', client: '127.0.0.1' }]);
  t.match(h.log.events('promoted'), [{ backend: 'spare-1', covers: 'app-1' }]);
  const adminSeq = h.proxy.events.recent().find((e) => e.type === 'admin')?.seq ?? Infinity;
  const promotedSeq = h.proxy.events.recent().find((e) => e.type === 'promoted')?.seq ?? -1;
  t.ok(adminSeq < promotedSeq, 'the admin event comes before the promotion it caused');

  const enabled = await control(port, 'app-1', 'enable');
  t.match(body(enabled), { name: 'app-1', admin: 'enabled', state: 'serving', serving: true, covered_by: null });
  t.match(h.log.events('released'), [{ backend: 'spare-1', covered: 'app-1', reason: 'failback' }]);
  const after = await spread(h, backends);
  t.ok((after['app-1'] ?? 0) > 0, 'app-1 takes requests again');
  t.equal(after['spare-1'], 0, 'the warm is back in standby');
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('disable a hot: it takes nothing and a warm covers it', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t);
  const disabled = await control(port, 'app-2', 'disable');
  t.match(body(disabled), { name: 'app-2', admin: 'disabled', state: 'disabled', serving: false, covered_by: 'spare-1' });
  const during = await spread(h, backends);
  t.equal(during['app-2'], 0);
  t.ok((during['spare-1'] ?? 0) > 0);
  const status = body<{ pools: { backends: { name: string; covers: string | null }[] }[] }>(await get(port, '/status'));
  t.equal(status.pools[0]?.backends.find((b) => b.name === 'spare-1')?.covers, 'app-2', '/status shows the pair');
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('promote a standby warm: it takes traffic; demote: it stops; meaningless actions → 409', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t, { failover: { failback: 'manual' } });
  const promoted = await control(port, 'spare-2', 'promote');
  t.equal(promoted.status, 200);
  t.match(body(promoted), { name: 'spare-2', promotion: 'operator', state: 'serving', serving: true, covers: null });
  const during = await spread(h, backends);
  t.ok((during['spare-2'] ?? 0) > 0, `the promoted warm takes traffic (${during['spare-2']})`);

  const refusals: [string, string, string, RegExp][] = [
    ['spare-2', 'promote', 'ALREADY_PROMOTED', /already promoted/],
    ['app-1', 'promote', 'PROMOTE_HOT', /hot backend/],
    ['app-1', 'demote', 'DEMOTE_HOT', /hot backend/],
    ['spare-1', 'demote', 'NOT_PROMOTED', /covers nothing/],
  ];
  for (const [backend, action, code, reason] of refusals) {
    const reply = await control(port, backend, action);
    t.equal(reply.status, 409, `${action} ${backend} → 409`);
    t.match(body(reply), { error: reason, code });
  }
  await control(port, 'app-1', 'drain');
  const uncover = await control(port, 'spare-1', 'demote');
  t.equal(uncover.status, 409, 'demoting a warm whose hot is missing → 409');
  t.match(body(uncover), { error: /app-1 is not serving/, code: 'DEMOTE_WOULD_UNCOVER' });
  await control(port, 'app-1', 'enable');

  const demoted = await control(port, 'spare-2', 'demote');
  t.match(body(demoted), { name: 'spare-2', promotion: null, state: 'standby', serving: false });
  const after = await spread(h, backends);
  t.equal(after['spare-2'], 0, 'the demoted warm takes nothing');
  t.equal(h.log.events('admin').length, 4, 'one admin event per accepted action, none for the refused');
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('/metrics from the start: every series the config knows, at 0, and the process and build series', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t);
  const text = (await get(port, '/metrics')).body;
  const value = (series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  for (const backend of ['app-1', 'spare-2']) {
    for (const code of ['1xx', '2xx', '3xx', '4xx', '5xx']) t.equal(value(`hotwarm_requests_total{listener="web",pool="app",backend="${backend}",code="${code}",protocol="http1"}`), 0, `${backend} ${code}`);
    t.equal(value(`hotwarm_promotions_total{pool="app",backend="${backend}"}`), 0);
    t.equal(value(`hotwarm_releases_total{pool="app",backend="${backend}"}`), 0);
    for (const direction of ['in', 'out']) t.equal(value(`hotwarm_backend_bytes_total{pool="app",backend="${backend}",direction="${direction}"}`), 0);
  }
  t.equal(value('hotwarm_request_duration_seconds_count{listener="web",pool="app",code="5xx",protocol="http1"}'), 0);
  t.equal(value('hotwarm_retries_total{listener="web",pool="app"}'), 0);
  t.equal(value('hotwarm_no_backend_total{listener="web",pool="app"}'), 0);
  t.equal(value('hotwarm_reloads_total{result="ok"}'), 0);
  t.equal(value('hotwarm_reloads_total{result="failed"}'), 0);
  t.equal(value('hotwarm_listener_bytes_total{listener="web",direction="in"}'), 0);
  t.match(text, /^hotwarm_build_info\{version="\d+\.\d+\.\d+[^"]*"\} 1$/m);
  t.equal(value('hotwarm_config_version'), 1);
  const applied = value('hotwarm_last_reload_success_timestamp_seconds') ?? 0;
  t.ok(applied > Date.now() / 1000 - 600 && applied <= Date.now() / 1000, `the start time before any reload (${applied})`);
  t.ok((value('hotwarm_process_cpu_seconds_total') ?? 0) > 0, 'process CPU');
  t.ok((value('hotwarm_process_resident_memory_bytes') ?? 0) > 1e6, 'resident memory');
  t.ok((value('hotwarm_process_open_fds') ?? 0) > 3, 'open descriptors');
  t.ok((value('hotwarm_event_loop_lag_seconds') ?? -1) >= 0, 'event-loop lag');

  // Bytes: traffic only, both directions, per listener and backend.
  await request(h.port(), { path: '/x', method: 'POST', body: 'hello' });
  // A chunked upload has no length to take: counted as it arrives.
  await request(h.port(), { path: '/x', method: 'POST', body: 'chunky!', headers: { 'transfer-encoding': 'chunked' } });
  await h.refresh();
  const after = (await get(port, '/metrics')).body;
  const sum = (re: RegExp): number => [...after.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
  t.equal(sum(/^hotwarm_backend_bytes_total\{pool="app",backend="[^"]+",direction="in"\} (\d+)$/gm), 12, 'the request bodies, to the backend');
  t.ok(sum(/^hotwarm_backend_bytes_total\{pool="app",backend="[^"]+",direction="out"\} (\d+)$/gm) > 0, 'the response body, from it');
  t.equal(sum(/^hotwarm_listener_bytes_total\{listener="web",direction="in"\} (\d+)$/gm), 12);
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('/metrics after traffic and after a failover', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t);
  // With workers each balances its own requests: the split is whatever app-1 received.
  const took = await spread(h, backends, 10);
  await backends[0].kill();
  await waitFor(() => h.log.events('promoted').length === 1, 3_000, 'promotion');
  await request(h.port(), { path: '/x' });
  const reply = await get(port, '/metrics');
  t.equal(reply.status, 200);
  t.match(reply.headers['content-type'], 'text/plain; version=0.0.4');
  const text = reply.body;
  const value = (series: string): number | undefined => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  t.equal(value('hotwarm_requests_total{listener="web",pool="app",backend="app-1",code="2xx",protocol="http1"}'), took['app-1'], 'requests per backend and class');
  t.equal(value('hotwarm_request_duration_seconds_count{listener="web",pool="app",code="2xx",protocol="http1"}'), 11);
  t.equal(value('hotwarm_promotions_total{pool="app",backend="spare-1"}'), 1, 'promotions');
  t.equal(value('hotwarm_backend_up{pool="app",backend="app-1",role="hot"}'), 0, 'the crashed backend is down');
  t.equal(value('hotwarm_backend_up{pool="app",backend="spare-2",role="warm"}'), 1);
  t.equal(value('hotwarm_backend_serving{pool="app",backend="spare-1",role="warm"}'), 1, 'the warm serves');
  t.equal(value('hotwarm_backend_serving{pool="app",backend="app-1",role="hot"}'), 0);
  t.equal(value('hotwarm_pool_capacity_ratio{pool="app"}'), 1, 'a warm of the same weight covers app-1 (no slow start here)');
  t.equal(value('hotwarm_backend_in_flight{pool="app",backend="app-2",role="hot"}'), 0);
  t.ok((value('hotwarm_health_checks_total{pool="app",backend="app-1",result="fail"}') ?? 0) >= 1, 'failed checks counted');
  t.ok((value('hotwarm_health_checks_total{pool="app",backend="spare-2",result="ok"}') ?? 0) >= 1, 'ok checks counted');
  t.equal(value('hotwarm_client_connections{listener="web"}'), 0);
  t.notMatch(text, /path=|client=|host=/, 'no unbounded labels');
  await teardown(h, backends);
  await leaks.assertClean(t);
});

t.test('/events and the event stream: a crash is streamed as backend_down then promoted', async (t) => {
  const leaks = leakCheck();
  const { h, backends, port } = await setup(t, { token: true });
  const events = body<{ events: { type: string }[] }>(await get(port, '/events', { token: TOKEN }));
  t.ok(events.events.some((e) => e.type === 'listening'), '/events holds the ring buffer');
  const stream = await openStream(port, { headerToken: TOKEN });
  if (!isOpen(stream)) throw new Error('stream refused');
  await backends[0].kill();
  const promoted = await stream.next((m) => m.type === 'promoted');
  t.match(promoted, { type: 'promoted', pool: 'app', backend: 'spare-1', covers: 'app-1', seq: Number, time: String });
  const down = stream.messages.find((m) => m.type === 'backend_down');
  t.match(down, { backend: 'app-1', evidence: [{ at: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/ }] }, 'evidence times are ISO too');
  const after = body<{ pools: { backends: { name: string; down_since: string | null }[] }[] }>(await get(port, '/status', { token: TOKEN }));
  t.match(after.pools[0]?.backends.find((b) => b.name === 'app-1'), { down_since: /Z$/ }, 'a down backend says since when');
  t.ok((down?.seq ?? Infinity) < promoted.seq, 'backend_down first');
  const closed = new Promise<number>((resolve) => stream.ws.once('close', (code) => resolve(code)));
  await teardown(h, backends);
  t.ok((await closed) > 0, 'shutdown closes the stream');
  t.equal((await get(port, '/healthz')).error, 'ECONNREFUSED', 'and the admin listener');
  await leaks.assertClean(t);
});

t.test('an admin port that cannot be bound fails startup like a listener', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const blocker = own(http.createServer(), (s) => new Promise((resolve) => s.close(resolve)));
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  const taken = (blocker.address() as AddressInfo).port;
  const backends = own(await startBackends(['app-1', 'app-2', 'spare-1', 'spare-2']), closeAll);
  await t.rejects(startProxy(config(backends, { admin: `127.0.0.1:${taken}` })), { code: 'LISTEN_FAILED', message: /admin: cannot listen/ });
  await own.stopAll();
  await leaks.assertClean(t);
});
