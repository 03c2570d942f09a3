/** Metrics: the one table, status classes, per-request counting, events, scrape-time gauges. */
import t from 'tap';
import { EventLog } from '../../../src/control/events.js';
import { METRICS, Metrics } from '../../../src/control/metrics.js';
import type { ExchangeRecord } from '../../../src/forward/http.js';
import { LogSink } from '../../helpers/log-sink.js';

const record = (over: Partial<ExchangeRecord> = {}): ExchangeRecord => ({
  listener: 'web',
  pool: 'app',
  backend: 'app-1',
  method: 'GET',
  path: '/',
  status: 200,
  durationMs: 12,
  bytes: 2,
  retries: 0,
  client: '127.0.0.1',
  error: null,
  via: 'serving',
  protocol: 'http1',
  ...over,
});

function setup(listeners: { name: string; openConnections: number }[] = []) {
  const events = new EventLog(new LogSink().logger('error'));
  const metrics = new Metrics(events, { pools: () => [], listeners: () => listeners });
  const value = async (series: string): Promise<number | undefined> => {
    const line = (await metrics.render()).split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? undefined : Number(line.slice(series.length + 1));
  };
  return { events, metrics, value };
}

t.test('the table: hotwarm_ prefix, unique names, only bounded labels', async (t) => {
  const names = METRICS.map((m) => m.name);
  t.equal(new Set(names).size, names.length);
  const allowed = new Set(['listener', 'pool', 'backend', 'role', 'code', 'result', 'worker', 'protocol', 'direction', 'version']);
  for (const m of METRICS) {
    t.match(m.name, /^hotwarm_[a-z_]+$/, m.name);
    t.ok(m.help.length > 10, `${m.name} has help`);
    for (const label of m.labels) t.ok(allowed.has(label), `${m.name}: ${label}`);
  }
  const text = await setup().metrics.render();
  for (const m of METRICS) t.match(text, `# TYPE ${m.name} ${m.type}`, `${m.name} is registered`);
});

t.test('requests by status class; a closed connection counts as 5xx', async (t) => {
  const { metrics, value } = setup();
  const statuses = [101, 200, 204, 304, 404, 499, 502, 503, 0];
  for (const status of statuses) metrics.request(record({ status }));
  metrics.request(record({ status: 200 }));
  const series = (code: string) => `hotwarm_requests_total{listener="web",pool="app",backend="app-1",code="${code}",protocol="http1"}`;
  t.equal(await value(series('1xx')), 1);
  t.equal(await value(series('2xx')), 3);
  t.equal(await value(series('3xx')), 1);
  t.equal(await value(series('4xx')), 2);
  t.equal(await value(series('5xx')), 3);
  t.equal(await value('hotwarm_request_duration_seconds_count{listener="web",pool="app",code="2xx",protocol="http1"}'), 3);
  const sum = await value('hotwarm_request_duration_seconds_sum{listener="web",pool="app",code="2xx",protocol="http1"}');
  t.ok(Math.abs((sum ?? 0) - 0.036) < 1e-9, `sum in seconds: ${sum}`);
  t.equal(await value('hotwarm_request_duration_seconds_bucket{le="0.01",listener="web",pool="app",code="2xx",protocol="http1"}'), 0);
  t.equal(await value('hotwarm_request_duration_seconds_bucket{le="0.025",listener="web",pool="app",code="2xx",protocol="http1"}'), 3);
});

t.test('requests by client protocol: http1 and http2 are separate series', async (t) => {
  const { metrics, value } = setup();
  metrics.request(record({ protocol: 'http2' }));
  metrics.request(record({ protocol: 'http2', status: 502 }));
  metrics.request(record({ protocol: 'http1' }));
  const series = (code: string, protocol: string) => `hotwarm_requests_total{listener="web",pool="app",backend="app-1",code="${code}",protocol="${protocol}"}`;
  t.equal(await value(series('2xx', 'http2')), 1);
  t.equal(await value(series('5xx', 'http2')), 1);
  t.equal(await value(series('2xx', 'http1')), 1);
  t.equal(await value('hotwarm_request_duration_seconds_count{listener="web",pool="app",code="2xx",protocol="http2"}'), 1);
});

t.test('a request without a backend, retries and 503s for no backend', async (t) => {
  const { metrics, value } = setup();
  metrics.request(record({ backend: null, pool: '', status: 404, error: 'NO_ROUTE' }));
  metrics.request(record({ backend: null, status: 503, error: 'NO_SERVING_BACKEND' }));
  metrics.request(record({ backend: null, status: 503, error: 'ALL_BACKENDS_FULL' }));
  metrics.request(record({ backend: null, status: 503, error: 'SHUTTING_DOWN' }));
  metrics.request(record({ retries: 2 }));
  metrics.request(record({ retries: 1, backend: 'app-2' }));
  t.equal(await value('hotwarm_requests_total{listener="web",pool="",backend="",code="4xx",protocol="http1"}'), 1);
  t.equal(await value('hotwarm_requests_total{listener="web",pool="app",backend="",code="5xx",protocol="http1"}'), 3);
  t.equal(await value('hotwarm_no_backend_total{listener="web",pool="app"}'), 2, 'none serving and all full; not shutdown');
  t.equal(await value('hotwarm_retries_total{listener="web",pool="app"}'), 3);
});

t.test('promotions, releases and reloads come from events', async (t) => {
  const { events, metrics, value } = setup();
  events.emit('promoted', { pool: 'app', backend: 'spare-1', covers: 'app-1' });
  events.emit('promoted', { pool: 'app', backend: 'spare-1', covers: 'app-2' });
  events.emit('released', { pool: 'app', backend: 'spare-1', covered: 'app-1', reason: 'failback' });
  events.emit('reload', { ok: true, version: 2, changes: [] });
  events.emit('reload', { ok: false, errors: ['x'] });
  events.emit('reload', { errors: ['x'] });
  events.emit('reload', { changes: ['pool app: weight'] });
  events.emit('backend_up', { pool: 'app', backend: 'app-1' });
  t.equal(await value('hotwarm_promotions_total{pool="app",backend="spare-1"}'), 2);
  t.equal(await value('hotwarm_releases_total{pool="app",backend="spare-1"}'), 1);
  t.equal(await value('hotwarm_reloads_total{result="ok"}'), 2);
  t.equal(await value('hotwarm_reloads_total{result="failed"}'), 2);
  metrics.close();
  events.emit('promoted', { pool: 'app', backend: 'spare-1' });
  t.equal(await value('hotwarm_promotions_total{pool="app",backend="spare-1"}'), 2, 'close() unsubscribes');
});

t.test('client connections are read at scrape time', async (t) => {
  const listeners = [{ name: 'web', openConnections: 3 }];
  const { value } = setup(listeners);
  t.equal(await value('hotwarm_client_connections{listener="web"}'), 3);
  listeners[0] = { name: 'web', openConnections: 1 };
  t.equal(await value('hotwarm_client_connections{listener="web"}'), 1);
  listeners.pop();
  t.equal(await value('hotwarm_client_connections{listener="web"}'), undefined, 'a removed listener disappears');
});
