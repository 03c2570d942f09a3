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
import { owned } from '../helpers/owned.js';
import { backendSpecs, simpleConfig, sleep, startProxy, waitFor, writeConfig } from '../helpers/harness.js';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { BIN, ProxyProcess, rssKb } from '../helpers/process.js';

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
  const own = owned(t);
  const [b] = own((await startBackends(['b'])) as [TestBackend], ([b]) => b.close());
  const h = own(await startProxy(simpleConfig(backendSpecs([b]), {}, { header_timeout: '500ms' })), (h) => h.stop());
  const sockets: net.Socket[] = own([], (all: net.Socket[]) => all.forEach((s) => s.destroy()));
  let closed = 0;
  /** Slow clients answered 408 before the close: cut by header_timeout, not by anything else. */
  let timedOut = 0;
  for (let i = 0; i < 500; i++) {
    const s = net.connect(h.port(), '127.0.0.1');
    s.on('error', () => undefined);
    let head = '';
    s.on('data', (d: Buffer) => (head += d.toString('latin1')));
    s.on('connect', () => s.write('G'));
    s.on('close', () => {
      closed++;
      if (head.startsWith('HTTP/1.1 408')) timedOut++;
    });
    sockets.push(s);
  }
  const drip = own(
    setInterval(() => sockets.forEach((s) => s.writable && s.write('E')), 2_000),
    (timer) => clearInterval(timer),
  );
  const served = await Promise.all(Array.from({ length: 20 }, () => request(h.port())));
  t.ok(served.every((r) => r.status === 200), 'normal clients served meanwhile');
  await waitFor(() => closed === 500, 30_000, 'every slow client closed');
  clearInterval(drip);
  t.equal(timedOut, 500, 'every slow client was cut at header_timeout (408, then closed)');
  t.equal(b.traffic.length, 20, 'the backend saw only the normal requests');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('upload dribble: a body arriving a byte at a time is forwarded whole', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const [b] = own((await startBackends(['b'], { handler: (_req, res, body) => void res.end(`got ${body}`) })) as [TestBackend], ([b]) => b.close());
  const h = own(await startProxy(simpleConfig(backendSpecs([b]), { response_timeout: '5s' })), (h) => h.stop());
  const reply = await new Promise<string>((resolve) => {
    const req = http.request({ host: '127.0.0.1', port: h.port(), method: 'POST', path: '/', headers: { 'content-length': '10' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve(body));
    });
    req.on('error', () => undefined);
    own(req, (r) => r.destroy());
    let i = 0;
    const timer = own(setInterval(() => {
      req.write(String(i++));
      if (i === 10) {
        clearInterval(timer);
        req.end();
      }
    }, 50), (x) => clearInterval(x));
  });
  t.equal(reply, 'got 0123456789');
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a client that aborts mid-upload aborts the backend request', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  let aborted = false;
  let uploaded = 0;
  const b = own(await new TestBackend({ name: 'b' }).start(), (x) => x.close());
  const server = own(http.createServer((req) => {
    req.on('data', (d: Buffer) => (uploaded += d.length));
    req.on('aborted', () => (aborted = true));
    req.on('close', () => {
      if (!req.complete) aborted = true;
    });
  }), (s) => {
    s.closeAllConnections();
    return new Promise((r) => s.close(r));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  const h = own(
    await startProxy(simpleConfig([{ name: 'up', address: `127.0.0.1:${port}` }], { health_check: { protocol: 'tcp', interval: '1h', timeout: '200ms' }, response_timeout: '5s' })),
    (h) => h.stop(),
  );
  const socket = own(net.connect(h.port(), '127.0.0.1'), (s) => s.destroy());
  socket.on('error', () => undefined);
  socket.write(`POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(100_000)}`);
  await waitFor(() => uploaded > 0, undefined, 'the upload under way at the backend');
  socket.destroy();
  await waitFor(() => aborted, 2_000, 'backend request aborted');
  t.ok(aborted, 'the backend saw the upload end early');
  await waitFor(() => h.proxy.pools.get('app')?.backends[0]?.inFlight === 0, 1_000, 'in-flight released');
  await own.stopAll();
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
  t.teardown(() => b.kill());
  const dir = t.testdir();
  const proxy = new ProxyProcess(['-c', configFile(dir, simpleConfig(backendSpecs([b]), { ...TOLERANT, response_timeout: '5s' }))]);
  t.teardown(() => proxy.kill());
  const port = await proxy.port('web');
  const pid = proxy.child.pid as number;
  const before = await rssKb(pid);
  let received = 0;
  const socket = net.connect(port, '127.0.0.1', () => socket.write('GET /big HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
  t.teardown(() => socket.destroy());
  socket.on('data', (d: Buffer) => (received += d.length));
  socket.pause();
  await waitFor(() => sent > 0, undefined, 'the backend begins sending');
  // The scenario itself, not a wait for anything: the client reads nothing for a second. What
  // left the backend meanwhile sits in kernel socket buffers and the proxy's stream high-water
  // marks, not in an unbounded queue (a loaded machine moves fewer bytes in that second, not more).
  await sleep(1_000);
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
});

t.test('10k idle keep-alive connections: bounded memory per connection, no crash, recovery afterwards', async (t) => {
  const [b] = (await startBackends(['b'])) as [TestBackend];
  t.teardown(() => b.kill());
  const dir = t.testdir();
  const proxy = new ProxyProcess(['-c', configFile(dir, simpleConfig(backendSpecs([b]), TOLERANT, { idle_timeout: '60s', max_connections: 20_000 }))]);
  t.teardown(() => proxy.kill());
  const port = await proxy.port('web');
  const pid = proxy.child.pid as number;
  await request(port);
  const before = await rssKb(pid);
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  const COUNT = 10_000;
  const failed: string[] = [];
  for (let opened = 0; opened < COUNT; opened += 500) {
    await Promise.all(
      Array.from({ length: 500 }, () => new Promise<void>((resolve) => {
        const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
        s.once('data', () => resolve());
        s.on('error', (err: NodeJS.ErrnoException) => {
          failed.push(err.code ?? err.message);
          resolve();
        });
        sockets.push(s);
      })),
    );
  }
  t.strictSame(failed, [], 'every connection was answered');
  // Every connection answered once; the proxy holds them all (its descriptors say so).
  const fdsNow = (): number => readdirSync(`/proc/${pid}/fd`).length;
  await waitFor(() => fdsNow() >= COUNT, undefined, 'all connections held by the proxy').catch(() => undefined);
  const perConnection = ((await rssKb(pid)) - before) / COUNT;
  // Measured idle cost: 7–12 KB per connection on Node 20, 23–27 KB on Node 24 (its HTTP server
  // keeps more per socket; not yet profiled). The bound catches a leak, which grows without limit.
  const boundKb = Number(process.versions.node.split('.')[0]) >= 24 ? 40 : 20;
  t.ok(perConnection < boundKb, `${perConnection.toFixed(1)} KB per idle connection (bound ${boundKb} KB)`);
  const fds = fdsNow();
  t.ok(fds >= COUNT, `all held open (${fds} descriptors)`);
  t.equal(proxy.child.exitCode, null, 'still running');
  for (const s of sockets) s.destroy();
  await waitFor(() => fdsNow() < COUNT / 10, undefined, 'the proxy closed its side of them');
  const after = await request(port);
  t.equal(after.status, 200, 'serves normally afterwards');
  proxy.signal('SIGTERM');
  t.equal((await proxy.exited).code, 0);
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
  await waitFor(() => out.includes('"type":"listening"') || child.exitCode !== null, 15_000, 'listening').catch(() => undefined);
  if (!out.includes('"type":"listening"')) {
    t.fail('the proxy did not start', { stdout: out, stderr: err, exitCode: child.exitCode });
    return;
  }
  const port = Number(/"address":"[^"]*:(\d+)"/.exec(out)?.[1]);
  const sockets: net.Socket[] = [];
  t.teardown(() => sockets.forEach((s) => s.destroy()));
  let settledConnects = 0;
  for (let i = 0; i < 300; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.once('error', () => settledConnects++);
    s.once('connect', () => settledConnects++);
    sockets.push(s);
  }
  // The kernel completes every connect (the backlog is large); the proxy runs out of descriptors accepting them.
  await waitFor(() => settledConnects === 300, undefined, 'the 300 connects completed');
  const replies = await Promise.all(Array.from({ length: 5 }, () => request(port, { timeoutMs: 2_000 })));
  t.equal(child.exitCode, null, `still running under EMFILE pressure (${replies.filter((r) => r.status === 200).length}/5 served)`);
  for (const s of sockets) s.destroy();
  // Recovery takes the proxy noticing the closes: retried until served, within a bound.
  let after = await request(port, { timeoutMs: 2_000 });
  for (let tries = 0; after.status !== 200 && tries < 50; tries++) {
    await sleep(100);
    after = await request(port, { timeoutMs: 2_000 });
  }
  t.equal(after.status, 200, 'recovers once descriptors are free');
  child.kill('SIGTERM');
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  t.equal(code, 0);
});
