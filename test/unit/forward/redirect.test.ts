/** Redirect answers (forward/redirect.ts): locations, and the connection closed when asked (shutdown, a draining listener). */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { httpsLocation, routeLocation, sendRedirect } from '../../../src/forward/redirect.js';

t.test('locations: the port dropped for https, the target joined without a doubled /', async (t) => {
  t.equal(httpsLocation('Example.com:8080', '/a?b=%2F'), 'https://Example.com/a?b=%2F');
  t.equal(httpsLocation('[::1]:80', '/'), 'https://[::1]/');
  t.equal(httpsLocation('a b', '/'), null);
  t.equal(httpsLocation(undefined, '/'), null);
  t.equal(routeLocation({ base: 'https://example.com/new', code: 308 }, '/x?y'), 'https://example.com/new/x?y');
  t.equal(routeLocation({ base: 'https://example.com', code: 301 }, '*'), 'https://example.com/');
});

t.test('close: the redirect says Connection: close and the connection ends; otherwise it stays open', async (t) => {
  let close = true;
  const server = http.createServer((_req, res) => sendRedirect(res, 308, 'https://example.com/', null, close));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as AddressInfo).port;
  // A keep-alive client: the server decides whether the connection ends.
  const agent = new http.Agent({ keepAlive: true });
  t.teardown(() => agent.destroy());
  const ask = (): Promise<http.IncomingMessage> =>
    new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res));
      });
      req.on('error', reject);
    });
  const closing = await ask();
  t.equal(closing.statusCode, 308);
  t.equal(closing.headers.connection, 'close', 'a closing listener ends the connection with the redirect');
  close = false;
  const open = await ask();
  t.equal(open.headers.connection, 'keep-alive');
  server.closeAllConnections();
});
