/**
 * Backends from DNS against a real DNS server (dnsmasq, test/helpers/dns.ts) whose records
 * change during the test: A answers and DNS names in `address`, SRV answers with weights, a
 * server that stops answering (last answer kept), NXDOMAIN (drained after three lookups in a
 * row), an unreachable resolver at startup, and an answer larger than the cap.
 */
import http from 'node:http';
import t from 'tap';
import { adminRequest, body } from '../helpers/admin.js';
import { startBackends } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { DnsServer, dnsmasqAvailable } from '../helpers/dns.js';
import { runBin } from '../helpers/process.js';
import { FAST_CHECKS, freePorts, startProxy, testWorkers, waitFor, type Harness } from '../helpers/harness.js';
import { MAX_ADDRESSES_PER_NAME } from '../../src/upstream/discovery.js';

t.ok(dnsmasqAvailable(), 'dnsmasq is installed (.ci/run installs it)');

/** An HTTP backend on one loopback address (127.0.0.x), answering with that address. */
async function ipBackend(ip: string, port: number): Promise<http.Server> {
  const server = http.createServer((req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(ip));
  server.keepAliveTimeout = 1_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, ip, () => resolve());
  });
  return server;
}

const closeAll = (servers: readonly http.Server[]): Promise<unknown> =>
  Promise.all(servers.map((s) => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); })));

const names = (h: Harness, pool = 'app'): string[] => h.proxy.pools.get(pool)?.backends.map((b) => b.name) ?? [];
const backend = (h: Harness, name: string, pool = 'app') => h.proxy.pools.get(pool)?.backends.find((b) => b.name === name);
const failures = (h: Harness) => h.log.events('discovery_failed');

/** A pool fed by `dns` (A or SRV answers for `port`), checked every 100 ms over TCP, looked up every second. */
function discoveredPool(dns: string, port: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    health_check: { protocol: 'tcp', interval: '100ms', timeout: '1s', rise: 1, fall: 2 },
    resolve_interval: '1s',
    discover: [{ dns, port }],
    ...extra,
  };
}

