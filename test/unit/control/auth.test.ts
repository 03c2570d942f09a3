/** Admin authentication: constant-time compare, token carriers, loopback and origin rules. */
import * as crypto from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import t from 'tap';
import { AdminAuth, bearerToken, protocolToken, tokenMatches } from '../../../src/control/auth.js';

/** A request as the auth code reads it: only headers. */
const req = (headers: Record<string, string>): IncomingMessage => ({ headers }) as unknown as IncomingMessage;

t.test('tokenMatches compares SHA-256 digests with timingSafeEqual', async (t) => {
  const calls: [number, number][] = [];
  const { tokenMatches: spied } = await t.mockImport<typeof import('../../../src/control/auth.js')>('../../../src/control/auth.js', {
    'node:crypto': {
      ...crypto,
      timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
        calls.push([a.byteLength, b.byteLength]);
        return crypto.timingSafeEqual(a, b);
      },
    },
  });
  t.equal(spied('secret', 'secret'), true);
  t.equal(spied('secret', 'secreT'), false);
  t.equal(spied('secret', 'a much longer presented token'), false, 'different lengths never throw');
  t.equal(spied('secret', ''), false);
  t.strictSame(calls, [[32, 32], [32, 32], [32, 32], [32, 32]], 'every comparison goes through timingSafeEqual on 32-byte digests');
});

t.test('tokenMatches', async (t) => {
  t.equal(tokenMatches('ä-token', 'ä-token'), true, 'unicode');
  t.equal(tokenMatches('abc', 'abd'), false);
});

t.test('bearerToken and protocolToken', async (t) => {
  const cases: [string | undefined, string | null][] = [
    [undefined, null],
    ['Bearer abc', 'abc'],
    ['bearer   abc ', 'abc'],
    ['Bearer', null],
    ['Bearer a b', null],
    ['Basic abc', null],
  ];
  for (const [header, token] of cases) t.equal(bearerToken(header), token, String(header));
  const encoded = Buffer.from('tök/en+=').toString('base64url');
  t.equal(protocolToken(`hotwarm.v1, hotwarm.token.${encoded}`), 'tök/en+=');
  t.equal(protocolToken('hotwarm.v1'), null);
  t.equal(protocolToken(undefined), null);
});

t.test('with a token: header everywhere, ?token= only where the caller passes it, subprotocol on upgrades', async (t) => {
  const auth = new AdminAuth('s3cret');
  t.equal(auth.required, true);
  t.match(auth.request(req({ authorization: 'Bearer s3cret', host: 'anything' }), null, true), { ok: true }, 'any Host with the token');
  t.match(auth.request(req({}), null, false), { ok: false, status: 401, challenge: 'Bearer realm="hotwarm"' });
  t.match(auth.request(req({ authorization: 'Bearer nope' }), null, false), { ok: false, status: 401, challenge: /invalid_token/ });
  t.match(auth.request(req({}), 's3cret', false), { ok: true }, 'query token when passed');
  t.match(auth.request(req({}), 'nope', false), { ok: false, status: 401 });
  const protocol = `hotwarm.v1, hotwarm.token.${Buffer.from('s3cret').toString('base64url')}`;
  t.match(auth.upgrade(req({ 'sec-websocket-protocol': protocol })), { ok: true });
  t.match(auth.upgrade(req({ authorization: 'Bearer s3cret' })), { ok: true });
  t.match(auth.upgrade(req({ 'sec-websocket-protocol': 'hotwarm.v1' })), { ok: false, status: 401 });
  t.equal(new AdminAuth('').required, false, 'an empty token is no token');
});

t.test('without a token: loopback Host names only; cross-origin mutations and upgrades refused', async (t) => {
  const auth = new AdminAuth(null);
  const hosts: [string | undefined, boolean][] = [
    ['127.0.0.1:9901', true],
    ['127.8.0.1', true],
    ['localhost:9901', true],
    ['LOCALHOST', true],
    ['app.localhost:1', true],
    ['[::1]:9901', true],
    ['[::ffff:10.0.0.1]:9901', false],
    ['10.0.0.1:9901', false],
    ['evil.example:9901', false],
    ['127.0.0.1.evil.example', false],
    [undefined, false],
  ];
  for (const [host, ok] of hosts) {
    t.equal(auth.request(req(host === undefined ? {} : { host }), null, false).ok, ok, `Host ${host}`);
  }
  const host = '127.0.0.1:9901';
  t.match(auth.request(req({ host, origin: 'http://evil.example' }), null, true), { ok: false, status: 403 });
  t.match(auth.request(req({ host, origin: 'http://evil.example' }), null, false), { ok: true }, 'a cross-origin GET cannot read the answer anyway');
  t.match(auth.request(req({ host, origin: `http://${host}` }), null, true), { ok: true });
  t.match(auth.request(req({ host }), null, true), { ok: true }, 'no Origin (curl) is fine');
  t.match(auth.upgrade(req({ host, origin: 'http://evil.example' })), { ok: false, status: 403 });
});
