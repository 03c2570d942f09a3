/**
 * The listener kinds the proxy has — HTTP, HTTPS (with HTTP/2 offered), TCP, TLS — each with a
 * backend and a client of its own behind one interface, so that one contract suite
 * (listener-contract.ts) runs over all of them.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { RawBackend } from './raw-backend.js';
import { TcpBackend, selfSigned } from './tunnels.js';

/** A backend that can keep an exchange in progress until released. */
export interface KindBackend {
  readonly address: string;
  /** Exchanges that reached it (health checks not counted). */
  readonly seen: number;
  close(): Promise<void>;
}

export interface ListenerKind {
  readonly name: string;
  /** Listener keys besides name, listen and pool. */
  readonly listener: Readonly<Record<string, unknown>>;
  /** Whether a connection with nothing in progress is closed as soon as the listener stops accepting (HTTP keep-alive); a tunnel never is. */
  readonly idleClosesOnDrain: boolean;
  startBackend(): Promise<KindBackend>;
  /** A client connection, TLS handshake done where the kind has one. */
  connect(port: number): Promise<Duplex>;
  /** One complete exchange on `socket`; resolves with the first bytes of the answer. */
  exchange(socket: Duplex): Promise<string>;
  /** Starts an exchange that stays in progress; the returned function completes it and resolves with its answer. */
  begin(socket: Duplex, backend: KindBackend): Promise<() => Promise<string>>;
}

function firstData(socket: Duplex): Promise<string> {
  return new Promise((resolve, reject) => {
    socket.once('data', (d: Buffer) => resolve(d.toString('latin1')));
    socket.once('close', () => reject(new Error('closed before an answer')));
  });
}

/** Everything `socket` receives until it closes. */
function untilClose(socket: Duplex): Promise<string> {
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString('latin1')));
  return new Promise((resolve) => socket.once('close', () => resolve(text)));
}

function connectWith(open: () => Duplex, ready: 'connect' | 'secureConnect'): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = open();
    socket.once(ready, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

class HoldingHttpBackend implements KindBackend {
  readonly #raw: RawBackend;
  readonly #held: net.Socket[] = [];

  constructor() {
    this.#raw = new RawBackend((socket, head) => {
      if (head.startsWith('GET /hold')) this.#held.push(socket);
      else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
    });
  }

  async start(): Promise<this> {
    await this.#raw.start();
    return this;
  }

  get address(): string {
    return this.#raw.address;
  }

  get seen(): number {
    return this.#raw.requests.length;
  }

  release(): void {
    for (const socket of this.#held.splice(0)) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone');
  }

  close(): Promise<void> {
    return this.#raw.close();
  }
}

function httpKind(name: string, listener: Record<string, unknown>, connect: (port: number) => Promise<Duplex>): ListenerKind {
  return {
    name,
    listener,
    idleClosesOnDrain: true,
    startBackend: () => new HoldingHttpBackend().start(),
    connect,
    exchange(socket) {
      const answer = firstData(socket);
      socket.write('GET / HTTP/1.1\r\nHost: contract\r\n\r\n');
      return answer;
    },
    async begin(socket, backend) {
      const answer = untilClose(socket);
      socket.write('GET /hold HTTP/1.1\r\nHost: contract\r\n\r\n');
      return () => {
        (backend as HoldingHttpBackend).release();
        return answer;
      };
    },
  };
}

class EchoBackend implements KindBackend {
  readonly #tcp = new TcpBackend('echo');

  async start(): Promise<this> {
    await this.#tcp.start();
    return this;
  }

  get address(): string {
    return this.#tcp.address;
  }

  get seen(): number {
    return this.#tcp.sessions;
  }

  close(): Promise<void> {
    return this.#tcp.close();
  }
}

function tcpKind(name: string, listener: Record<string, unknown>, connect: (port: number) => Promise<Duplex>): ListenerKind {
  return {
    name,
    listener: { protocol: 'tcp', ...listener },
    idleClosesOnDrain: false,
    startBackend: () => new EchoBackend().start(),
    connect,
    exchange(socket) {
      const answer = firstData(socket);
      socket.write('ping');
      return answer;
    },
    // A tunnel is in progress from its first byte until the client ends it.
    async begin(socket) {
      const answer = firstData(socket);
      socket.write('ping');
      const echoed = await answer;
      return async () => {
        const closed = untilClose(socket);
        socket.end();
        return echoed + (await closed);
      };
    },
  };
}

const plain = (port: number): Promise<Duplex> => connectWith(() => net.connect(port, '127.0.0.1'), 'connect');

/** Every listener kind; `dir` holds the TLS kinds' certificate. */
export async function listenerKinds(dir: string): Promise<ListenerKind[]> {
  const cert = await selfSigned(dir, 'listener-contract', 'localhost');
  const secure = (port: number): Promise<Duplex> =>
    connectWith(() => tls.connect({ port, host: '127.0.0.1', servername: 'localhost', rejectUnauthorized: false }), 'secureConnect');
  return [
    httpKind('HTTP', {}, plain),
    httpKind('HTTPS', { tls: cert, http2: true }, secure),
    tcpKind('TCP', {}, plain),
    tcpKind('TLS', { tls: cert }, secure),
  ];
}
