/** config/diff: every kind of change a reload can bring, through the real loader. */
import t from 'tap';
import { stringify } from 'yaml';
import { diffConfig, formatDuration, type ReloadPlan } from '../../../src/config/diff.js';
import { parseConfig } from '../../../src/config/load.js';
import type { Config } from '../../../src/config/schema.js';

type Raw = Record<string, unknown>;
type PoolRaw = Raw & { backends: Raw[] };
type Editable = Raw & { listeners: Raw[]; pools: { app: PoolRaw } & Record<string, PoolRaw> };

/** Two listeners (web: routes over app and api; db: tcp) and two pools. */
function base(): Raw {
  return {
    shutdown_timeout: '30s',
    listeners: [
      { name: 'web', listen: '127.0.0.1:8080', routes: [{ host: 'api.example.com', pool: 'api' }, { pool: 'app' }] },
      { name: 'db', listen: '127.0.0.1:6432', protocol: 'tcp', pool: 'app' },
    ],
    pools: {
      app: {
        backends: [
          { name: 'a', address: '127.0.0.1:3001', weight: 3 },
          { name: 'b', address: '127.0.0.1:3002' },
          { name: 'spare', address: '127.0.0.1:3101', role: 'warm' },
        ],
      },
      api: { backends: [{ name: 'x', address: '127.0.0.1:4001' }] },
    },
  };
}

const load = (raw: Raw): Promise<Config> => parseConfig(stringify(raw), 'proxy.yaml', { env: {} });

/** The plan from `base()` to `base()` changed by `edit`. */
async function plan(edit: (raw: Editable) => void): Promise<ReloadPlan> {
  const next = base() as Editable;
  edit(next);
  return diffConfig(await load(base()), await load(next));
}

const EMPTY_LISTENERS = { added: [], removed: [], rebound: [], updated: [] };
const EMPTY_POOLS = { added: [], removed: [], updated: [] };

t.test('nothing changed', async (t) => {
  const p = await plan(() => undefined);
  t.strictSame(p, { listeners: EMPTY_LISTENERS, pools: EMPTY_POOLS, settings: [], changed: false, summary: [] });
});

t.test('a weight change keeps the backend and lists the new weight', async (t) => {
  const p = await plan((c) => {
    (c.pools.app.backends[0] as Raw).weight = 5;
    (c.pools.app.backends[1] as Raw).max_conns = 10;
  });
  t.strictSame(p.listeners, EMPTY_LISTENERS);
  t.strictSame(p.pools.updated, [{
    name: 'app',
    settings: [],
    backends: {
      kept: [
        { name: 'a', changes: [{ key: 'weight', from: '3', to: '5' }] },
        { name: 'b', changes: [{ key: 'max_conns', from: '0', to: '10' }] },
        { name: 'spare', changes: [] },
      ],
      added: [],
      removed: [],
      replaced: [],
    },
    reordered: false,
  }]);
  t.strictSame(p.summary, ['pool app: backend a weight 3 → 5', 'pool app: backend b max_conns 0 → 10']);
  t.equal(p.changed, true);
});

t.test('backend added and removed', async (t) => {
  const p = await plan((c) => {
    c.pools.app.backends.splice(1, 1, { name: 'c', address: '127.0.0.1:3003', weight: 2 });
  });
  const app = p.pools.updated[0];
  t.strictSame(app?.backends.added, ['c']);
  t.strictSame(app?.backends.removed, ['b']);
  t.strictSame(app?.backends.kept.map((b) => b.name), ['a', 'spare']);
  t.equal(app?.reordered, false, 'an addition or removal is not a reorder');
  t.strictSame(p.summary, ['pool app: backend c added (127.0.0.1:3003, hot, weight 2)', 'pool app: backend b removed']);
});

t.test('a backend whose address changes is replaced', async (t) => {
  const p = await plan((c) => {
    (c.pools.app.backends[1] as Raw).address = '127.0.0.1:3999';
  });
  t.strictSame(p.pools.updated[0]?.backends.replaced, [{ name: 'b', changes: [{ key: 'address', from: '127.0.0.1:3002', to: '127.0.0.1:3999' }] }]);
  t.strictSame(p.pools.updated[0]?.backends.kept.map((b) => b.name), ['a', 'spare']);
  t.strictSame(p.summary, ['pool app: backend b replaced (address 127.0.0.1:3002 → 127.0.0.1:3999)']);
});

