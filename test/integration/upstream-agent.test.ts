/**
 * The keep-alive agent of a backend closes pooled connections that stay idle (before the backend
 * does, so a request never lands on one the backend is closing), without a timer per request:
 * one sweep per agent while it has idle connections, gone with the last of them.
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import t from 'tap';
import { UpstreamAgent } from '../../src/upstream/agent.js';
import { leakCheck } from '../helpers/handles.js';
import { owned } from '../helpers/owned.js';

function get(port: number, agent: http.Agent): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
  });
}

t.test('an idle pooled connection is closed after idleMs, a busy one is reused, and the sweep stops with the last', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const closedAt: number[] = [];
  const server = own(
    http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok')),
    (s) => new Promise((r) => s.close(r)),
  );
  const connections: Socket[] = [];
  server.on('connection', (socket: Socket) => {
    connections.push(socket);
    socket.on('close', () => closedAt.push(performance.now()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const agent = own(new UpstreamAgent(4, 1_000), (a) => a.destroy());

  await get(port, agent);
  await get(port, agent);
  t.equal(connections.length, 1, 'the second request reused the pooled connection');
  const idleFrom = performance.now();
  // A request during the idle time restarts it (1 s is long enough for a loaded machine's stalls).
  await new Promise((r) => setTimeout(r, 100));
  await get(port, agent);
  const restarted = performance.now();
  t.equal(connections.length, 1, 'still one connection');

  while (closedAt.length === 0) await new Promise((r) => setTimeout(r, 20));
  const idle = (closedAt[0] as number) - restarted;
  t.ok(idle >= 990, `closed no earlier than idleMs after its last request (${idle.toFixed(0)} ms)`);
  t.ok((closedAt[0] as number) - idleFrom > 1_090, 'the request in between restarted the idle time');
  t.same(Object.keys(agent.freeSockets), [], 'nothing left in the pool');

  // With the pool empty the agent holds no timer: the process has nothing of ours running.
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('destroy() stops the sweep while connections are still idle', async (t) => {
  const leaks = leakCheck();
  const own = owned(t);
  const server = own(
    http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => res.end('ok')),
    (s) => new Promise((r) => s.close(r)),
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const agent = new UpstreamAgent(4, 60_000);
  await get((server.address() as AddressInfo).port, agent);
  t.equal(Object.values(agent.freeSockets).flat().length, 1, 'one idle pooled connection');
  agent.destroy();
  server.closeAllConnections();
  await own.stopAll();
  await leaks.assertClean(t);
});

t.test('a pooled connection takes the request with the pool-name options; none free, a new one opens; another address gets its own', async (t) => {
  const own = owned(t);
  const servers = await Promise.all(
    ['a', 'b'].map(async (name) => {
      const connections: Socket[] = [];
      const server = own(
        http.createServer({ keepAliveTimeout: 60_000 }, (req, res) => res.end(`${name} ${req.url}`)),
        (s) => new Promise((r) => s.close(r)),
      );
      server.on('connection', (socket: Socket) => connections.push(socket));
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return { server, connections, port: (server.address() as AddressInfo).port };
    }),
  );
  const [a, b] = servers as [(typeof servers)[number], (typeof servers)[number]];
  const agent = own(new UpstreamAgent(8), (x) => x.destroy());
  const body = (port: number, path: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path, agent, headers: { host: 'app.example' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
    });

  for (let n = 0; n < 5; n++) t.equal(await body(a.port, `/s${n}`), `a /s${n}`, `sequential request ${n}, its own path`);
  t.equal(a.connections.length, 1, 'sequential requests share one pooled connection');
  const parallel = await Promise.all([1, 2, 3].map((n) => body(a.port, `/p${n}`)));
  t.strictSame(parallel, ['a /p1', 'a /p2', 'a /p3'], 'concurrent requests answered');
  t.equal(a.connections.length, 3, 'the pool grew to three (none was free for two of them)');
  // The backend closes every connection: the agent sees the pooled ones close and opens anew.
  a.server.closeAllConnections();
  while (Object.keys(agent.freeSockets).length > 0) await new Promise((r) => setTimeout(r, 10));
  t.equal(await body(a.port, '/after'), 'a /after', 'after the pool emptied, a new connection');
  t.equal(a.connections.length, 4);
  t.equal(await body(b.port, '/other'), 'b /other', 'another address on the same agent reaches its own server');
  t.equal(await body(b.port, '/other2'), 'b /other2');
  t.equal(b.connections.length, 1, 'and pools its connection');
  t.equal(await body(a.port, '/back'), 'a /back', 'and back to the first');
});
