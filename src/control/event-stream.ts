/**
 * `GET /events/stream`: every event as one JSON text message, as it happens (SPEC §7–8).
 *
 * The stream is one-way and must never hold the proxy back: incoming messages are ignored (and
 * capped small), compression is off (no zlib work per event), a peer that stops answering pings
 * is cut, and a peer that cannot keep up — its send buffer over a bound — is dropped rather than
 * buffered without limit. Each event is serialized once for all peers.
 *
 * The `ws` library is loaded with the first peer: a primary or proxy nobody watches does not
 * carry it (and the https, tls and zlib modules it pulls in), a few MB of memory.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket, WebSocketServer } from 'ws';
import { STREAM_PROTOCOL } from './auth.js';
import type { EventLog, ProxyEvent } from './events.js';

export interface EventStreamOptions {
  /** Ping every this many ms; a peer that has not answered the previous ping is cut. */
  readonly heartbeatMs?: number;
  /** A peer with more than this many bytes queued is dropped as too slow. */
  readonly maxBufferedBytes?: number;
  readonly maxClients?: number;
}

const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_MAX_BUFFERED = 1024 * 1024;
const DEFAULT_MAX_CLIENTS = 64;
/** Peers only answer pings; anything they send is small or a mistake. */
const MAX_PAYLOAD = 4 * 1024;

export class EventStream {
  /** Made with the first peer (see the module comment). */
  #wss: WebSocketServer | null = null;
  #loading: Promise<WebSocketServer> | null = null;
  readonly #unsubscribe: () => void;
  readonly #heartbeatMs: number;
  readonly #maxBuffered: number;
  readonly #maxClients: number;
  /** Peers that answered since the last ping. */
  readonly #alive = new WeakSet<WebSocket>();
  #heartbeat: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(events: EventLog, options: EventStreamOptions = {}) {
    this.#heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    this.#maxBuffered = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED;
    this.#maxClients = options.maxClients ?? DEFAULT_MAX_CLIENTS;
    this.#unsubscribe = events.subscribe((event) => this.#broadcast(event));
  }

  get clients(): number {
    return this.#wss?.clients.size ?? 0;
  }

  /** Whether another peer may join (the caller answers 503 otherwise). */
  get full(): boolean {
    return this.clients >= this.#maxClients;
  }

  /** Completes an upgrade the caller has already authenticated. */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#wss !== null) {
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#joined(ws));
      return;
    }
    // ws refuses a socket that closed meanwhile; one that fails to load is cut.
    this.#server().then(
      (wss) => {
        if (this.#closed) socket.destroy();
        else wss.handleUpgrade(req, socket, head, (ws) => this.#joined(ws));
      },
      () => socket.destroy(),
    );
  }

  #server(): Promise<WebSocketServer> {
    this.#loading ??= import('ws').then(({ WebSocketServer: Server }) => {
      this.#wss = new Server({
        noServer: true,
        maxPayload: MAX_PAYLOAD,
        perMessageDeflate: false,
        clientTracking: true,
        // Select our own protocol when offered, never the token-carrying one (auth.ts).
        handleProtocols: (protocols) => (protocols.has(STREAM_PROTOCOL) ? STREAM_PROTOCOL : false),
      });
      return this.#wss;
    });
    return this.#loading;
  }

  /** Cuts every peer and stops the heartbeat. */
  close(): void {
    this.#closed = true;
    this.#unsubscribe();
    this.#stopHeartbeat();
    for (const ws of this.#wss?.clients ?? []) ws.terminate();
    this.#wss?.close();
  }

  #joined(ws: WebSocket): void {
    if (this.#closed) {
      ws.terminate();
      return;
    }
    this.#alive.add(ws);
    ws.on('pong', () => this.#alive.add(ws));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => {
      if (this.clients === 0) this.#stopHeartbeat();
    });
    if (this.#heartbeat === null) {
      this.#heartbeat = setInterval(() => this.#beat(), this.#heartbeatMs);
      this.#heartbeat.unref();
    }
  }

  #beat(): void {
    for (const ws of this.#wss?.clients ?? []) {
      if (!this.#alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.#alive.delete(ws);
      ws.ping();
    }
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat !== null) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  #broadcast(event: ProxyEvent): void {
    const wss = this.#wss;
    if (wss === null || wss.clients.size === 0) return;
    const data = JSON.stringify(event);
    for (const ws of wss.clients) {
      if (ws.readyState !== ws.OPEN) continue;
      if (ws.bufferedAmount > this.#maxBuffered) {
        ws.terminate();
        continue;
      }
      ws.send(data);
    }
  }
}