t.test('a backend whose role changes is replaced', async (t) => {
  const p = await plan((c) => {
    (c.pools.app.backends[2] as Raw).role = 'hot';
    (c.pools.app.backends[2] as Raw).weight = 2;
  });
  t.strictSame(p.pools.updated[0]?.backends.replaced, [{
    name: 'spare',
    changes: [{ key: 'weight', from: '1', to: '2' }, { key: 'role', from: 'warm', to: 'hot' }],
  }]);
  t.strictSame(p.summary, ['pool app: backend spare replaced (weight 1 → 2, role warm → hot)']);
});

t.test('backend order', async (t) => {
  const p = await plan((c) => {
    c.pools.app.backends.reverse();
  });
  t.equal(p.pools.updated[0]?.reordered, true);
  t.strictSame(p.summary, ['pool app: backend order changed']);
});

t.test('pool added and removed', async (t) => {
  const p = await plan((c) => {
    delete c.pools.api;
    c.pools.web2 = { backends: [{ name: 'w1', address: '127.0.0.1:5001' }, { name: 'w2', address: '127.0.0.1:5002' }] };
    c.listeners[0] = { name: 'web', listen: '127.0.0.1:8080', routes: [{ host: 'api.example.com', pool: 'web2' }, { pool: 'app' }] };
  });
  t.strictSame(p.pools, { added: ['web2'], removed: ['api'], updated: [] });
  t.strictSame(p.listeners.updated, [{ name: 'web', changes: [{ key: 'routes', from: 'api.example.com:api *:app', to: 'api.example.com:web2 *:app' }] }]);
  t.strictSame(p.summary, [
    'listener web: routes api.example.com:api *:app → api.example.com:web2 *:app',
    'pool web2 added (2 backends)',
    'pool api removed',
  ]);
});

t.test('pool timeouts, checks and policies', async (t) => {
  const p = await plan((c) => {
    Object.assign(c.pools.app, {
      response_timeout: '1s',
      drain_timeout: '0s',
      max_replay_body: '1MiB',
      health_check: { protocol: 'tcp', interval: '250ms' },
      failover: { failback: 'manual', warmup: { path: '/warm', requests: 3 } },
    });
  });
  const app = p.pools.updated[0];
  t.strictSame(app?.backends.kept.map((b) => b.changes.length), [0, 0, 0], 'backends untouched');
  t.strictSame(app?.settings, [
    { key: 'response_timeout', from: '30s', to: '1s' },
    { key: 'max_replay_body', from: '64KiB', to: '1MiB' },
    { key: 'health_check.interval', from: '2s', to: '250ms' },
    { key: 'failover.failback', from: 'auto', to: 'manual' },
    { key: 'failover.warmup', from: 'none', to: '3 × /warm' },
    { key: 'drain_timeout', from: '5m', to: '0s' },
  ]);
  t.match(p.summary, ['pool app: response_timeout 30s → 1s']);
});

t.test('an http health check path and status range', async (t) => {
  const withCheck = (c: Raw & { pools: Record<string, Raw> }, status: string): void => {
    (c.pools.api as Raw).health_check = { path: '/healthz', expect_status: status };
  };
  const old = base() as Raw & { pools: Record<string, Raw> };
  withCheck(old, '200-399');
  const next = base() as Raw & { pools: Record<string, Raw> };
  withCheck(next, '200');
  (next.pools.api as Raw).health_check = { path: '/ready', expect_status: 200 };
  const p = diffConfig(await load(old), await load(next));
  t.strictSame(p.pools.updated[0]?.settings, [
    { key: 'health_check.path', from: '/healthz', to: '/ready' },
    { key: 'health_check.expect_status', from: '200-399', to: '200' },
  ]);
});

t.test('listener added and removed', async (t) => {
  const p = await plan((c) => {
    c.listeners.splice(1, 1, { name: 'admin-web', listen: '[::1]:9000', pool: 'api' });
  });
  t.strictSame(p.listeners, { added: ['admin-web'], removed: ['db'], rebound: [], updated: [] });
  t.strictSame(p.summary, ['listener admin-web added (http on [::1]:9000)', 'listener db removed']);
});

t.test('a listener whose address changes is rebound; other changes ride along', async (t) => {
  const p = await plan((c) => {
    Object.assign(c.listeners[0] as Raw, { listen: '127.0.0.1:8081', idle_timeout: '5s' });
  });
  t.strictSame(p.listeners.rebound, [{
    name: 'web',
    changes: [{ key: 'listen', from: '127.0.0.1:8080', to: '127.0.0.1:8081' }, { key: 'idle_timeout', from: '1m', to: '5s' }],
  }]);
  t.strictSame(p.listeners.updated, []);
  t.strictSame(p.summary, ['listener web rebound: listen 127.0.0.1:8080 → 127.0.0.1:8081, idle_timeout 1m → 5s']);
});