t.test('A answers and names in address follow the DNS; failures keep the last answer; NXDOMAIN drains after 3', async (t) => {
  const dns = await DnsServer.start({ 'app.hw.test': ['127.0.0.2', '127.0.0.3'], 'web.hw.test': ['127.0.0.2'] });
  t.teardown(() => dns.close());
  const [port] = (await freePorts(1)) as [number];
  const servers = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((ip) => ipBackend(ip, port)));
  t.teardown(() => closeAll(servers));
  const h = await startProxy({
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    admin: { listen: '127.0.0.1:0' },
    resolvers: [dns.address],
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: discoveredPool('app.hw.test', port, {
        failover: { slow_start: '0s' },
        backends: [{ name: 'named', address: `web.hw.test:${port}`, role: 'warm' }],
      }),
    },
  });
  t.teardown(() => h.stop());
  const a2 = `app.hw.test/127.0.0.2:${port}`;
  const a3 = `app.hw.test/127.0.0.3:${port}`;
  const a4 = `app.hw.test/127.0.0.4:${port}`;
  t.strictSame(names(h), ['named', a2, a3], 'listed first, then one backend per address, named <dns>/<ip>:<port>');
  t.equal(backend(h, 'named')?.address, `127.0.0.2:${port}`, 'a name in address is resolved at load');
  t.ok(h.proxy.ready, 'checked in the first round');

  const seen = new Set<string>();
  for (let i = 0; i < 8; i++) seen.add((await request(h.port(), { path: '/' })).body);
  t.strictSame([...seen].sort(), ['127.0.0.2', '127.0.0.3'], 'both discovered backends take traffic');

  // Admin URLs take the generated names percent-encoded.
  const drain = await adminRequest(h.adminPort(), `/pools/app/backends/${encodeURIComponent(a3)}/drain`, { method: 'POST' });
  t.equal(drain.status, 200, 'drain by percent-encoded name');
  t.match(body(drain), { name: a3 });
  t.equal((await adminRequest(h.adminPort(), `/pools/app/backends/${encodeURIComponent(a3)}/enable`, { method: 'POST' })).status, 200);
  const status = body<{ pools: { name: string; backends: { name: string }[] }[] }>(await adminRequest(h.adminPort(), '/status'));
  t.strictSame(status.pools[0]?.backends.map((b) => b.name), ['named', a2, a3]);

  // The answer changes: .2 goes, .4 comes; web.hw.test moves to .4.
  const kept = backend(h, a3);
  await dns.setHosts({ 'app.hw.test': ['127.0.0.3', '127.0.0.4'], 'web.hw.test': ['127.0.0.4'] });
  await waitFor(() => names(h).includes(a4) && !names(h).includes(a2), 5_000, 'the new answer to apply');
  t.equal(backend(h, a3), kept, 'an address still in the answer keeps its backend (and its state)');
  t.ok(h.log.events('backend_up').some((e) => e.backend === a4), 'the new address was checked before serving');
  await waitFor(() => backend(h, 'named')?.address === `127.0.0.4:${port}`, 5_000, 'the named backend to move');
  const after = new Set<string>();
  for (let i = 0; i < 8; i++) after.add((await request(h.port(), { path: '/' })).body);
  t.strictSame([...after].sort(), ['127.0.0.3', '127.0.0.4'], 'traffic follows the answer');

  // The server stops answering: failures are logged and counted, the last answer stays.
  await dns.stop();
  await waitFor(() => failures(h).some((e) => e.dns === 'app.hw.test'), 8_000, 'a failed lookup');
  const failure = failures(h).find((e) => e.dns === 'app.hw.test');
  t.match(failure, { pool: 'app', query: 'a', kept_addresses: 2 });
  t.match(String(failure?.result), /^(refused|timeout)$/);
  t.strictSame(names(h), ['named', a3, a4], 'a failed lookup changes nothing');

  // NXDOMAIN: the addresses stay for two lookups and drain at the third.
  await dns.resume();
  await dns.setHosts({ 'web.hw.test': ['127.0.0.4'] });
  await waitFor(() => failures(h).some((e) => e.result === 'nxdomain' && e.empty_in_a_row === 1), 8_000, 'the first NXDOMAIN');
  t.ok(names(h).includes(a3), 'still there after one NXDOMAIN');
  await waitFor(() => failures(h).some((e) => e.result === 'nxdomain' && e.empty_in_a_row === 3), 8_000, 'the third NXDOMAIN');
  t.match(failures(h).find((e) => e.empty_in_a_row === 3), { kept_addresses: 0 });
  await waitFor(() => names(h).length === 1, 5_000, 'the addresses to drain');
  t.strictSame(names(h), ['named']);

  const metrics = (await adminRequest(h.adminPort(), '/metrics')).body;
  const count = (result: string): number => Number(new RegExp(`hotwarm_discovery_failures_total\\{pool="app",result="${result}"\\} (\\d+)`).exec(metrics)?.[1] ?? -1);
  t.ok(count('nxdomain') >= 3, 'NXDOMAIN lookups counted');
  t.ok(count('refused') + count('timeout') >= 1, 'server failures counted');
  t.equal(count('servfail'), 0, 'other results start at 0');
});

