/**
 * What every traffic listener is to the proxy — HTTP, HTTPS (with HTTP/2), TCP, TLS — and the
 * lifecycle they share (SPEC §6–7): bind, connection count, hold while a reload is prepared,
 * open or abandon, drain with a deadline, close. The review found the HTTP and TCP listeners
 * each carrying their own copy of it; it lives here once, and the kinds add only how they
 * accept, what counts as idle, and how they are reconfigured.
 */
import { BlockList, isIPv6, type AddressInfo, type Server, type Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { ListenerConfig } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';
import { bind, closeServer, drainWithin } from './bind.js';
import { refusedOverLimit, setConnectionLimit } from './limit.js';
import { expectProxyHeaders } from './proxy-protocol.js';
import { Certificates, setHandshakeTimeout } from './tls.js';

/** A traffic listener as the proxy (and a reload) drives it. */
export interface Listener {
  readonly name: string;
  readonly config: ListenerConfig;
  /** Draining (reload) or shutting down: HTTP responses close their connection; new upgrades get 503. */
  closing: boolean;
  /** Open client connections (raw sockets, from before any TLS or PROXY header on). */
  readonly openConnections: number;
  listen(): Promise<AddressInfo>;
  address(): AddressInfo | null;
  /** Reload: new settings for what comes next; what is open keeps its own. */
  reconfigure(config: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): void;
  /** Bound ahead of a reload: what it accepts waits until {@link open}. */
  hold(): void;
  /** Serves what waited, and everything after it. */
  open(): void;
  /** The reload was rolled back: what it accepted is closed, and so is the listener. */
  abandon(): Promise<void>;
  /** Stops accepting; what is in progress may finish; what is still open after `graceMs` is closed. */
  drain(graceMs: number): Promise<void>;
  /** Stops accepting; resolves once every connection is gone (idle ones are closed at once). */
  stopAccepting(): Promise<void>;
  /** Closes every client connection now. */
  closeAllConnections(): void;
}

export function buildTrust(config: ListenerConfig): ((address: string) => boolean) | null {
  if (config.trusted_proxies.length === 0) return null;
  const list = new BlockList();
  for (const cidr of config.trusted_proxies) list.addSubnet(cidr.address, cidr.prefix, cidr.family);
  return (address) => list.check(address, isIPv6(address) ? 'ipv6' : 'ipv4');
}

/** Something a held listener accepted: `run` serves it on open(), `socket` is closed on abandon(). */
interface Held {
  readonly run: () => void;
  readonly socket: Duplex;
}

/** The lifecycle shared by every {@link Listener}; a kind builds its server and says how it serves. */
export abstract class ListenerLifecycle implements Listener {
  readonly name: string;
  closing = false;
  /** Whether a peer address is in trusted_proxies (null = none trusted); follows reloads. */
  isTrusted: ((address: string) => boolean) | null;
  protected readonly logger: Logger;
  /** SNI certificate selection (TLS listeners; null on plain ones). */
  protected readonly certificates: Certificates | null;
  #config: ListenerConfig;
  #server: Server | null = null;
  /** Raw client sockets (TLS ones from before the handshake on). */
  readonly #sockets = new Set<Socket>();
  /** While held, what was accepted waits here; null = serving. */
  #held: Held[] | null = null;
  #proxyProtocolInstalled = false;

  constructor(config: ListenerConfig, logger: Logger) {
    this.name = config.name;
    this.#config = config;
    this.logger = logger.child({ listener: config.name });
    this.isTrusted = buildTrust(config);
    this.certificates = config.tls === undefined ? null : new Certificates(config.tls);
  }

  /** Takes the kind's server (built in its constructor): connections are counted, limits and PROXY protocol applied. */
  protected adopt(server: Server): void {
    this.#server = server;
    setConnectionLimit(server, this.#config.max_connections);
    server.on('connection', (socket: Socket) => {
      if (refusedOverLimit(socket, this.#sockets.size, this.#config.max_connections)) return;
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#installProxyProtocol(this.#config);
  }

  get config(): ListenerConfig {
    return this.#config;
  }

  get openConnections(): number {
    return this.#sockets.size;
  }

  protected sockets(): ReadonlySet<Socket> {
    return this.#sockets;
  }

  protected get server(): Server {
    if (this.#server === null) throw new Error(`listener ${this.name}: no server adopted`);
    return this.#server;
  }

  listen(): Promise<AddressInfo> {
    return bind(this.server, `listener ${this.name}`, this.#config.listen, this.logger);
  }

  address(): AddressInfo | null {
    return this.server.address() as AddressInfo | null;
  }

  /** The shared part of a reload: trust, limits, PROXY protocol, certificates; the kind adds its own. */
  reconfigure(config: ListenerConfig, _pools: ReadonlyMap<string, PoolRuntime>): void {
    this.#config = config;
    this.isTrusted = buildTrust(config);
    this.#installProxyProtocol(config);
    const server = this.server;
    setConnectionLimit(server, config.max_connections);
    if (config.tls !== undefined && this.certificates !== null && server instanceof TlsServer) {
      server.setSecureContext(this.certificates.update(config.tls));
      setHandshakeTimeout(server, config.header_timeout);
    }
  }

  /** PROXY protocol from trusted peers (proxy-protocol.ts); installed once, when first configured (a reload may turn it on). */
  #installProxyProtocol(config: ListenerConfig): void {
    if (!config.proxy_protocol || this.#proxyProtocolInstalled) return;
    this.#proxyProtocolInstalled = true;
    expectProxyHeaders(this.server, {
      isTrusted: () => this.isTrusted,
      timeoutMs: () => this.#config.header_timeout,
      enabled: () => this.#config.proxy_protocol,
      logger: this.logger,
    });
  }

  /**
   * A reload binds a listener before it is applied, so that a bind failure can still undo
   * everything; until open() what it accepts would meet pools that are not applied yet.
   */
  hold(): void {
    this.#held ??= [];
  }

  /** Whether arrivals are being held for open() (checked first, so a serving listener makes no closure per request). */
  protected get holding(): boolean {
    return this.#held !== null;
  }

  /** While held, keeps `run` for open() and returns true; serving, returns false (run it now). */
  protected holdBack(run: () => void, socket: Duplex): boolean {
    if (this.#held === null) return false;
    this.#held.push({ run, socket });
    return true;
  }

  open(): void {
    const held = this.#held ?? [];
    this.#held = null;
    for (const { run } of held) run();
  }

  async abandon(): Promise<void> {
    const held = this.#held ?? [];
    this.#held = null;
    for (const { socket } of held) socket.destroy();
    this.closeAllConnections();
    await this.stopAccepting();
  }

  drain(graceMs: number): Promise<void> {
    this.closing = true;
    return drainWithin(this, graceMs);
  }

  stopAccepting(): Promise<void> {
    const closed = closeServer(this.server);
    this.closeIdleConnections();
    return closed;
  }

  /** Connections with nothing in progress, closed when the listener stops accepting (none by default: a tunnel is never idle). */
  closeIdleConnections(): void {}

  /** Every raw socket, including those still in a TLS handshake or a PROXY header the kind never saw. */
  closeAllConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }
}
