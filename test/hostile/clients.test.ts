/**
 * Hostile and heavy clients: slowloris, slow readers, dribbled and aborted uploads, ten
 * thousand idle keep-alive connections, and a proxy started with a tiny descriptor limit.
 * Memory and descriptors are read from a real proxy process.
 */
import t from 'tap';
import net from 'node:net';
import http from 'node:http';
import { spawn } from 'node:child_process';
import { startBackends, TestBackend } from '../helpers/backend.js';
import { request } from '../helpers/client.js';
import { leakCheck } from '../helpers/handles.js';
import { backendSpecs, simpleConfig, sleep, startProxy, waitFor, writeConfig } from '../helpers/harness.js';
import { join } from 'node:path';
import { BIN, openFds, ProxyProcess, rssKb } from '../helpers/process.js';

/** Writes the config to `dir/proxy.yaml` for a proxy process. */
function configFile(dir: string, config: Record<string, unknown>): string {
  const file = join(dir, 'proxy.yaml');
  writeConfig(file, config);
  return file;
}

/** The test process hosts the backend and thousands of client sockets: checks must tolerate a busy loop. */
const TOLERANT = { health_check: { protocol: 'tcp', interval: '1s', timeout: '1s', rise: 1, fall: 3 } };

t.test('slowloris: 500 clients sending a byte every 2 s are cut at header_timeout while normal clients are served', async (t) => {
  const leaks = leakCheck();
  const [b] = (await startBackends(['b'])) as [TestBackend];
  const h = await startProxy(simpleConfig(backendSpecs([b]), {}, { header_timeout: '500ms' }));
  const sockets: net.Socket[] = [];
  const closed: number[] = [];
  const started = Date.now();
  for (let i = 0; i < 500; i++) {
    const s = net.connect(h.port(), '127.0.0.1');
    s.on('error', () => undefined);
    s.resume();
    s.on('connect', () => s.write('G'));
    s.on('close', () => closed.push(Date.now() - started));
    sockets.push(s);
  }
  const drip = setInterval(() => sockets.forEach((s) => s.writable && s.write('E')), 2_000);
  const served = await Promise.all(Array.from({ length: 20 }, () => request(h.port())));
  t.ok(served.every((r) => r.status === 200), 'normal clients served meanwhile');
  await waitFor(() => closed.length === 500, 5_000, 'every slow client closed');
  clearInterval(drip);
  t.ok(Math.max(...closed) < 3_000, `all cut within ${Math.max(...closed)} ms`);
  t.equal(b.traffic.length, 20, 'the backend saw only the normal requests');
  await h.stop();
  await b.close();
  await leaks.assertClean(t);
});

t.test('upload dribble: a body arriving a byte at a time is forwarded whole', async (t) => {
  const leaks = leakCheck();
  const [b] = (await startBackends(['b'], { handler: (_req, res, body) => void res.end(`got ${body}`) })) as [TestBackend];
  const h = await startProxy(simpleConfig(backendSpecs([b]), { response_timeout: '5s' }));
  const reply = await new Promise<string>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: h.port(), method: 'POST', path: '/', headers: { 'content-length': '10' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(body));
    });
    let i = 0;
    const timer = setInterval(() => {
      req.write(String(i++));
      if (i === 10) {
        clearInterval(timer);
        req.end();
      }
    }, 50);
  });
  t.equal(reply, 'got 0123456789');
  await h.stop();
  await b.close();
  await leaks.assertClean(t);
});

