import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { keepsForwardedHeaders, prepareForBackend, prepareRequestHeaders, responseHeaders, switchingProtocolsHeaders, type ForwardingContext } from '../../../src/forward/headers.js';

const ctx = (over: Partial<ForwardingContext> = {}): ForwardingContext => ({
  clientAddress: '203.0.113.7',
  proto: 'http',
  trusted: false,
  upgrade: false,
  ...over,
});

t.test('hop-by-hop request headers are removed, end-to-end kept', async (t) => {
  const h: IncomingHttpHeaders = {
    host: 'app.example',
    connection: 'keep-alive, X-Secret, Content-Length',
    'keep-alive': 'timeout=5',
    'proxy-connection': 'keep-alive',
    te: 'trailers',
    trailer: 'x-checksum',
    upgrade: 'h2c',
    expect: '100-continue',
    'x-secret': 'do not pass',
    'content-length': '3',
    accept: 'text/html',
  };
  prepareRequestHeaders(h, ctx());
  for (const gone of ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade', 'expect', 'x-secret']) {
    t.equal(h[gone], undefined, `${gone} removed`);
  }
  t.equal(h['content-length'], '3', 'framing header survives being listed in Connection');
  t.equal(h.accept, 'text/html');
  t.equal(h.host, 'app.example');
});

t.test('untrusted peers: X-Forwarded-* replaced', async (t) => {
  const h: IncomingHttpHeaders = {
    host: 'app.example',
    'x-forwarded-for': '1.2.3.4',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'evil.example',
    forwarded: 'for=1.2.3.4;proto=https',
    'x-real-ip': '1.2.3.4',
  };
  prepareRequestHeaders(h, ctx());
  t.equal(h['x-forwarded-for'], '203.0.113.7');
  t.equal(h['x-forwarded-proto'], 'http');
  t.equal(h['x-forwarded-host'], 'app.example');
  t.equal(h.forwarded, undefined, 'Forwarded (not set by us) removed');
  t.equal(h['x-real-ip'], undefined, 'X-Real-IP (not set by us) removed');
});

t.test('trusted peers: values kept, our hop appended to X-Forwarded-For', async (t) => {
  const h: IncomingHttpHeaders = {
    host: 'internal',
    'x-forwarded-for': '198.51.100.1',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'public.example',
    forwarded: 'for=198.51.100.1',
    'x-real-ip': '198.51.100.1',
  };
  prepareRequestHeaders(h, ctx({ trusted: true, clientAddress: '10.0.0.2' }));
  t.equal(h['x-forwarded-for'], '198.51.100.1, 10.0.0.2');
  t.equal(h['x-forwarded-proto'], 'https');
  t.equal(h['x-forwarded-host'], 'public.example');
  t.equal(h.forwarded, 'for=198.51.100.1');
  t.equal(h['x-real-ip'], '198.51.100.1');
});

t.test('a trusted peer cannot smuggle X-Forwarded-For past us through Connection', async (t) => {
  const h: IncomingHttpHeaders = { host: 'a', connection: 'X-Forwarded-For', 'x-forwarded-for': '6.6.6.6' };
  prepareRequestHeaders(h, ctx({ trusted: true }));
  t.equal(h['x-forwarded-for'], '203.0.113.7');
});

t.test('https listener sets proto https; no Host leaves no X-Forwarded-Host', async (t) => {
  const h: IncomingHttpHeaders = { 'x-forwarded-host': 'spoof' };
  prepareRequestHeaders(h, ctx({ proto: 'https' }));
  t.equal(h['x-forwarded-proto'], 'https');
  t.equal(h['x-forwarded-host'], undefined);
});

t.test('WebSocket upgrade keeps Upgrade and sets Connection: upgrade', async (t) => {
  const h: IncomingHttpHeaders = { host: 'a', connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'k' };
  prepareRequestHeaders(h, ctx({ upgrade: true }));
  t.equal(h.connection, 'upgrade');
  t.equal(h.upgrade, 'websocket');
  t.equal(h['sec-websocket-key'], 'k');
});

