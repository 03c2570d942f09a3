/**
 * A scripted raw TCP backend for fault injection: for every request head it receives it calls
 * `script(socket, head, index)` (index counts requests across all connections), which may answer
 * well, badly, slowly, or not at all.
 */
import net from 'node:net';

export type Script = (socket: net.Socket, head: string, index: number) => void;

export class RawBackend {
  readonly heads: string[] = [];
  port = 0;
  connections = 0;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  script: Script;

  constructor(script: Script) {
    this.script = script;
    this.#server = net.createServer((socket) => {
      this.connections++;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
      socket.on('error', () => undefined);
      let buffered = '';
      socket.on('data', (d: Buffer) => {
        buffered += d.toString('latin1');
        for (;;) {
          const end = buffered.indexOf('\r\n\r\n');
          if (end === -1) return;
          const head = buffered.slice(0, end);
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
          if (buffered.length < end + 4 + length) return;
          buffered = buffered.slice(end + 4 + length);
          this.heads.push(head);
          this.script(socket, head, this.heads.length - 1);
        }
      });
    });
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections open now (the proxy's, health checks' included). */
  get open(): number {
    return this.#sockets.size;
  }

  /** Requests received whose first line is not a health check. */
  get requests(): string[] {
    return this.heads.filter((h) => !h.startsWith('GET /healthz'));
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    this.port = (this.#server.address() as net.AddressInfo).port;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((r) => this.#server.close(() => r()));
  }
}

export const ok = (socket: net.Socket, body = 'ok'): void => {
  socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
};