t.test('a client that aborts mid-upload aborts the backend request', async (t) => {
  const leaks = leakCheck();
  let aborted = false;
  const b = await new TestBackend({ name: 'b' }).start();
  const server = http.createServer((req) => {
    req.on('data', () => undefined);
    req.on('aborted', () => (aborted = true));
    req.on('close', () => {
      if (!req.complete) aborted = true;
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const h = await startProxy(simpleConfig([{ name: 'up', address: `127.0.0.1:${port}` }], { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' }, response_timeout: '5s' }));
  const socket = net.connect(h.port(), '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(100_000)}`);
  await sleep(200);
  socket.destroy();
  await waitFor(() => aborted, 2_000, 'backend request aborted');
  t.ok(aborted, 'the backend saw the upload end early');
  await waitFor(() => h.proxy.pools.get('app')?.backends[0]?.inFlight === 0, 1_000, 'in-flight released');
  await h.stop();
  await new Promise<void>((r) => server.close(() => r()));
  await b.close();
  await leaks.assertClean(t);
});

t.test('a slow reader of a large body: backpressure reaches the backend, the proxy buffers a bounded amount', async (t) => {
  // 40 MB rather than 10: loopback socket buffers alone hold ~8 MB, so only a body well beyond
  // that shows whether anything in between queues without bound.
  const BODY = 40 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let sent = 0;
  const [b] = (await startBackends(['big'], {
    handler: (_req, res) => {
      res.writeHead(200, { 'content-length': String(BODY) });
      const pump = (): void => {
        while (sent < BODY) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    },
  })) as [TestBackend];
  const dir = t.testdir();
  const proxy = new ProxyProcess(['-c', configFile(dir, simpleConfig(backendSpecs([b]), { ...TOLERANT, response_timeout: '5s' }))]);
  t.teardown(() => proxy.kill());
  const port = await proxy.port('web');
  const pid = proxy.child.pid as number;
  const before = await rssKb(pid);
  let received = 0;
  const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
  socket.on('data', (d: Buffer) => (received += d.length));
  socket.pause();
  await sleep(1_000);
  // Not reading at all for a second: what left the backend sits in kernel socket buffers and the
  // proxy's stream high-water marks, not in an unbounded queue.
  const inTransit = sent - received;
  t.ok(sent < 16 * 1048576, `the backend was held back: ${(sent / 1048576).toFixed(1)} MB of 40 MB sent while the client read nothing`);
  const grown = (await rssKb(pid)) - before;
  // Growth includes read buffers already written out but not yet collected: bounded by what passed, never the body.
  t.ok(grown < 16 * 1024, `proxy RSS grew ${(grown / 1024).toFixed(1)} MB with ${(inTransit / 1048576).toFixed(1)} MB in transit`);
  const done = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  // Then a slow reader: small reads with pauses.
  socket.on('data', () => {
    socket.pause();
    setTimeout(() => socket.resume(), 1);
  });
  socket.resume();
  await done;
  t.ok(received > BODY, `the whole body arrived (${received} bytes incl. head)`);
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
  await b.close();
});

t.test('10k idle keep-alive connections: bounded memory per connection, no crash, recovery afterwards', async (t) => {
  const [b] = (await startBackends(['b'])) as [TestBackend];
  const dir = t.testdir();
  const proxy = new ProxyProcess(['-c', configFile(dir, simpleConfig(backendSpecs([b]), TOLERANT, { idle_timeout: '60s', max_connections: 20_000 }))]);
  t.teardown(() => proxy.kill());
  const port = await proxy.port('web');
  const pid = proxy.child.pid as number;
  await request(port);
  const before = await rssKb(pid);
  const sockets: net.Socket[] = [];
  const COUNT = 10_000;
  for (let opened = 0; opened < COUNT; opened += 500) {
    await Promise.all(
      Array.from({ length: 500 }, () => new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
        s.once('data', () => resolve());
        s.on('error', () => resolve());
        sockets.push(s);
      })),
    );
  }
  await sleep(300);
  const perConnection = ((await rssKb(pid)) - before) / COUNT;
  t.ok(perConnection < 20, `${perConnection.toFixed(1)} KB per idle connection`);
  t.ok((await openFds(pid)) >= COUNT, 'all held open');
  t.equal(proxy.child.exitCode, null, 'still running');
  for (const s of sockets) s.destroy();
  await waitFor(() => true, 10);
  await sleep(500);
  const after = await request(port);
  t.equal(after.status, 200, 'serves normally afterwards');
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
  await b.close();
});

t.test('a tiny descriptor limit: EMFILE does not crash the proxy, and it recovers', async (t) => {
  const [b] = (await startBackends(['b'])) as [TestBackend];
  const dir = t.testdir();
  const file = configFile(dir, simpleConfig(backendSpecs([b]), { health_check: { protocol: 'tcp', interval: '200ms', timeout: '100ms' } }));
  // 128, not less: Node's ESM loader opens module files concurrently at startup and can itself hit
  // EMFILE below about 100 descriptors, before any of our code runs.
  const child = spawn('sh', ['-c', `ulimit -n 128 && exec "${process.execPath}" "${BIN}" -c "${file}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await b.close();
  });
  await waitFor(() => out.includes('"event":"listening"') || child.exitCode !== null, 15_000, 'listening').catch(() => undefined);
  if (!out.includes('"event":"listening"')) {
    t.fail('the proxy did not start', { stdout: out, stderr: err, exitCode: child.exitCode });
    return;
  }
  const port = Number(/"address":"[^"]*:(\d+)"/.exec(out)?.[1]);
  const sockets: net.Socket[] = [];
  for (let i = 0; i < 300; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => undefined);
    sockets.push(s);
  }
  await sleep(500);
  const replies = await Promise.all(Array.from({ length: 5 }, () => request(port, { timeoutMs: 2_000 })));
  t.equal(child.exitCode, null, `still running under EMFILE pressure (${replies.filter((r) => r.status === 200).length}/5 served)`);
  for (const s of sockets) s.destroy();
  await sleep(500);
  const after = await request(port);
  t.equal(after.status, 200, 'recovers once descriptors are free');
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  t.equal(code, 0);
});
