/**
 * The client's address for a connection: the peer's, or the source a trusted PROXY protocol
 * header named (listeners record it here when the header is read). TLS sockets are looked up
 * through the raw connection under them.
 */
import type { Socket } from 'node:net';
import type { ProxiedAddresses } from '../core/proxy-header.js';

interface Endpoint {
  readonly address: string;
  readonly port: number;
}

const proxied = new WeakMap<object, Endpoint>();

/** Records the client a PROXY protocol header named for `connection`. */
export function setProxiedClient(connection: object, source: Endpoint): void {
  proxied.set(connection, source);
}

/** A TLSSocket keeps the raw socket it wraps as `_parent` (Node-internal, stable since v0.x; tls.ts reads it too). */
type Wrapped = Socket & { _parent?: Socket | null };

function proxiedEndpoint(socket: Socket): Endpoint | undefined {
  const raw = (socket as Wrapped)._parent;
  return proxied.get(socket) ?? (raw ? proxied.get(raw) : undefined);
}

/** The address a PROXY header gave for this socket (or the raw connection under it), if any. */
export function proxiedClient(socket: Socket): string | undefined {
  return proxiedEndpoint(socket)?.address;
}

const unmapped = (address: string): string => (address.startsWith('::ffff:') ? address.slice(7) : address);

export function clientAddress(socket: Socket): string {
  return unmapped(proxiedClient(socket) ?? socket.remoteAddress ?? '');
}

/**
 * What `send_proxy_protocol` tells a backend about a client connection: the client (from a
 * PROXY header, or the peer) and the listener's local address and port it connected to.
 */
export function connectionAddresses(socket: Socket): ProxiedAddresses {
  const source = proxiedEndpoint(socket) ?? { address: unmapped(socket.remoteAddress ?? '0.0.0.0'), port: socket.remotePort ?? 0 };
  const raw = (socket as Wrapped)._parent ?? socket;
  const local = raw.localAddress ?? socket.localAddress ?? '0.0.0.0';
  return { source, destination: { address: unmapped(local), port: raw.localPort ?? socket.localPort ?? 0 } };
}
