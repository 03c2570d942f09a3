/**
 * One drill backend: `node drill-backend.js NAME PORT SERVICE_MS CONCURRENCY`. Each request
 * takes SERVICE_MS once it gets one of CONCURRENCY slots (a worker pool, like an app server's
 * threads), so a pool that loses a backend loses capacity. /healthz answers at once. The body is
 * `NAME ARRIVAL_EPOCH_MS`: the drill learns when each backend first saw traffic.
 */
import http from 'node:http';

const [name = 'b', portText = '0', serviceText = '10', concurrencyText = '8'] = process.argv.slice(2);
const serviceMs = Number(serviceText);
const slots = Number(concurrencyText);
let busy = 0;
const queue: (() => void)[] = [];

function acquire(): Promise<void> {
  if (busy < slots) {
    busy++;
    return Promise.resolve();
  }
  return new Promise((resolve) => queue.push(resolve));
}

function release(): void {
  const next = queue.shift();
  if (next) next();
  else busy--;
}

const server = http.createServer(async (req, res) => {
  req.resume();
  if (req.url === '/healthz') {
    res.end('ok\n');
    return;
  }
  const arrived = Date.now();
  await acquire();
  setTimeout(() => {
    release();
    res.end(`${name} ${arrived}\n`);
  }, serviceMs);
});
server.keepAliveTimeout = 65_000;
server.listen(Number(portText), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
