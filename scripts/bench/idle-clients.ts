/**
 * `node idle-clients.js PORT COUNT READY_PORT`: opens COUNT keep-alive connections to PORT,
 * sends one request on each, and once every one has its answer opens READY_PORT as a signal;
 * then holds them all idle until SIGTERM. Run with a raised descriptor limit.
 */
import net from 'node:net';

const [port = 0, count = 0, readyPort = 0] = process.argv.slice(2).map(Number);
const sockets: net.Socket[] = [];

function open(): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.once('connect', () => socket.write('GET /small HTTP/1.1\r\nHost: bench\r\n\r\n'));
    socket.once('data', () => resolve());
    socket.once('error', () => resolve());
    socket.once('close', () => resolve());
  });
}

async function main(): Promise<void> {
  for (let opened = 0; opened < count; opened += 500) {
    await Promise.all(Array.from({ length: Math.min(500, count - opened) }, open));
  }
  net.createServer().listen(readyPort, '127.0.0.1');
}

process.on('SIGTERM', () => {
  for (const s of sockets) s.destroy();
  process.exit(0);
});
void main();
