/**
 * `node idle-clients.js PORT COUNT READY_PORT`: opens COUNT keep-alive connections to PORT,
 * sends one request on each, and once every one has its answer opens READY_PORT as a signal;
 * then holds them all idle until SIGTERM. Run with a raised descriptor limit.
 */
import net from 'node:net';

const [port = 0, count = 0, readyPort = 0] = process.argv.slice(2).map(Number);
const sockets: net.Socket[] = [];

let answered = 0;

/** Resolves when the connection got its answer, failed, or after 5 s (a proxy at its connection cap never answers). */
function open(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    const timer = setTimeout(resolve, 5_000);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    socket.once('connect', () => socket.write('GET /small HTTP/1.1\r\nHost: bench\r\n\r\n'));
    socket.once('data', () => {
      answered++;
      done();
    });
    socket.once('error', done);
    socket.once('close', done);
  });
}

async function main(): Promise<void> {
  for (let opened = 0; opened < count; opened += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - opened) }, open));
  }
  process.stdout.write(`${answered} of ${count} connections answered\n`);
  net.createServer().listen(readyPort, '127.0.0.1');
}

process.on('SIGTERM', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
void main();
