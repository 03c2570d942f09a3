/**
 * A TCP (or TLS-over-TCP) listener: accepts connections within `max_connections`, terminates
 * TLS when configured, and hands each connection to a {@link TcpSession} on its one pool.
 * Binding, holding, draining and closing are the shared {@link ListenerLifecycle}.
 */
import net, { type Socket } from 'node:net';
import tls from 'node:tls';
import type { ListenerConfig } from '../config/schema.js';
import { TcpSession } from '../forward/tcp.js';
import type { TunnelRecord } from '../forward/tunnel.js';
import type { Logger } from '../log.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { ListenerLifecycle } from './listener.js';
import { handshakeTimeout, onHandshakeError } from './tls.js';

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

export class TcpListener extends ListenerLifecycle {
  readonly proto: 'tcp' | 'tls';
  #pool: PoolRuntime;
  readonly #deps: TcpListenerDeps;
  /** Accepted sockets (for TLS, the TLSSocket over the raw one), to close them all at shutdown. */
  readonly #accepted = new Set<Socket>();

  constructor(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>, deps: TcpListenerDeps) {
    super(config, deps.logger);
    this.#deps = deps;
    this.#pool = poolOf(config, pools);
    const accept = (socket: Socket): void => this.#accept(socket);
    // allowHalfOpen: a client's `end` is forwarded to the backend, not answered by closing.
    if (config.tls === undefined || this.certificates === null) {
      this.proto = 'tcp';
      this.adopt(net.createServer({ allowHalfOpen: true }, accept));
    } else {
      this.proto = 'tls';
      const server = tls.createServer(
        { allowHalfOpen: true, ...this.certificates.serverOptions(config.tls), handshakeTimeout: handshakeTimeout(config.header_timeout) },
        accept,
      );
      // A failed handshake (TLS 1.1, plain bytes, too slow) concerns that client only: closed.
      server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => onHandshakeError(err, socket, false, this.logger));
      this.adopt(server);
    }
  }

  /**
   * Reload: the pool, `max_connections` and the TLS certificate apply to new connections; open
   * tunnels keep theirs. Turning TLS on or off, or another address, needs a new listener.
   */
  override reconfigure(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): void {
    this.#pool = poolOf(config, pools);
    super.reconfigure(config, pools);
  }

  /** Closes every client connection still open (tunnels close with them). */
  override closeAllConnections(): void {
    for (const socket of this.#accepted) socket.destroy();
    super.closeAllConnections();
  }

  #accept(socket: Socket): void {
    this.#accepted.add(socket);
    socket.once('close', () => this.#accepted.delete(socket));
    if (this.holdBack(() => this.#start(socket), socket)) {
      socket.on('error', () => socket.destroy());
      return;
    }
    this.#start(socket);
  }

  #start(socket: Socket): void {
    // A connection that waited while the listener was held may be gone by now.
    if (socket.destroyed) return;
    new TcpSession(socket, { listener: this.name, pool: this.#pool, onTunnel: this.#deps.onTunnel }).start();
  }
}