t.test('a changed answer reaches every worker: a new address takes traffic in each, a removed one none', async (t) => {
  const dns = await DnsServer.start({ 'every.hw.test': ['127.0.0.2', '127.0.0.3'] });
  t.teardown(() => dns.close());
  const [port] = (await freePorts(1)) as [number];
  const servers = await Promise.all(['127.0.0.2', '127.0.0.3', '127.0.0.4'].map((ip) => ipBackend(ip, port)));
  t.teardown(() => closeAll(servers));
  const h = await startProxy({
    log: { level: 'info' },
    shutdown_timeout: '1s',
    resolvers: [dns.address],
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: discoveredPool('every.hw.test', port, { failover: { slow_start: '0s' } }),
    },
  });
  t.teardown(() => h.stop());
  const a2 = `every.hw.test/127.0.0.2:${port}`;
  const a4 = `every.hw.test/127.0.0.4:${port}`;
  await dns.setHosts({ 'every.hw.test': ['127.0.0.3', '127.0.0.4'] });
  await waitFor(() => names(h).includes(a4) && !names(h).includes(a2), 8_000, 'the new answer to apply');
  await waitFor(() => backend(h, a4)?.health.health === 'up', 5_000, 'the new address to be up');
  // Access lines from here on are counted; with workers each carries the id of the worker that served.
  const from = h.log.access.length;
  const workers = testWorkers();
  const ids = workers > 1 ? Array.from({ length: workers }, (_, i) => i + 1) : [undefined];
  const servedBy = (): Set<unknown> => new Set(h.log.access.slice(from).filter((l) => l.backend === a4).map((l) => l.worker));
  const bodies = new Set<string>();
  // One connection per request: node:cluster hands connections to the workers in turn.
  for (let i = 0; i < 200 && (i < 8 * workers || servedBy().size < ids.length); i++) {
    bodies.add((await request(h.port(), { path: '/' })).body);
    // Access lines are written in batches (≤ 50 ms): every 8 requests, wait for theirs.
    if (i % 8 === 7) await waitFor(() => h.log.access.length - from >= i + 1, 5_000, 'access lines');
  }
  await waitFor(() => servedBy().size === ids.length, 5_000, 'every worker to have served the new address');
  t.strictSame([...servedBy()].sort(), ids, workers > 1 ? 'every worker sends traffic to the new address' : 'the new address takes traffic');
  t.strictSame([...bodies].sort(), ['127.0.0.3', '127.0.0.4'], 'only addresses of the new answer answer');
  t.notOk(h.log.access.slice(from).some((l) => l.backend === a2), 'the removed address gets no new request in any worker');
});

t.test('SRV: ports and weights from the answer (clamped to 1-256), the entry\'s role; a reload keeps them', async (t) => {
  const [port] = (await freePorts(1)) as [number];
  const dns = await DnsServer.start({ 'srv1.hw.test': ['127.0.0.5'], 'srv2.hw.test': ['127.0.0.6'] }, [
    { name: '_http._tcp.hw.test', target: 'srv1.hw.test', port, weight: 5 },
    { name: '_http._tcp.hw.test', target: 'srv2.hw.test', port, weight: 0 },
  ]);
  t.teardown(() => dns.close());
  const servers = await Promise.all(['127.0.0.5', '127.0.0.6'].map((ip) => ipBackend(ip, port)));
  t.teardown(() => closeAll(servers));
  const [hot] = await startBackends(['hot-1']);
  t.teardown(() => hot?.close());
  const config = {
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    resolvers: [dns.address],
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: {
        health_check: FAST_CHECKS,
        resolve_interval: '1s',
        discover: [{ dns: '_http._tcp.hw.test', role: 'warm' }],
        backends: [{ name: 'hot-1', address: hot?.address }],
      },
    },
  };
  const file = `${t.testdir({})}/proxy.yaml`;
  const h = await startProxy(config, { file });
  t.teardown(() => h.stop());
  const s1 = `_http._tcp.hw.test/127.0.0.5:${port}`;
  const s2 = `_http._tcp.hw.test/127.0.0.6:${port}`;
  t.strictSame(names(h), ['hot-1', s1, s2]);
  t.match(backend(h, s1), { role: 'warm', weight: 5 });
  t.match(backend(h, s2), { role: 'warm', weight: 1 }, 'SRV weight 0 → 1');

  const kept = backend(h, s1);
  const result = await h.proxy.reload();
  t.ok(result.ok);
  t.equal(backend(h, s1), kept, 'a reload keeps discovered backends with their state');

  await dns.setSrv([{ name: '_http._tcp.hw.test', target: 'srv1.hw.test', port, weight: 900 }]);
  await waitFor(() => !names(h).includes(s2), 5_000, 'the SRV answer to apply');
  t.equal(backend(h, s1), kept, 'same backend');
  t.equal(kept?.weight, 256, 'SRV weight 900 → 256, applied in place');
});

