import t from 'tap';
import { normalizeHost, RouteTable } from '../../../src/core/router.js';

const table = new RouteTable([
  { host: 'api.example.com', pathPrefix: '/v1/', target: 'api-v1' },
  { host: 'api.example.com', target: 'api' },
  { host: '*.example.com', target: 'wild' },
  { pathPrefix: '/static/', target: 'static' },
  { target: 'app' },
]);

const cases: [string | undefined, string, string | null][] = [
  ['api.example.com', '/v1/users', 'api-v1'],
  ['API.Example.COM:8080', '/v1/users', 'api-v1'],
  ['api.example.com', '/v2/users', 'api'],
  ['api.example.com.', '/v2', 'api'],
  ['www.example.com', '/v1/users', 'wild'],
  ['a.b.example.com', '/', 'wild'],
  ['example.com', '/', 'app'],
  ['badexample.com', '/', 'app'],
  ['other.org', '/static/x.css', 'static'],
  [undefined, '/static/x.css', 'static'],
  ['other.org', '/', 'app'],
];

for (const [host, path, want] of cases) {
  t.equal(table.match(host, path), want, `${host ?? '(no host)'} ${path} → ${want}`);
}

t.test('first match wins and no match is null', async (t) => {
  const t2 = new RouteTable([
    { pathPrefix: '/a', target: 'first' },
    { pathPrefix: '/a/b', target: 'second' },
  ]);
  t.equal(t2.match('x', '/a/b/c'), 'first');
  t.equal(t2.match('x', '/z'), null);
});

t.test('a leading catch-all short-circuits', async (t) => {
  const t3 = new RouteTable([{ target: 'only' }]);
  t.equal(t3.match(undefined, '*'), 'only');
});

t.test('normalizeHost', async (t) => {
  t.equal(normalizeHost('Example.com:80'), 'example.com');
  t.equal(normalizeHost('[::1]:8080'), '[::1]');
  t.equal(normalizeHost('[::1]'), '[::1]');
  t.equal(normalizeHost('host.'), 'host');
});
