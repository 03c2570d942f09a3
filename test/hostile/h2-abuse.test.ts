/**
 * HTTP/2 abuse (SPEC §11), written frame by frame over TLS: rapid reset, oversized header
 * blocks, CONTINUATION, PING, SETTINGS and empty-frame floods, streams past the concurrent
 * limit. Each ends (or refuses) only the offending connection, nothing it sent wrongly reaches a
 * backend, and a well-behaved connection opened before it keeps working.
 */
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import type { ClientHttp2Session } from 'node:http2';
import { TestBackend } from '../helpers/backend.js';
import { leakCheck } from '../helpers/handles.js';
import { startProxy, waitFor, type Harness } from '../helpers/harness.js';
import { HTTP_CHECKS, selfSigned } from '../helpers/tunnels.js';
import { close, owned, stopProxy, type Owned } from '../helpers/owned.js';
import { FLAG, FRAME, RawH2, frame, getFields, h2close, h2connect, h2request, headerBlock, headersFrame, pingFrame, rstFrame, settingsFrame } from '../helpers/h2.js';

const ENHANCE_YOUR_CALM = 11;
const REFUSED_STREAM = 7;

const dir = t.testdir({});
const cert = await selfSigned(dir, 'abuse', 'localhost');
const ca = [readFileSync(cert.cert)];

interface Setup {
  readonly h: Harness;
  /** Whatever the test starts is registered here, stopped in teardown even when it fails. */
  readonly own: Owned;
  /** A raw HTTP/2 connection, destroyed in teardown. */
  raw(): Promise<RawH2>;
  readonly app: TestBackend;
  /** A well-behaved connection opened before the abuse. */
  readonly bystander: ClientHttp2Session;
  stop(): Promise<void>;
}

async function setup(t: Test, listener: Record<string, unknown> = {}, latencyMs = 0): Promise<Setup> {
  const leaks = leakCheck();
  const own = owned(t);
  const app = own(await new TestBackend({ name: 'app', latencyMs }).start(), close);
  const h = own(await startProxy({
    log: { level: 'info' },
    listeners: [{ name: 'web', listen: '127.0.0.1:0', tls: cert, pool: 'app', ...listener }],
    // fall 3, not the tunnel tests' 1: the floods keep this one event loop (proxy and backend)
    // busy, and on a loaded machine one check past its timeout marked the only backend down,
    // turning the bystander's request into a 503. Nothing here tests detecting a dead backend.
    pools: { app: { health_check: { ...HTTP_CHECKS, fall: 3 }, response_timeout: '5s', backends: [{ name: 'app', address: app.address }] } },
  }), stopProxy);
  const bystander = own(await h2connect(h.port(), ca), h2close);
  t.equal((await h2request(bystander, { ':path': '/before' })).status, 200, 'bystander served');
  return {
    h,
    own,
    app,
    bystander,
    raw: async () => own(await RawH2.connect(h.port(), ca), (raw) => raw.destroy()),
    async stop() {
      // The abuse disturbed nobody else.
      t.equal((await h2request(bystander, { ':path': '/after' })).status, 200, 'the bystander connection still serves');
      await own.stopAll();
      await leaks.assertClean(t);
    },
  };
}

/** Requests the backend received apart from the bystander's. */
const abusive = (app: TestBackend): number => app.traffic.filter((r) => r.url !== '/before' && r.url !== '/after').length;

t.test('rapid reset: HEADERS + RST_STREAM pairs end the connection with GOAWAY; none reaches the backend', async (t) => {
  const s = await setup(t);
  const raw = await s.raw();
  raw.open();
  // 10 writes of 50 pairs (≈ 3 KB each): each write is one TLS record, so no HEADERS is ever
  // separated from its RST_STREAM by a record boundary (the flood's pattern: both in one read).
  for (let batch = 0; batch < 10 && !raw.socket.destroyed; batch++) {
    const frames: Buffer[] = [];
    for (let i = batch * 50; i < (batch + 1) * 50; i++) frames.push(headersFrame(1 + 2 * i, getFields('/flood')), rstFrame(1 + 2 * i));
    raw.write(...frames);
  }
  await raw.closed;
  t.equal(raw.goaway, ENHANCE_YOUR_CALM, 'GOAWAY(ENHANCE_YOUR_CALM)');
  await waitFor(() => s.h.log.lines.some((l) => l.code === 'HTTP2_ABUSE'), 2_000, 'abuse logged');
  t.match(s.h.log.lines.find((l) => l.code === 'HTTP2_ABUSE'), { reason: 'rapid reset' });
  t.equal(abusive(s.app), 0, 'no reset stream was forwarded');
  await s.stop();
});

t.test('a few cancelled requests are fine (a browser navigating away)', async (t) => {
  const s = await setup(t);
  const raw = await s.raw();
  const frames: Buffer[] = [];
  for (let i = 0; i < 20; i++) frames.push(headersFrame(1 + 2 * i, getFields('/cancelled')), rstFrame(1 + 2 * i));
  frames.push(headersFrame(41, getFields('/kept')));
  raw.open(...frames);
  await waitFor(() => raw.answered().includes(41), 3_000, 'answer to the kept stream');
  t.equal(raw.goaway, null, 'no GOAWAY');
  t.same(s.app.traffic.filter((r) => r.url !== '/before').map((r) => r.url), ['/kept'], 'only the stream not reset reached the backend');
  raw.destroy();
  await raw.closed;
  await s.stop();
});

