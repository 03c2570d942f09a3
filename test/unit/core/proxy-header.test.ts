/** PROXY protocol headers: what is accepted, what is refused, and what we send parses back. */
import t from 'tap';
import { formatProxyHeader, parseProxyHeader } from '../../../src/core/proxy-header.js';

t.test('formatted headers parse back, v1 and v2, IPv4, IPv6 and mixed', async (t) => {
  const cases = [
    { source: { address: '192.0.2.1', port: 1234 }, destination: { address: '10.0.0.1', port: 443 } },
    { source: { address: '2001:db8::1', port: 1 }, destination: { address: '::1', port: 65535 } },
  ];
  for (const a of cases) {
    for (const version of ['v1', 'v2'] as const) {
      const header = formatProxyHeader(version, a);
      const parsed = parseProxyHeader(Buffer.concat([header, Buffer.from('GET / HTTP/1.1\r\n')]));
      t.same(parsed, { kind: 'ok', length: header.length, addresses: a }, `${version} ${a.source.address}`);
    }
  }
  const mixed = parseProxyHeader(formatProxyHeader('v2', { source: { address: '192.0.2.1', port: 5 }, destination: { address: '::1', port: 6 } }));
  t.match(mixed, { kind: 'ok', addresses: { source: { address: '192.0.2.1' }, destination: { address: '::1' } } }, 'IPv4 mapped into IPv6 and read back as IPv4');
  t.same(parseProxyHeader(formatProxyHeader('v1', null)), { kind: 'ok', length: 15, addresses: null }, 'PROXY UNKNOWN');
  t.same(parseProxyHeader(formatProxyHeader('v2', null)), { kind: 'ok', length: 16, addresses: null }, 'v2 LOCAL');
});

t.test('partial, invalid and foreign input', async (t) => {
  const v2 = formatProxyHeader('v2', { source: { address: '1.2.3.4', port: 1 }, destination: { address: '5.6.7.8', port: 2 } });
  for (let n = 1; n < v2.length; n++) t.equal(parseProxyHeader(v2.subarray(0, n)).kind, 'incomplete', `v2 cut at ${n}`);
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')).kind, 'incomplete');
  t.equal(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'invalid');
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 70000 1\r\n')).kind, 'invalid', 'port out of range');
  t.equal(parseProxyHeader(Buffer.from('PROXY TCP4 ::1 5.6.7.8 1 1\r\n')).kind, 'invalid', 'family mismatch');
  t.equal(parseProxyHeader(Buffer.from('PROXY UDP4 1.2.3.4 5.6.7.8 1 1\r\n')).kind, 'invalid');
  t.equal(parseProxyHeader(Buffer.from(`PROXY ${'x'.repeat(120)}`)).kind, 'invalid', 'v1 over 107 bytes');
});
