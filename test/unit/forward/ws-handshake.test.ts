/** The WebSocket opening handshake checks (RFC 6455 §4), table-driven, without sockets. */
import t from 'tap';
import type { IncomingHttpHeaders } from 'node:http';
import { acceptFor, checkHandshake, checkSwitchingProtocols, hasToken } from '../../../src/forward/ws-handshake.js';

const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const GOOD: IncomingHttpHeaders = { host: 'a', upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': KEY, 'sec-websocket-version': '13' };

const head = (headers: IncomingHttpHeaders, method = 'GET', minor = 1) => ({
  method, url: '/', httpVersionMajor: 1, httpVersionMinor: minor, rawHeaders: [], headers,
});

t.test('the accept value of RFC 6455 §1.3', async (t) => {
  t.equal(acceptFor(KEY), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

t.test('client handshakes', async (t) => {
  t.equal(checkHandshake(head(GOOD)), null, 'well formed');
  t.equal(checkHandshake(head({ ...GOOD, upgrade: 'WebSocket', connection: 'keep-alive, Upgrade' })), null, 'tokens, any case');
  const cases: [string, ReturnType<typeof head>, string][] = [
    ['h2c', head({ ...GOOD, upgrade: 'h2c' }), 'BAD_REQUEST'],
    ['body', head({ ...GOOD, 'content-length': '3' }), 'BAD_REQUEST'],
    ['chunked body', head({ ...GOOD, 'transfer-encoding': 'chunked' }), 'BAD_REQUEST'],
    ['POST', head(GOOD, 'POST'), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['HTTP/1.0', head(GOOD, 'GET', 0), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['Connection: close', head({ ...GOOD, connection: 'close' }), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['Connection: upgraded', head({ ...GOOD, connection: 'upgraded' }), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['no key', head({ ...GOOD, 'sec-websocket-key': undefined }), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['short key', head({ ...GOOD, 'sec-websocket-key': 'AAAAAAAAAAAAAAAAAAAA' }), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['two keys', head({ ...GOOD, 'sec-websocket-key': `${KEY}, ${KEY}` }), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['no version', head({ ...GOOD, 'sec-websocket-version': undefined }), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['version list', head({ ...GOOD, 'sec-websocket-version': '13, 8' }), 'WEBSOCKET_BAD_HANDSHAKE'],
    ['version 8', head({ ...GOOD, 'sec-websocket-version': '8' }), 'WEBSOCKET_VERSION_UNSUPPORTED'],
    ['version 14', head({ ...GOOD, 'sec-websocket-version': '14' }), 'WEBSOCKET_VERSION_UNSUPPORTED'],
  ];
  for (const [what, input, code] of cases) t.equal(checkHandshake(input)?.code, code, what);
});

t.test('backend 101s', async (t) => {
  const accept = acceptFor(KEY);
  t.equal(checkSwitchingProtocols({ upgrade: 'websocket', 'sec-websocket-accept': accept }, KEY), null);
  t.equal(checkSwitchingProtocols({ upgrade: 'WebSocket', 'sec-websocket-accept': accept }, KEY), null, 'case-insensitive');
  t.match(checkSwitchingProtocols({ 'sec-websocket-accept': accept }, KEY), /Upgrade/);
  t.match(checkSwitchingProtocols({ upgrade: 'h2c', 'sec-websocket-accept': accept }, KEY), /Upgrade/);
  t.match(checkSwitchingProtocols({ upgrade: 'websocket' }, KEY), /without Sec-WebSocket-Accept/);
  t.match(checkSwitchingProtocols({ upgrade: 'websocket', 'sec-websocket-accept': KEY }, KEY), /does not match/);
});

t.test('hasToken', async (t) => {
  t.ok(hasToken('Upgrade', 'upgrade'));
  t.ok(hasToken('keep-alive, UPGRADE', 'upgrade'));
  t.ok(hasToken(['x', 'upgrade'], 'upgrade'));
  t.notOk(hasToken('upgrades', 'upgrade'));
  t.notOk(hasToken(undefined, 'upgrade'));
});