t.test('a listener whose protocol changes is rebound', async (t) => {
  const p = await plan((c) => {
    Object.assign(c.listeners[1] as Raw, { protocol: 'http' });
  });
  t.strictSame(p.listeners.rebound.map((l) => l.name), ['db']);
  t.strictSame(p.listeners.rebound[0]?.changes, [{ key: 'protocol', from: 'tcp', to: 'http' }]);
});

t.test('a listener whose http2 changes is rebound (ALPN is fixed when the server is made)', async (t) => {
  const p = await plan((c) => {
    Object.assign(c.listeners[0] as Raw, { http2: false });
  });
  t.strictSame(p.listeners.rebound.map((l) => l.name), ['web']);
  t.strictSame(p.listeners.rebound[0]?.changes, [{ key: 'http2', from: 'true', to: 'false' }]);
});

t.test('routes, limits and trust are updated in place', async (t) => {
  const p = await plan((c) => {
    Object.assign(c.listeners[0] as Raw, {
      routes: [{ host: '*.example.com', path_prefix: '/v2/', pool: 'api' }, { pool: 'app' }],
      trusted_proxies: ['10.0.0.0/8'],
      max_connections: 5,
      max_header_size: '8KiB',
    });
  });
  t.strictSame(p.listeners.rebound, []);
  t.strictSame(p.listeners.updated, [{
    name: 'web',
    changes: [
      { key: 'trusted_proxies', from: 'none', to: '10.0.0.0/8' },
      { key: 'max_connections', from: '10000', to: '5' },
      { key: 'max_header_size', from: '16KiB', to: '8KiB' },
      { key: 'routes', from: 'api.example.com:api *:app', to: '*.example.com/v2/:api *:app' },
    ],
  }]);
});

t.test('TLS: on/off rebinds; a new certificate is an in-place update shown by file', async (t) => {
  const cfg = (tls: object | undefined): Config => {
    const c = (base().listeners as Raw[])[0] as Raw;
    const listener = { ...c, name: 'web', listen: { host: '127.0.0.1', port: 8443 }, protocol: 'http', trusted_proxies: [], header_timeout: 1, idle_timeout: 1, max_connections: 1, max_header_size: 1024, tls };
    return { log: { level: 'info', access: true }, shutdown_timeout: 1, file: '/p.yaml', listeners: [listener], pools: {} } as unknown as Config;
  };
  const a = { certFile: '/c/web.crt', keyFile: '/c/web.key', cert: 'CERT-1', key: 'KEY-1' };
  t.strictSame(diffConfig(cfg(undefined), cfg(a)).listeners.rebound, [{ name: 'web', changes: [{ key: 'tls', from: 'off', to: 'on' }] }]);
  t.strictSame(diffConfig(cfg(a), cfg(undefined)).listeners.rebound[0]?.changes, [{ key: 'tls', from: 'on', to: 'off' }]);
  const rotated = diffConfig(cfg(a), cfg({ ...a, cert: 'CERT-2' }));
  t.strictSame(rotated.listeners.rebound, []);
  t.strictSame(rotated.listeners.updated, [{ name: 'web', changes: [{ key: 'tls.cert', from: '/c/web.crt', to: '/c/web.crt (new content)' }] }]);
  t.notMatch(rotated.summary.join('\n'), /CERT|KEY-/, 'never the content');
  const moved = diffConfig(cfg(a), cfg({ ...a, keyFile: '/d/web.key', key: 'KEY-2' }));
  t.strictSame(moved.listeners.updated[0]?.changes, [{ key: 'tls.key', from: '/c/web.key', to: '/d/web.key' }]);
});

t.test('top-level settings', async (t) => {
  const p = await plan((c) => {
    c.shutdown_timeout = '1500ms';
    c.log = { level: 'debug', access: false };
  });
  t.strictSame(p.settings, [
    { key: 'log.level', from: 'info', to: 'debug' },
    { key: 'log.access', from: 'true', to: 'false' },
    { key: 'shutdown_timeout', from: '30s', to: '1500ms' },
  ]);
  t.strictSame(p.summary, ['log.level info → debug', 'log.access true → false', 'shutdown_timeout 30s → 1500ms']);
});

t.test('durations are shown in the largest exact unit', async (t) => {
  t.strictSame([0, 250, 1_000, 90_000, 60_000, 7_200_000, 1_500].map(formatDuration), ['0s', '250ms', '1s', '90s', '1m', '2h', '1500ms']);
});

t.test('an admin change is listed as applying at the next start', async (t) => {
  const p = await plan((c) => {
    c.admin = { listen: '127.0.0.1:9901' };
  });
  t.equal(p.summary.length, 1);
  t.match(p.summary[0], /^admin\.listen none → 127\.0\.0\.1:9901 \(applies at the next start\)$/);
});
