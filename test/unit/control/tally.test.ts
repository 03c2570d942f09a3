/** The per-request tally: counts in arrays, deltas taken by a worker and added up by the primary (SPEC §9). */
import t from 'tap';
import { RequestTally } from '../../../src/control/tally.js';
import type { ExchangeRecord } from '../../../src/records.js';

const record = (over: Partial<ExchangeRecord> = {}): ExchangeRecord => ({
  listener: 'web',
  pool: 'app',
  backend: 'a',
  method: 'GET',
  path: '/',
  status: 200,
  durationMs: 3,
  bytes: 1,
  retries: 0,
  client: '127.0.0.1',
  error: null,
  via: 'serving',
  protocol: 'http1',
  ...over,
});

const help = (name: string): string => `help of ${name}`;

t.test('two workers whose deltas are added up render as one process that saw every request', async (t) => {
  const alone = new RequestTally();
  const workers = [new RequestTally(), new RequestTally()];
  const primary = new RequestTally();
  const records = [
    record(),
    record({ backend: 'b', status: 502, retries: 2, durationMs: 40 }),
    record({ backend: null, status: 503, error: 'NO_SERVING_BACKEND', durationMs: 0.2 }),
    record({ listener: 'api', status: 404, backend: null, pool: '' }),
    record({ durationMs: 31_000 }),
  ];
  records.forEach((r, i) => {
    alone.request(r);
    workers[i % 2]?.request(r);
  });
  for (const w of workers) primary.add(w.take());
  const sorted = (text: string): string[] => text.split('\n').sort();
  t.same(sorted(primary.render(help)), sorted(alone.render(help)), 'the same series and values');
  const text = primary.render(help);
  t.match(text, 'hotwarm_requests_total{listener="web",pool="app",backend="a",code="2xx",protocol="http1"} 2');
  t.match(text, 'hotwarm_retries_total{listener="web",pool="app"} 2');
  t.match(text, 'hotwarm_no_backend_total{listener="web",pool="app"} 1');
  t.match(text, 'hotwarm_request_duration_seconds_bucket{le="+Inf",listener="web",pool="app",code="2xx",protocol="http1"} 2');
  t.match(text, 'hotwarm_request_duration_seconds_bucket{le="30",listener="web",pool="app",code="2xx",protocol="http1"} 1', 'the slow one only in +Inf');
  t.match(text, '# TYPE hotwarm_request_duration_seconds histogram');
});

t.test('take() returns what was counted since the last take, then nothing', async (t) => {
  const w = new RequestTally();
  w.request(record());
  const first = w.take();
  t.equal(first.length, 1);
  // Slots: http1 1xx…5xx, then http2 1xx…5xx, then the duration sum (ms), bytes in and bytes out.
  t.same(first[0]?.requests, [['a', [0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1]]]);
  t.same(w.take(), [], 'nothing new');
  w.request(record({ status: 301 }));
  t.same(w.take()[0]?.requests, [['a', [0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 3, 0, 1]]], 'only the new one');
  w.request(record({ protocol: 'http2' }));
  t.same(w.take()[0]?.requests, [['a', [0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 3, 0, 1]]], 'an HTTP/2 request in its own slot');
});

t.test('bytes and tunnels add up across workers; primed series show at 0', async (t) => {
  const w = new RequestTally();
  w.request(record({ bytesIn: 5, bytes: 7 }));
  w.tunnel('web', 'app', 'a', 100, 200);
  const primary = new RequestTally();
  primary.prime('web', 'app', ['a', 'b']);
  primary.add(w.take());
  primary.add(w.take());
  const text = primary.render(help);
  t.match(text, 'hotwarm_backend_bytes_total{pool="app",backend="a",direction="in"} 105');
  t.match(text, 'hotwarm_backend_bytes_total{pool="app",backend="a",direction="out"} 207');
  t.match(text, 'hotwarm_listener_bytes_total{listener="web",direction="in"} 105');
  t.match(text, 'hotwarm_requests_total{listener="web",pool="app",backend="b",code="5xx",protocol="http1"} 0', 'a primed backend, before any request');
  t.match(text, 'hotwarm_backend_bytes_total{pool="app",backend="b",direction="out"} 0');
  t.match(text, 'hotwarm_request_duration_seconds_count{listener="web",pool="app",code="5xx",protocol="http1"} 0');
  t.match([...primary.backendTotals()], [{ pool: 'app', backend: 'a', requests: 1, errors: 0, durationMsSum: 3 }, { pool: 'app', backend: 'b', requests: 0 }]);
});

t.test('primed series follow what the listener speaks: HTTP/1, HTTP/2 where it offers h2, bytes only on tcp', async (t) => {
  const tally = new RequestTally();
  tally.prime('tls', 'app', ['a'], 'h2');
  tally.prime('plain', 'app', ['a']);
  tally.prime('db', 'pg', ['p'], 'tcp');
  const text = tally.render(help);
  for (const protocol of ['http1', 'http2']) {
    t.match(text, `hotwarm_requests_total{listener="tls",pool="app",backend="a",code="2xx",protocol="${protocol}"} 0`, protocol);
    t.match(text, `hotwarm_request_duration_seconds_count{listener="tls",pool="app",code="5xx",protocol="${protocol}"} 0`, protocol);
  }
  t.match(text, 'hotwarm_requests_total{listener="plain",pool="app",backend="a",code="2xx",protocol="http1"} 0');
  t.notMatch(text, 'listener="plain",pool="app",backend="a",code="2xx",protocol="http2"');
  // A tcp listener: its bytes, no HTTP series.
  t.match(text, 'hotwarm_listener_bytes_total{listener="db",direction="in"} 0');
  t.match(text, 'hotwarm_backend_bytes_total{pool="pg",backend="p",direction="out"} 0');
  t.notMatch(text, /(requests_total|duration_seconds_count|retries_total|no_backend_total)\{listener="db"/);
});

t.test('malformed deltas are ignored slot by slot', async (t) => {
  const primary = new RequestTally();
  primary.add([{ listener: 'web', pool: 'app', requests: [['a', [0, 3]]], buckets: [], sums: [], retries: 0, noBackend: 0 }]);
  t.match(primary.render(help), 'hotwarm_requests_total{listener="web",pool="app",backend="a",code="2xx",protocol="http1"} 3');
});
