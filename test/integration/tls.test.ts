/**
 * TLS termination on http and tcp listeners (SPEC §2): HTTPS, WSS and TLS-over-TCP with a
 * certificate made in the test, TLS 1.1 refused by the server, and the certificate swapped
 * through `reconfigure` for new connections while open ones keep theirs.
 */
import t from 'tap';
import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import tls, { type TLSSocket } from 'node:tls';
import { WebSocket, type ClientOptions } from 'ws';
import { TestBackend } from '../helpers/backend.js';
import { leakCheck } from '../helpers/handles.js';
import { startProxy, waitFor, writeConfig } from '../helpers/harness.js';
import { HTTP_CHECKS, TCP_CHECKS, TcpBackend, TcpClient, WsBackend, selfSigned } from '../helpers/tunnels.js';
import { close, stopProxy, owned } from '../helpers/owned.js';

const dir = t.testdir({});
const main = await selfSigned(dir, 'main', 'localhost');
const swapped = await selfSigned(dir, 'swapped', 'localhost');
const ca = [readFileSync(main.cert), readFileSync(swapped.cert)];

/** Old clients: TLS 1.1 only; SECLEVEL=0 so that OpenSSL on the client side allows it and the refusal is the server's. */
const TLS11 = { maxVersion: 'TLSv1.1', minVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' } as const;

function secureConnect(port: number, options: tls.ConnectionOptions = {}): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca, ...options });
    socket.once('secureConnect', () => resolve(socket));
    socket.once('error', reject);
  });
}

function httpsGet(port: number): Promise<{ status: number; body: string; serial: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port, path: '/', servername: 'localhost', ca, agent: false }, (res) => {
      let body = '';
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The serial of a certificate file, as getPeerCertificate() shows it (upper-case hex). */
function readSerial(file: string): string {
  return new X509Certificate(readFileSync(file)).serialNumber;
}

t.test('HTTPS listener: requests and WebSockets over TLS, X-Forwarded-Proto https', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const backend = own(await new TestBackend({ name: 'app' }).start(), close);
  const ws = own(await new WsBackend('ws').start(), close);
  const h = own(await startProxy({
    log: { level: 'debug' },
    listeners: [{
      name: 'web', listen: '127.0.0.1:0', tls: main,
      routes: [{ path_prefix: '/ws', pool: 'ws' }, { pool: 'app' }],
    }],
    pools: {
      app: { health_check: HTTP_CHECKS, backends: [{ name: 'app', address: backend.address }] },
      ws: { health_check: HTTP_CHECKS, backends: [{ name: 'ws', address: ws.address }] },
    },
  }), stopProxy);
  const reply = await httpsGet(h.port());
  t.match(reply, { status: 200, body: 'app' });
  t.equal(backend.traffic[0]?.headers['x-forwarded-proto'], 'https');

  // ws hands these to tls.connect (its types do not list servername).
  const tlsOptions: ClientOptions & tls.ConnectionOptions = { ca, servername: 'localhost' };
  const client = new WebSocket(`wss://127.0.0.1:${h.port()}/ws`, tlsOptions);
  await new Promise<void>((resolve, reject) => {
    client.once('open', () => resolve());
    client.once('error', reject);
  });
  const echoed = new Promise<string>((resolve) => client.once('message', (d) => resolve(String(d))));
  client.send('secret');
  t.equal(await echoed, 'ws:secret');
  t.equal(ws.upgrades[0]?.['x-forwarded-proto'], 'https');
  const code = new Promise<number>((resolve) => client.once('close', (c) => resolve(c)));
  client.close(1000);
  t.equal(await code, 1000);
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('TLS over TCP: echo, half-close, plain bytes at the backend', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  let seen = '';
  const upper = own(await new TcpBackend('upper', {
    handler: (socket) => {
      socket.on('data', (d: Buffer) => (seen += d.toString()));
      socket.on('end', () => socket.end(`got ${seen}`));
    },
  }).start(), close);
  const h = own(await startProxy({
    listeners: [{ name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', pool: 'db', tls: main }],
    pools: { db: { health_check: TCP_CHECKS, backends: [{ name: 'upper', address: upper.address }] } },
  }), stopProxy);
  const socket = await secureConnect(h.port());
  t.equal(socket.getProtocol(), 'TLSv1.3');
  const client = new TcpClient(socket);
  socket.end('over tls');
  await client.waitFor('got over tls');
  await client.closed;
  t.equal(seen, 'over tls', 'the backend got the plain bytes');
  await waitFor(() => h.log.access.length === 1, 5_000, 'access line');
  t.match(h.log.access[0], { tunnel: 'tcp', reason: 'closed', bytes_in: 8, bytes_out: 12 });
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('TLS 1.1 is refused by the server; TLS 1.2 is accepted (http and tcp listeners)', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const echo = own(await new TcpBackend('echo').start(), close);
  const h = own(await startProxy({
    listeners: [
      { name: 'web', listen: '127.0.0.1:0', pool: 'db', tls: main },
      { name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', pool: 'db', tls: main },
    ],
    pools: { db: { health_check: TCP_CHECKS, backends: [{ name: 'echo', address: echo.address }] } },
  }), stopProxy);
  for (const listener of ['web', 'db']) {
    await t.rejects(secureConnect(h.port(listener), TLS11), { code: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION' }, `${listener}: the server refused TLS 1.1`);
    const tls12 = await secureConnect(h.port(listener), { maxVersion: 'TLSv1.2' });
    t.equal(tls12.getProtocol(), 'TLSv1.2', `${listener}: TLS 1.2 accepted`);
    tls12.destroy();
  }
  t.equal(h.log.access.length, 0, 'a refused handshake reaches no backend');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('reconfigure swaps the certificate for new connections; open ones keep theirs', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const echo = own(await new TcpBackend('echo').start(), close);
  const backend = own(await new TestBackend({ name: 'app' }).start(), close);
  const config = (tlsFiles: { cert: string; key: string }) => ({
    listeners: [
      { name: 'web', listen: '127.0.0.1:0', pool: 'app', tls: tlsFiles },
      { name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', pool: 'db', tls: tlsFiles },
    ],
    pools: {
      app: { health_check: HTTP_CHECKS, backends: [{ name: 'app', address: backend.address }] },
      db: { health_check: TCP_CHECKS, backends: [{ name: 'echo', address: echo.address }] },
    },
  });
  // Through a reload, the operator's path: with workers every worker's listeners take the new files.
  const file = `${t.testdir({})}/proxy.yaml`;
  const h = own(await startProxy(config(main), { file }), stopProxy);
  const before = await secureConnect(h.port('db'));
  t.equal(before.getPeerCertificate().serialNumber, readSerial(main.cert));
  t.equal((await httpsGet(h.port('web'))).serial, readSerial(main.cert));

  writeConfig(file, config(swapped));
  const reloaded = await h.proxy.reload();
  t.ok(reloaded.ok, 'the reload applies the new certificate files');

  const after = await secureConnect(h.port('db'));
  t.equal(after.getPeerCertificate().serialNumber, readSerial(swapped.cert), 'tcp: new connections get the new certificate');
  t.equal((await httpsGet(h.port('web'))).serial, readSerial(swapped.cert), 'http: new connections get the new certificate');
  const old = new TcpClient(before);
  before.write('still here');
  await old.waitFor('still here');
  t.pass('the connection made before the swap still works');
  before.end();
  after.end();
  await Promise.all([old.closed, new TcpClient(after).closed]);
  await own.stopAll();
  await leaks.assertClean(t);
});
