/**
 * TLS edges (SPEC §5): plain HTTP sent to a TLS listener gets a readable plain-HTTP 400 and the
 * connection closes (a tcp listener just closes), and a TLS handshake that does not complete
 * within header_timeout — a silent client, or one that stalls half-way — is closed. Neither
 * reaches a backend.
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import type { Harness } from '../helpers/harness.js';
import { rawRequest } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { startProxy, waitFor, writeConfig } from '../helpers/harness.js';
import { TCP_CHECKS, TcpBackend, selfSigned } from '../helpers/tunnels.js';

const dir = t.testdir({});
const cert = await selfSigned(dir, 'edge', 'localhost');

/** The proxy's config with `headerTimeout` on both TLS listeners. */
function edgeConfig(backendAddress: string, headerTimeout: string): Record<string, unknown> {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '500ms',
    listeners: [
      { name: 'web', listen: '127.0.0.1:0', pool: 'app', tls: cert, header_timeout: headerTimeout },
      { name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', pool: 'app', tls: cert, header_timeout: headerTimeout },
    ],
    pools: { app: { health_check: TCP_CHECKS, backends: [{ name: 'echo', address: backendAddress }] } },
  };
}

/** `file`: where the config is written, for a test that reloads it. */
async function setup(t: Test, headerTimeout: string, file?: string): Promise<{ h: Harness; backend: TcpBackend; got: () => string }> {
  let got = '';
  const backend = await new TcpBackend('echo', {
    handler: (socket) => socket.on('data', (d: Buffer) => (got += d.toString('latin1'))),
  }).start();
  t.teardown(() => backend.close());
  const h = await startProxy(edgeConfig(backend.address, headerTimeout), file === undefined ? {} : { file });
  t.teardown(() => h.stop());
  return { h, backend, got: () => got };
}

/** Connects, writes `data` (if any), and resolves when the proxy closes the connection. */
function closedAfter(port: number, data: Buffer | null): Promise<{ received: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = net.connect(port, '127.0.0.1', () => {
      if (data !== null) socket.write(data);
    });
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ received, ms: performance.now() - started }));
  });
}

t.test('plain HTTP on a TLS http listener: a readable 400, then the connection closes', async (t) => {
  const leaks = leakCheck();
  const { h, backend, got } = await setup(t, '10s');
  for (const request of ['GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n', 'DELETE /x HTTP/1.1\r\nHost: a\r\n\r\n']) {
    // rawRequest resolves when the server closes: a hang would show as the 2 s timeout with no answer.
    const reply = await rawRequest(h.port('web'), request, 5_000);
    const method = request.split(' ')[0] as string;
    t.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/, `${method}: plain-HTTP 400`);
    t.match(reply, /\r\nconnection: close\r\n/i);
    t.match(reply, /HTTPS \(TLS\)/, `${method}: the body says the port speaks TLS`);
    const length = Number(/\r\ncontent-length: (\d+)/i.exec(reply)?.[1]);
    t.equal(Buffer.byteLength(reply.slice(reply.indexOf('\r\n\r\n') + 4)), length, `${method}: the body is complete`);
  }
  t.match(h.log.lines.find((l) => l.msg === 'TLS handshake failed'), { code: 'TLS_PLAIN_HTTP' }, 'logged with its code');
  t.equal(got(), '', 'nothing reached the backend');
  t.equal(h.log.access.length, 0);
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('plain bytes on a TLS tcp listener: closed without an answer', async (t) => {
  const leaks = leakCheck();
  const { h, backend, got } = await setup(t, '10s');
  const { received } = await closedAfter(h.port('db'), Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
  t.equal(received, '', 'no bytes back');
  t.equal(got(), '', 'nothing reached the backend');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('a TLS handshake that does not complete within header_timeout is closed (http and tcp listeners)', async (t) => {
  const leaks = leakCheck();
  const { h, backend, got } = await setup(t, '300ms');
  // The first bytes of a TLS record announcing a 200-byte ClientHello that never comes.
  const partialHello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01]);
  for (const listener of ['web', 'db']) {
    const silent = closedAfter(h.port(listener), null);
    const stalled = closedAfter(h.port(listener), partialHello);
    // The bound is generous on purpose (a loaded machine); Node's default would be 120 s.
    const within = <T>(p: Promise<T>): Promise<T | 'still open'> =>
      Promise.race([p, new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), 10_000).unref())]);
    const [a, b] = await Promise.all([within(silent), within(stalled)]);
    t.not(a, 'still open', `${listener}: a silent client was closed`);
    t.not(b, 'still open', `${listener}: a client stalled mid-handshake was closed`);
    if (a !== 'still open') t.ok(a.ms >= 200, `${listener}: not before header_timeout (${Math.round(a.ms)} ms)`);
  }
  await waitFor(() => h.log.lines.filter((l) => l.code === 'TLS_HANDSHAKE_TIMEOUT').length === 4, 5_000, 'four timeouts logged');
  t.pass('each timeout logged as TLS_HANDSHAKE_TIMEOUT');
  t.equal(got(), '', 'nothing reached the backend');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('reconfigure: a new header_timeout bounds the handshakes of new connections', async (t) => {
  const leaks = leakCheck();
  // Through a reload, the operator's path: with workers every worker's listeners take it.
  const file = `${t.testdir({})}/proxy.yaml`;
  const { h, backend } = await setup(t, '1m', file);
  writeConfig(file, edgeConfig(backend.address, '300ms'));
  t.ok((await h.proxy.reload()).ok, 'the reload applies the new header_timeout');
  const closed = await Promise.race([
    closedAfter(h.port('web'), null).then(() => 'closed'),
    new Promise<string>((resolve) => setTimeout(() => resolve('still open'), 10_000).unref()),
  ]);
  t.equal(closed, 'closed', 'the silent client was closed under the new limit');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});
