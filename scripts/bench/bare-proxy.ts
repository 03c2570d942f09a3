/**
 * The baseline: a bare Node script on http-proxy 1.18.1 with a keep-alive agent — what a
 * developer writes in ten lines. Round-robin over the backends, no checks, no limits.
 * Usage: node bare-proxy.js LISTEN_PORT BACKEND_PORT...
 */
import http from 'node:http';
import httpProxy from 'http-proxy';

const [listenPort, ...backendPorts] = process.argv.slice(2).map(Number);
const targets = backendPorts.map((port) => ({ host: '127.0.0.1', port }));
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const proxy = httpProxy.createProxyServer({ agent });
let next = 0;

proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) res.writeHead(502).end();
  else res.destroy();
});

http
  .createServer((req, res) => {
    const target = targets[next++ % targets.length];
    proxy.web(req, res, { target });
  })
  .listen(listenPort, '127.0.0.1');

process.on('SIGTERM', () => process.exit(0));