t.test('response: hop-by-hop and Connection-listed names removed, duplicates and case kept', async (t) => {
  const raw = [
    'Content-Type', 'text/plain',
    'Connection', 'keep-alive, X-Internal',
    'Keep-Alive', 'timeout=5',
    'Transfer-Encoding', 'chunked',
    'X-Internal', 'secret',
    'Set-Cookie', 'a=1',
    'Set-Cookie', 'b=2',
    'Trailer', 'x',
    'Proxy-Connection', 'x',
    'Upgrade', 'h2c',
    'TE', 'x',
    'Content-Length', '5',
  ];
  t.strictSame(responseHeaders(raw, 200), ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2', 'Content-Length', '5']);
  t.strictSame(responseHeaders(['Connection', 'content-length', 'Content-Length', '1'], 200), ['Content-Length', '1']);
  t.strictSame(responseHeaders(['Content-Length', '5', 'ETag', '"x"'], 204), ['ETag', '"x"'], 'no Content-Length on a 204 (RFC 9110 §8.6)');
  t.strictSame(responseHeaders(['Content-Length', '5', 'ETag', '"x"'], 304), ['Content-Length', '5', 'ETag', '"x"'], 'a 304 may carry the length of the representation');
});

t.test('a 101 keeps Upgrade and Connection: Upgrade, loses the other hop-by-hop headers', async (t) => {
  const raw = [
    'Upgrade', 'websocket',
    'Connection', 'Upgrade, X-Internal',
    'Sec-WebSocket-Accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
    'Keep-Alive', 'timeout=5',
    'X-Internal', 'secret',
    'Set-Cookie', 'a=1',
  ];
  t.strictSame(switchingProtocolsHeaders(raw), [
    'Sec-WebSocket-Accept', 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=',
    'Set-Cookie', 'a=1',
    'Connection', 'Upgrade',
    'Upgrade', 'websocket',
  ]);
  t.strictSame(switchingProtocolsHeaders([]).slice(-2), ['Upgrade', 'websocket'], 'a missing Upgrade is websocket (what was asked for)');
});

t.test('keepsForwardedHeaders: only a trusted peer that sent any, and the lookup only then', async (t) => {
  let lookups = 0;
  const trust = (address: string) => {
    lookups++;
    return address === '10.0.0.1';
  };
  t.equal(keepsForwardedHeaders({ 'x-forwarded-for': '1.1.1.1' }, '10.0.0.1', trust), true);
  t.equal(keepsForwardedHeaders({ 'x-forwarded-proto': 'https' }, '10.0.0.9', trust), false);
  t.equal(keepsForwardedHeaders({ 'x-forwarded-host': 'h' }, '10.0.0.1', null), false);
  const before = lookups;
  t.equal(keepsForwardedHeaders({ host: 'a' }, '10.0.0.1', trust), false);
  t.equal(lookups, before, 'no lookup when nothing was sent');
});

t.test('prepareForBackend: the listener decides the scheme and whom to trust', async (t) => {
  const trusted = { proto: 'https' as const, isTrusted: (a: string) => a === '10.0.0.1' };
  const h: Record<string, string | undefined> = { host: 'a', 'x-forwarded-for': '1.1.1.1', connection: 'keep-alive' };
  prepareForBackend(h, '10.0.0.1', trusted, false);
  t.match(h, { 'x-forwarded-for': '1.1.1.1, 10.0.0.1', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'a' });
  t.notOk('connection' in h);
  const u: Record<string, string | undefined> = { host: 'a', 'x-forwarded-for': '1.1.1.1' };
  prepareForBackend(u, '10.0.0.9', { proto: 'http', isTrusted: null }, true);
  t.match(u, { 'x-forwarded-for': '10.0.0.9', 'x-forwarded-proto': 'http', connection: 'upgrade', upgrade: 'websocket' });
});
