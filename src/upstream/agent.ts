/**
 * The keep-alive agent of one backend. Without an agent http-proxy opens a new upstream
 * connection per request (2.6× slower in REFERENCE-FIGURES); with one, connections are pooled.
 *
 * It also hands each new upstream request to whoever is about to create it. http-proxy builds
 * the ClientRequest inside `proxy.web()` and shows it only through its `proxyReq` event, which
 * fires late (on `socket`, after headers may already be rendered when the agent queues) and
 * never for requests carrying `Expect`. Node calls `agent.addRequest()` synchronously from the
 * ClientRequest constructor, before the head is rendered, so claiming it there is exact.
 */
import http, { type ClientRequest, type RequestOptions } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';

declare module 'node:http' {
  interface Agent {
    /** Node-internal, stable since v0.x: called by the ClientRequest constructor. */
    addRequest(req: ClientRequest, options: RequestOptions): void;
  }
}

/** Free sockets idle longer than this are closed by us before the backend does (Node's own server closes at 5 s). */
export const FREE_SOCKET_TIMEOUT_MS = 3_500;
/** How often idle pooled connections are looked for: one is closed 3.5–4 s after it fell idle. */
const IDLE_SWEEP_MS = 500;

/** The sweep at which a pooled socket last became free: no clock read per request. */
const kIdleMark = Symbol('hotwarm.idleMark');
type Marked = Duplex & { [kIdleMark]?: number };

export class UpstreamAgent extends http.Agent {
  #claim: ((req: ClientRequest) => void) | null = null;
  #sweep: NodeJS.Timeout | null = null;
  /** Sweeps so far; a socket freed before sweep `n` is closed at sweep `n + #idleSweeps`. */
  #sweeps = 0;
  readonly #sweepMs: number;
  readonly #idleSweeps: number;
  /** The options that name this agent's pool, for a request a pooled connection will take: see #pooledFor. */
  #reuse: RequestOptions | null = null;
  /** Node's name for that pool (the key of `freeSockets`). */
  #name = '';

  /** `idleMs`: how long a pooled connection may stay idle (tests shorten it). */
  constructor(maxSockets: number, idleMs = FREE_SOCKET_TIMEOUT_MS) {
    // No `timeout` option: with one, Node arms a socket timer per request, adds and removes a
    // `timeout` listener per request and refreshes the timer on every read and write of a busy
    // connection — on the request path, for an idle close. Idle connections are swept instead.
    // Only what differs from Node's defaults (LIFO reuse): Node copies these options into a new
    // object for every request.
    super({ keepAlive: true, maxSockets });
    this.#sweepMs = Math.min(IDLE_SWEEP_MS, idleMs);
    // One sweep more than idleMs / sweepMs: a socket freed just before a sweep still gets idleMs.
    this.#idleSweeps = Math.ceil(idleMs / this.#sweepMs) + 1;
  }

  /** Node-internal hook, called as a socket returns to the pool: its idle time starts. */
  override keepSocketAlive(socket: Duplex): boolean {
    // Node returns whether the socket may be kept (its typings say void).
    const keep = super.keepSocketAlive(socket) as unknown as boolean;
    if (keep) {
      (socket as Marked)[kIdleMark] = this.#sweeps;
      if (this.#sweep === null) {
        this.#sweep = setInterval(() => this.#closeIdle(), this.#sweepMs);
        this.#sweep.unref();
      }
    }
    return keep;
  }

  /** Closes the pooled connections idle for `idleMs` (up to one sweep more); the sweep stops with the last one. */
  #closeIdle(): void {
    const sweep = ++this.#sweeps;
    let left = 0;
    for (const sockets of Object.values(this.freeSockets)) {
      for (const socket of (sockets ?? []) as Marked[]) {
        if (sweep - (socket[kIdleMark] ?? sweep) >= this.#idleSweeps) socket.destroy();
        else left++;
      }
    }
    if (left === 0) this.#stopSweep();
  }

  #stopSweep(): void {
    if (this.#sweep !== null) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  override destroy(): void {
    this.#stopSweep();
    super.destroy();
  }

  /** `claim` receives the next request created through this agent (one-shot, synchronous). */
  claimNext(claim: (req: ClientRequest) => void): void {
    this.#claim = claim;
  }

  /**
   * Closes every idle pooled connection. After one of them turned out stale (the backend closed
   * it as we reused it), its siblings of the same age are likely stale too.
   */
  dropIdleSockets(): void {
    for (const sockets of Object.values(this.freeSockets)) {
      for (const socket of sockets ?? []) socket.destroy();
    }
  }

  override addRequest(req: ClientRequest, options: RequestOptions): void {
    const claim = this.#claim;
    this.#claim = null;
    if (claim !== null) claim(req);
    super.addRequest(req, this.#pooledFor(options) ? (this.#reuse as RequestOptions) : options);
  }

  /**
   * Node's addRequest copies the request's options with the agent's into a new object (a
   * dictionary of some 20 keys, 2.8 KB per request, the largest allocation on the request path)
   * to compute the pool's name, then uses them only to open a connection. When a pooled
   * connection is free it opens none: a constant object with just the keys of the name stands
   * in (`servername: ''` spares the Host lookup Node makes for TLS names). Should Node open one
   * after all (Node 24 destroys a free socket with unread data and may find no other), host,
   * port, local address and family are all a plain-HTTP backend's connection needs. When no
   * connection is free, or the request is for another address than the last, Node gets the
   * request's own options.
   */
  #pooledFor(options: RequestOptions): boolean {
    const reuse = this.#reuse;
    if (reuse === null || reuse.host !== options.host || reuse.port !== options.port || reuse.localAddress !== options.localAddress || reuse.family !== options.family) {
      this.#reuse = Object.freeze({ host: options.host, port: options.port, localAddress: options.localAddress, family: options.family, servername: '' });
      this.#name = this.getName({ ...options, ...(this as unknown as { options: RequestOptions }).options });
      return false;
    }
    const free = (this.freeSockets as Record<string, Duplex[] | undefined>)[this.#name];
    const last = free === undefined ? undefined : free[free.length - 1];
    return last !== undefined && !last.destroyed;
  }
}

/**
 * The connections of one client to one backend of a pool with `send_proxy_protocol`: each opens
 * with that client's PROXY header, so they are kept alive for this client's next requests and
 * never handed to another client (the header cannot be taken back). Closed with the client.
 */
export class ProxyHeaderAgent extends UpstreamAgent {
  readonly #header: Buffer;

  constructor(header: Buffer) {
    super(4);
    this.#header = header;
  }

  override createConnection(options: http.ClientRequestArgs): Duplex {
    const socket = net.createConnection(options as net.NetConnectOpts);
    socket.write(this.#header);
    return socket;
  }
}
