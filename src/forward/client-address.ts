/**
 * The client's address for a connection: the peer's, or the source a trusted PROXY protocol
 * header named (listeners record it here when the header is read). TLS sockets are looked up
 * through the raw connection under them.
 */
import type { Socket } from 'node:net';

const proxied = new WeakMap<object, string>();

/** Records the client address a PROXY protocol header gave for `connection`. */
export function setProxiedClient(connection: object, address: string): void {
  proxied.set(connection, address);
}

/** The address a PROXY header gave for this socket (or the raw connection under it), if any. */
export function proxiedClient(socket: Socket): string | undefined {
  const tls = socket as Socket & { _parent?: object | null; _handle?: { _parentWrap?: { stream?: object } } | null };
  // A TLSSocket over a raw socket keeps it as `_parent`; over a stream (the PROXY hand-over of a
  // TLS listener, proxy-protocol.ts) Node wraps that stream, reachable only through its handle.
  return proxied.get(socket) ?? (tls._parent ? proxied.get(tls._parent) : undefined) ?? proxiedStream(tls._handle?._parentWrap?.stream);
}

function proxiedStream(stream: object | undefined): string | undefined {
  return stream === undefined ? undefined : proxied.get(stream);
}

export function clientAddress(socket: Socket): string {
  const address = proxiedClient(socket) ?? socket.remoteAddress ?? '';
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}