t.test('an unreachable resolver at startup: static backends serve, lookups retry until it answers', async (t) => {
  const [dnsPort, port] = (await freePorts(2)) as [number, number];
  const [hot] = await startBackends(['hot-1']);
  t.teardown(() => hot?.close());
  const servers = [await ipBackend('127.0.0.7', port)];
  t.teardown(() => closeAll(servers));
  const h = await startProxy({
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    resolvers: [`127.0.0.1:${dnsPort}`],
    listeners: [
      { name: 'web', listen: '127.0.0.1:0', pool: 'app' },
      { name: 'only', listen: '127.0.0.1:0', pool: 'dns_only' },
    ],
    pools: {
      app: {
        health_check: FAST_CHECKS,
        resolve_interval: '1s',
        discover: [{ dns: 'late.hw.test', port }],
        backends: [{ name: 'hot-1', address: hot?.address }],
      },
      dns_only: discoveredPool('late.hw.test', port),
    },
  });
  t.teardown(() => h.stop());
  t.strictSame(names(h), ['hot-1'], 'started with the listed backends');
  t.strictSame(names(h, 'dns_only'), [], 'a pool with only discover entries starts empty');
  t.ok(failures(h).length >= 1, 'the failed lookup is an event');
  t.equal((await request(h.port(), { path: '/' })).status, 200, 'and serves');
  t.equal((await request(h.port('only'), { path: '/' })).status, 503, 'an empty pool answers 503');
  const dns = await DnsServer.start({ 'late.hw.test': ['127.0.0.7'] }, [], dnsPort);
  t.teardown(() => dns.close());
  await waitFor(() => names(h).length === 2 && names(h, 'dns_only').length === 1, 8_000, 'the name to resolve once the server answers');
  t.strictSame(names(h), ['hot-1', `late.hw.test/127.0.0.7:${port}`]);
  await waitFor(() => h.log.events('backend_up').some((e) => e.pool === 'dns_only'), 5_000, 'the discovered backend to be checked');
  t.equal((await request(h.port('only'), { path: '/' })).body, '127.0.0.7', 'and the pool serves from it');
});

t.test(`an answer with more than ${MAX_ADDRESSES_PER_NAME} addresses is cut at the cap`, async (t) => {
  const many = Array.from({ length: 300 }, (_, i) => `127.1.${Math.floor(i / 200)}.${(i % 200) + 1}`);
  const dns = await DnsServer.start({ 'big.hw.test': many });
  t.teardown(() => dns.close());
  const [hot] = await startBackends(['hot-1']);
  t.teardown(() => hot?.close());
  const h = await startProxy({
    log: { level: 'info' },
    shutdown_timeout: '1s',
    resolvers: [dns.address],
    listeners: [{ name: 'web', listen: '127.0.0.1:0', pool: 'app' }],
    pools: {
      app: {
        health_check: { protocol: 'tcp', interval: '5s', timeout: '1s' },
        resolve_interval: '1m',
        discover: [{ dns: 'big.hw.test', port: 9, role: 'warm' }],
        backends: [{ name: 'hot-1', address: hot?.address }],
      },
    },
  });
  t.teardown(() => h.stop());
  t.equal(names(h).length, 1 + MAX_ADDRESSES_PER_NAME, 'listed + the cap');
  t.ok(h.log.lines.some((l) => l.msg === 'DNS answer has more addresses than are used' && l.addresses === 300), 'the cut is logged');
  t.equal((await request(h.port(), { path: '/' })).status, 200);
});

t.test('hotwarm check never resolves: cluster-internal names pass anywhere', async (t) => {
  const dir = t.testdir({
    'proxy.yaml': [
      'resolvers: [10.96.0.10]',
      'listeners: [{ name: web, listen: "127.0.0.1:8080", pool: app }]',
      'pools:',
      '  app:',
      '    resolve_interval: 5s',
      '    discover:',
      '      - { dns: app.default.svc.cluster.local, port: 8080 }',
      '      - { dns: _http._tcp.spare.service.consul, role: warm }',
      '    backends:',
      '      - { name: db, address: "db.nowhere.invalid:5432" }',
      '',
    ].join('\n'),
  });
  const out = await runBin(['check', '-c', 'proxy.yaml'], { cwd: dir });
  t.equal(out.code, 0, out.stderr);
  t.equal(out.stdout, 'ok: 1 listener, 1 pool, 1 backend\n', 'listed backends are counted; discovered ones exist only at run time');
});
