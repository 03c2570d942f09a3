/**
 * A TCP (or TLS-over-TCP) listener: accepts connections within `max_connections`, terminates
 * TLS when configured, and hands each connection to a {@link TcpSession} on its one pool.
 */
import { refusedOverLimit, setConnectionLimit } from './limit.js';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../config/schema.js';
import { bind, closeServer, drainWithin } from './bind.js';
import { TcpSession } from '../forward/tcp.js';
import type { TunnelRecord } from '../forward/tunnel.js';
import type { Logger } from '../log.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { expectProxyHeaders } from './proxy-protocol.js';
import { buildTrust } from './http.js';
import { Certificates, handshakeTimeout, onHandshakeError, setHandshakeTimeout } from './tls.js';

export interface TcpListenerDeps {
  readonly logger: Logger;
  /** Access log and metrics, once per connection. */
  readonly onTunnel: (record: TunnelRecord) => void;
}

function poolOf(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): PoolRuntime {
  const pool = config.pool === undefined ? undefined : pools.get(config.pool);
  if (pool === undefined) throw new Error(`listener ${config.name}: unknown pool ${String(config.pool)}`);
  return pool;
}

export class TcpListener {
  readonly name: string;
  readonly proto: 'tcp' | 'tls';
  #config: ListenerConfig;
  #pool: PoolRuntime;
  readonly #deps: TcpListenerDeps;
  readonly #server: net.Server;
  readonly #logger: Logger;
  /** Raw client sockets (TLS ones from before the handshake on). */
  readonly #sockets = new Set<Socket>();
  /** Accepted sockets (for TLS, the TLSSocket over the raw one), to close them all at shutdown. */
  readonly #accepted = new Set<Socket>();
  /** While held (bound by a reload not applied yet), accepted connections wait here; null = serving. */
  #held: Socket[] | null = null;
  /** Draining (reload) or shutting down; tunnels in progress continue. */
  closing = false;
  /** SNI certificate selection (TLS listeners). */
  #certificates: Certificates | null = null;

  constructor(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>, deps: TcpListenerDeps) {
    this.name = config.name;
    this.#config = config;
    this.#deps = deps;
    this.#logger = deps.logger.child({ listener: config.name });
    this.#pool = poolOf(config, pools);
    const accept = (socket: Socket): void => this.#accept(socket);
    // allowHalfOpen: a client's `end` is forwarded to the backend, not answered by closing.
    if (config.tls === undefined) {
      this.proto = 'tcp';
      this.#server = net.createServer({ allowHalfOpen: true }, accept);
    } else {
      this.proto = 'tls';
      const server = tls.createServer(
        { allowHalfOpen: true, ...(this.#certificates = new Certificates(config.tls)).serverOptions(config.tls), handshakeTimeout: handshakeTimeout(config.header_timeout) },
        accept,
      );
      // A failed handshake (TLS 1.1, plain bytes, too slow) concerns that client only: closed.
      server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => onHandshakeError(err, socket, false, this.#logger));
      this.#server = server;
    }
    setConnectionLimit(this.#server, config.max_connections);
    this.#server.on('connection', (socket: Socket) => {
      if (refusedOverLimit(socket, this.#sockets.size, this.#config.max_connections)) return;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#proxyProtocol(config);
  }

  #trust: ((address: string) => boolean) | null = null;
  #proxyProtocolInstalled = false;

  /** PROXY protocol from trusted peers (proxy-protocol.ts); installed once first configured. */
  #proxyProtocol(config: ListenerConfig): void {
    this.#trust = buildTrust(config);
    if (!config.proxy_protocol || this.#proxyProtocolInstalled) return;
    this.#proxyProtocolInstalled = true;
    expectProxyHeaders(this.#server, {
      isTrusted: () => this.#trust,
      timeoutMs: () => this.#config.header_timeout,
      enabled: () => this.#config.proxy_protocol,
      tls: config.tls !== undefined,
      logger: this.#logger,
    });
  }

  get config(): ListenerConfig {
    return this.#config;
  }

  /** Open client connections. */
  get openConnections(): number {
    return this.#sockets.size;
  }

  listen(): Promise<AddressInfo> {
    return bind(this.#server, `listener ${this.name}`, this.#config.listen, this.#logger);
  }

  address(): AddressInfo | null {
    return this.#server.address() as AddressInfo | null;
  }

  /**
   * Reload: the pool, `max_connections` and the TLS certificate apply to new connections; open
   * tunnels keep theirs. Turning TLS on or off, or another address, needs a new listener.
   */
  reconfigure(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): void {
    this.#pool = poolOf(config, pools);
    this.#config = config;
    this.#proxyProtocol(config);
    setConnectionLimit(this.#server, config.max_connections);
    if (config.tls !== undefined && this.#server instanceof tls.Server) {
      if (this.#certificates === null) this.#certificates = new Certificates(config.tls);
      this.#server.setSecureContext(this.#certificates.update(config.tls));
      setHandshakeTimeout(this.#server, config.header_timeout);
    }
  }

  /** Stops accepting; resolves when every connection (and its tunnel) has closed. */
  stopAccepting(): Promise<void> {
    return closeServer(this.#server);
  }

  /** Closes every client connection still open (tunnels close with them). */
  closeAllConnections(): void {
    for (const socket of this.#accepted) socket.destroy();
    for (const socket of this.#sockets) socket.destroy();
  }

  /** Nothing is idle on a TCP listener: every connection is a tunnel (or about to be one). */
  closeIdleConnections(): void {}

  /** Reload: bound before the reload is applied; connections accepted until `open()` wait. */
  hold(): void {
    this.#held ??= [];
  }

  /** Starts the connections that waited, and everything after them. */
  open(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const socket of held) if (!socket.destroyed) this.#start(socket);
  }

  /** The reload that bound this listener was rolled back: close it and whatever it accepted. */
  async abandon(): Promise<void> {
    this.#held = null;
    this.closeAllConnections();
    await this.stopAccepting();
  }

  /**
   * Reload removed or rebound this listener: no new connections; open tunnels continue until
   * they end or `graceMs` passes. Resolves once every connection is gone.
   */
  drain(graceMs: number): Promise<void> {
    this.closing = true;
    return drainWithin(this, graceMs);
  }

  #accept(socket: Socket): void {
    this.#accepted.add(socket);
    socket.once('close', () => this.#accepted.delete(socket));
    if (this.#held !== null) {
      socket.on('error', () => socket.destroy());
      this.#held.push(socket);
      return;
    }
    this.#start(socket);
  }

  #start(socket: Socket): void {
    new TcpSession(socket, { listener: this.name, pool: this.#pool, onTunnel: this.#deps.onTunnel }).start();
  }
}
