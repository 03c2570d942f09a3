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

type Wrapped = Socket & { _parent?: object | null; _handle?: { _parentWrap?: { stream?: object } } | null };

function proxiedEndpoint(socket: Socket): Endpoint | undefined {
  const tls = socket as Wrapped;
  // A TLSSocket over a raw socket keeps it as `_parent`; over a stream (the PROXY hand-over of a
  // TLS listener, proxy-protocol.ts) Node wraps that stream, reachable only through its handle.
  const stream = tls._handle?._parentWrap?.stream;
  return proxied.get(socket) ?? (tls._parent ? proxied.get(tls._parent) : undefined) ?? (stream === undefined ? undefined : proxied.get(stream));
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
  const wrapped = socket as Wrapped;
  const raw = ((wrapped._parent ?? wrapped._handle?._parentWrap?.stream) as Socket | null | undefined) ?? socket;
  const local = raw.localAddress ?? socket.localAddress ?? '0.0.0.0';
  return { source, destination: { address: unmapped(local), port: raw.localPort ?? socket.localPort ?? 0 } };
}
