import t from 'tap';
import { checkRequest, MAX_HEADER_COUNT, originForm, type RequestHead } from '../../../src/forward/guard.js';

const head = (over: Partial<RequestHead> & { headers?: string[] } = {}): RequestHead => ({
  method: over.method ?? 'GET',
  url: over.url ?? '/',
  httpVersionMajor: over.httpVersionMajor ?? 1,
  httpVersionMinor: over.httpVersionMinor ?? 1,
  rawHeaders: over.headers ?? ['Host', 'app.example'],
});

const refused: [string, RequestHead, string][] = [
  ['HTTP/2.0 on an HTTP/1 connection', head({ httpVersionMajor: 2, httpVersionMinor: 0 }), 'VERSION_NOT_SUPPORTED'],
  ['HTTP/0.9', head({ httpVersionMajor: 0, httpVersionMinor: 9, headers: [] }), 'BAD_REQUEST'],
  ['TE gzip, chunked', head({ headers: ['Host', 'a', 'Transfer-Encoding', 'gzip, chunked'] }), 'BAD_REQUEST'],
  ['TE identity, chunked', head({ headers: ['Host', 'a', 'Transfer-Encoding', 'identity, chunked'] }), 'BAD_REQUEST'],
  ['TE xchunked', head({ headers: ['Host', 'a', 'Transfer-Encoding', 'xchunked'] }), 'BAD_REQUEST'],
  ['duplicate Host', head({ headers: ['Host', 'a', 'host', 'b'] }), 'BAD_REQUEST'],
  ['missing Host on 1.1', head({ headers: [] }), 'BAD_REQUEST'],
  ['Host a/b@c', head({ headers: ['Host', 'a/b@c'] }), 'BAD_REQUEST'],
  ['Host with space', head({ headers: ['Host', 'a b'] }), 'BAD_REQUEST'],
  ['empty Host', head({ headers: ['Host', ''] }), 'BAD_REQUEST'],
  ['Host port beyond 65535', head({ headers: ['Host', 'a:99999'] }), 'BAD_REQUEST'],
  ['Host of dots', head({ headers: ['Host', 'a..'] }), 'BAD_REQUEST'],
  ['TE on HTTP/1.0', head({ httpVersionMinor: 0, method: 'POST', headers: ['Host', 'a', 'Transfer-Encoding', 'chunked'] }), 'BAD_REQUEST'],
  ['absolute-form naming another host', head({ url: 'http://other.example/x' }), 'BAD_REQUEST'],
  ['absolute-form with userinfo', head({ url: 'http://u@app.example/x' }), 'BAD_REQUEST'],
  ['* outside OPTIONS', head({ url: '*' }), 'BAD_REQUEST'],
  ['fragment', head({ url: '/a#b' }), 'BAD_REQUEST'],
  ['relative target', head({ url: 'a/b' }), 'BAD_REQUEST'],
  ['Content_Length alias', head({ headers: ['Host', 'a', 'Content_Length', '3'] }), 'BAD_REQUEST'],
  ['X_Forwarded_For alias', head({ headers: ['Host', 'a', 'X_Forwarded_For', '1.1.1.1'] }), 'BAD_REQUEST'],
  ['too many headers', head({ headers: ['Host', 'a', ...Array.from({ length: MAX_HEADER_COUNT * 2 }, (_, i) => (i % 2 === 0 ? `h${i}` : 'v'))] }), 'HEADERS_TOO_LARGE'],
];

for (const [name, h, code] of refused) {
  t.equal(checkRequest(h)?.code, code, `${name} → ${code}`);
}

const accepted: [string, RequestHead][] = [
  ['plain GET', head()],
  ['TE chunked', head({ method: 'POST', headers: ['Host', 'a', 'Transfer-Encoding', 'chunked'] })],
  ['TE Chunked (case-insensitive)', head({ method: 'POST', headers: ['Host', 'a', 'Transfer-Encoding', 'Chunked'] })],
  ['HTTP/1.0 without Host', head({ httpVersionMinor: 0, headers: [] })],
  ['absolute-form same host', head({ url: 'http://APP.example:80/x?y=1' })],
  ['OPTIONS *', head({ method: 'OPTIONS', url: '*' })],
  ['IPv6 Host', head({ headers: ['Host', '[::1]:8080'] })],
  ['Host port 65535', head({ headers: ['Host', 'a:65535'] })],
  ['fully qualified Host with its trailing dot, any case', head({ headers: ['Host', 'App.Example.:8080'] })],
  ['harmless underscore header', head({ headers: ['Host', 'a', 'X_Custom', '1'] })],
  ['exactly the header limit', head({ headers: Array.from({ length: MAX_HEADER_COUNT * 2 }, (_, i) => (i === 0 ? 'Host' : i % 2 === 0 ? `h${i}` : 'v')) })],
];

for (const [name, h] of accepted) {
  t.equal(checkRequest(h), null, `${name} is accepted`);
}

t.test('originForm', async (t) => {
  t.equal(originForm('/a//b?c'), '/a//b?c');
  t.equal(originForm('http://h/x/y?z'), '/x/y?z');
  t.equal(originForm('http://h'), '/');
  t.equal(originForm('http://h?q'), '/?q');
  t.equal(originForm('*'), '*');
});

t.test('a Host found good once is not looked at again; any other value still is', async (t) => {
  for (const [good, bad] of [['app.example', 'app.example:99999'], ['a:80', 'a b'], ['b.example', '']]) {
    t.equal(checkRequest(head({ headers: ['Host', good as string] })), null, `${good} accepted`);
    t.equal(checkRequest(head({ headers: ['Host', good as string] })), null, `${good} accepted again`);
    t.equal(checkRequest(head({ headers: ['Host', bad as string] }))?.code, 'BAD_REQUEST', `then ${JSON.stringify(bad)} still refused`);
    t.equal(checkRequest(head({ headers: ['Host', good as string] })), null, `and ${good} accepted after it`);
  }
});