t.test('a header block past max_header_size (HEADERS + CONTINUATION) is refused and never forwarded', async (t) => {
  const s = await setup(t, { max_header_size: '4KiB' });
  const first = headerBlock([...getFields('/big'), ['x-a', 'a'.repeat(3000)]]);
  const second = headerBlock([['x-b', 'b'.repeat(3000)]]);
  const big = [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, first), frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, second), headersFrame(3, getFields('/small'))];

  // A client that acknowledged our SETTINGS: Node's HTTP/2 stack resets the stream.
  const acked = await s.raw();
  acked.open(frame(FRAME.SETTINGS, 0x1 /* ACK */, 0), ...big);
  await waitFor(() => acked.answered().includes(3), 3_000, 'the next stream answered');
  t.equal(acked.resets().get(1), ENHANCE_YOUR_CALM, 'stream reset (ENHANCE_YOUR_CALM)');
  t.equal(acked.goaway, null, 'the connection stays');
  acked.destroy();

  // One that did not (Node applies its limit only after the ACK): the proxy answers 431 itself.
  const unacked = await s.raw();
  unacked.open(...big);
  await waitFor(() => unacked.answered().includes(3), 3_000, 'the next stream answered');
  await waitFor(() => s.h.log.access.some((l) => l.path === '/big'), 3_000, 'access line');
  t.match(s.h.log.access.find((l) => l.path === '/big'), { status: 431, protocol: 'http2', error: 'HEADERS_TOO_LARGE' });
  unacked.destroy();
  await Promise.all([acked.closed, unacked.closed]);
  t.same(s.app.traffic.filter((r) => r.url === '/big'), [], 'the oversized request reached no backend');
  t.equal(s.app.traffic.filter((r) => r.url === '/small').length, 2, 'the small ones did');
  await s.stop();
});

t.test('CONTINUATION flood ends the connection; nothing is forwarded', async (t) => {
  const s = await setup(t);
  const raw = await s.raw();
  const frames = [frame(FRAME.HEADERS, FLAG.END_STREAM, 1, headerBlock(getFields('/cont')))];
  for (let i = 0; i < 1000; i++) frames.push(frame(FRAME.CONTINUATION, 0, 1, headerBlock([['x-c', 'c']])));
  raw.open(...frames);
  await raw.closed;
  t.not(raw.goaway, null, `GOAWAY sent (code ${raw.goaway})`);
  t.equal(abusive(s.app), 0);
  await s.stop();
});

t.test('PING flood ends the connection', async (t) => {
  const s = await setup(t);
  const raw = await s.raw();
  raw.open(...Array.from({ length: 5000 }, () => pingFrame()));
  await raw.closed;
  t.pass('connection closed');
  await s.stop();
});

t.test('SETTINGS flood ends the connection with GOAWAY', async (t) => {
  const s = await setup(t);
  const raw = await s.raw();
  raw.open(...Array.from({ length: 50 }, () => settingsFrame([[0x3, 100]])));
  await raw.closed;
  t.equal(raw.goaway, ENHANCE_YOUR_CALM, 'GOAWAY(ENHANCE_YOUR_CALM) from our SETTINGS budget');
  const big = await s.raw();
  big.open(...Array.from({ length: 5000 }, () => settingsFrame()));
  await big.closed;
  t.not(big.goaway, null, 'a flood in one burst too');
  await s.stop();
});

t.test('empty DATA frame flood ends the connection; the request is not answered', async (t) => {
  const s = await setup(t);
  const raw = await s.raw();
  const frames = [headersFrame(1, [[':method', 'POST'], ...getFields('/empty').slice(1)], FLAG.END_HEADERS)];
  for (let i = 0; i < 1000; i++) frames.push(frame(FRAME.DATA, 0, 1));
  raw.open(...frames);
  await raw.closed;
  t.pass('connection closed');
  t.ok(s.app.traffic.filter((r) => r.url === '/empty').every((r) => r.body === ''), 'no body was made up');
  await s.stop();
});

t.test('streams past 100 concurrent are refused; 100 reach the backend', async (t) => {
  const s = await setup(t, {}, 300);
  const raw = await s.raw();
  const frames: Buffer[] = [];
  for (let i = 0; i < 150; i++) frames.push(headersFrame(1 + 2 * i, getFields(`/c/${i}`)));
  raw.open(...frames);
  await waitFor(() => raw.answered().length + [...raw.resets().values()].length >= 150 || raw.socket.destroyed, 8_000, 'every stream answered or refused');
  const refused = [...raw.resets().values()].filter((code) => code === REFUSED_STREAM).length;
  t.ok(refused >= 50, `${refused} streams refused`);
  t.ok(abusive(s.app) <= 100, `${abusive(s.app)} requests reached the backend`);
  raw.destroy();
  await raw.closed;
  await s.stop();
});
