import t, { type Test } from 'tap';
import {
  MAX_DURATION_MS,
  parseCidr,
  parseDuration,
  parseHostPattern,
  parseHostPort,
  parseSize,
  parseStatusRange,
  type Parsed,
} from '../../../src/config/units.js';

/** `[input, expected value]` rows must parse; `[input, message]` rows must fail with that message. */
function table<I, T>(t: Test, parse: (input: I) => Parsed<T>, ok: readonly (readonly [I, T])[], bad: readonly (readonly [I, string])[]): void {
  for (const [input, value] of ok) t.strictSame(parse(input), { ok: true, value }, `accepts ${JSON.stringify(input)}`);
  for (const [input, message] of bad) t.strictSame(parse(input), { ok: false, message }, `refuses ${JSON.stringify(input)}`);
}

t.test('parseDuration', async (t) => {
  const hint = 'use a number with a unit, e.g. 250ms, 2s, 1m, 1h';
  table(
    t,
    parseDuration,
    [
      ['0s', 0],
      ['250ms', 250],
      ['2s', 2000],
      ['1.5m', 90_000],
      ['1h', 3_600_000],
      [' 10s ', 10_000],
      ['596h', 596 * 3_600_000],
      [`${MAX_DURATION_MS}ms`, MAX_DURATION_MS],
    ],
    [
      ['2', `invalid duration "2": ${hint}`],
      ['-1s', `invalid duration "-1s": ${hint}`],
      ['1d', `invalid duration "1d": ${hint}`],
      ['1m30s', `invalid duration "1m30s": ${hint}`],
      ['2 s', `invalid duration "2 s": ${hint}`],
      ['', `invalid duration "": ${hint}`],
      ['597h', 'duration "597h" is too long: at most 596h'],
      [`${MAX_DURATION_MS + 1}ms`, `duration "${MAX_DURATION_MS + 1}ms" is too long: at most 596h`],
    ],
  );
});

t.test('MAX_DURATION_MS is what Node timers can hold', async (t) => {
  t.equal(MAX_DURATION_MS, 2_147_483_647);
});

t.test('parseSize', async (t) => {
  const message = (text: string) => `invalid size "${text}": use bytes or KiB / MiB, e.g. 16KiB`;
  table(
    t,
    parseSize,
    [
      ['0', 0],
      ['512', 512],
      ['512B', 512],
      ['16KiB', 16_384],
      ['16 KiB', 16_384],
      ['1MiB', 1_048_576],
    ],
    [
      ['16KB', message('16KB')],
      ['1.5MiB', message('1.5MiB')],
      ['-1', message('-1')],
      ['1GiB', message('1GiB')],
      ['', message('')],
    ],
  );
});

t.test('parseHostPort', async (t) => {
  table(
    t,
    (text: string) => parseHostPort(text, 1),
    [
      ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
      ['0.0.0.0:1', { host: '0.0.0.0', port: 1 }],
      ['[::]:65535', { host: '::', port: 65535 }],
      ['[::1]:443', { host: '::1', port: 443 }],
      ['localhost:3000', { host: 'localhost', port: 3000 }],
      ['app-1.internal.example.com:80', { host: 'app-1.internal.example.com', port: 80 }],
    ],
    [
      ['127.0.0.1', 'invalid address "127.0.0.1": use host:port or [ipv6]:port'],
      [':80', 'invalid address ":80": use host:port or [ipv6]:port'],
      ['::1:80', 'invalid address "::1:80": use host:port or [ipv6]:port'],
      ['[127.0.0.1]:80', 'invalid host "127.0.0.1" in "[127.0.0.1]:80"'],
      ['bad_host:80', 'invalid host "bad_host" in "bad_host:80"'],
      ['-leading:80', 'invalid host "-leading" in "-leading:80"'],
      ['127.0.0.1:0', 'port 0 out of range 1-65535'],
      ['127.0.0.1:65536', 'port 65536 out of range 1-65535'],
    ],
  );
  t.strictSame(parseHostPort('127.0.0.1:0', 0), { ok: true, value: { host: '127.0.0.1', port: 0 } }, 'port 0 is fine for listeners');
});

t.test('parseCidr', async (t) => {
  table(
    t,
    parseCidr,
    [
      ['10.0.0.0/8', { address: '10.0.0.0', prefix: 8, family: 'ipv4' }],
      ['0.0.0.0/0', { address: '0.0.0.0', prefix: 0, family: 'ipv4' }],
      ['192.168.1.7', { address: '192.168.1.7', prefix: 32, family: 'ipv4' }],
      ['::1/128', { address: '::1', prefix: 128, family: 'ipv6' }],
      ['fd00::/8', { address: 'fd00::', prefix: 8, family: 'ipv6' }],
      ['::1', { address: '::1', prefix: 128, family: 'ipv6' }],
    ],
    [
      ['foo', 'invalid CIDR "foo"'],
      ['10.0.0.0/8/8', 'invalid CIDR "10.0.0.0/8/8"'],
      ['10.0.0/8', 'invalid CIDR "10.0.0/8"'],
      ['10.0.0.0/33', 'invalid prefix length in "10.0.0.0/33" (0-32)'],
      ['10.0.0.0/', 'invalid prefix length in "10.0.0.0/" (0-32)'],
      ['10.0.0.0/-1', 'invalid prefix length in "10.0.0.0/-1" (0-32)'],
      ['::/129', 'invalid prefix length in "::/129" (0-128)'],
    ],
  );
});

t.test('parseStatusRange', async (t) => {
  table(
    t,
    parseStatusRange,
    [
      ['200-399', { min: 200, max: 399 }],
      ['200 - 299', { min: 200, max: 299 }],
      ['204', { min: 204, max: 204 }],
      [200, { min: 200, max: 200 }],
      ['100-599', { min: 100, max: 599 }],
    ],
    [
      ['2xx', 'invalid status range "2xx": use 200 or 200-399'],
      ['20', 'invalid status range "20": use 200 or 200-399'],
      ['200-', 'invalid status range "200-": use 200 or 200-399'],
      ['600', 'status range "600" must lie within 100-599, low to high'],
      ['099', 'status range "099" must lie within 100-599, low to high'],
      ['399-200', 'status range "399-200" must lie within 100-599, low to high'],
    ],
  );
});

t.test('parseHostPattern', async (t) => {
  table(
    t,
    parseHostPattern,
    [
      ['api.example.com', 'api.example.com'],
      ['API.Example.COM', 'api.example.com'],
      ['*.example.com', '*.example.com'],
      ['localhost', 'localhost'],
      ['10.0.0.1', '10.0.0.1'],
    ],
    [
      ['api example', 'invalid host pattern "api example": use an exact host or *.example.com'],
      ['*example.com', 'invalid host pattern "*example.com": use an exact host or *.example.com'],
      ['api.*.com', 'invalid host pattern "api.*.com": use an exact host or *.example.com'],
      ['api.example.com:8080', 'invalid host pattern "api.example.com:8080": use an exact host or *.example.com'],
      ['', 'invalid host pattern "": use an exact host or *.example.com'],
    ],
  );
});
