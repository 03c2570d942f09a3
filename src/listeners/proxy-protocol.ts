/**
 * `proxy_protocol: true` on a listener (SPEC §10): every connection must come from a peer in
 * `trusted_proxies` and start with a PROXY protocol v1 or v2 header; the header's source address
 * is then the client's. A peer outside trusted_proxies, a missing, invalid or truncated header,
 * or none within header_timeout: the connection is closed, nothing answered.
 *
 * Works by deferring the server's own `connection` listeners (HTTP parser, TLS wrapper, TCP
 * accept) until the header is read. The bytes after the header (a request head, a TLS
 * ClientHello: a balancer often sends them in the same segment) go back to the socket with
 * `unshift`, and the socket itself is handed over: the HTTP parser and a TCP tunnel read them
 * from its stream, and a TLS server's socket feeds what the raw socket has buffered to the TLS
 * layer before it reads from the handle (Node's `initRead`, there for exactly this: a protocol
 * sniffed before TLS). So every listener kind gets a plain net.Socket, nothing wrapped.
 */
import type { Server, Socket } from 'node:net';
import { parseProxyHeader } from '../core/proxy-header.js';
import { setProxiedClient } from '../forward/client-address.js';
import type { Logger } from '../log.js';

export interface ProxyProtocolOptions {
  /** Whether a peer may send a header (trusted_proxies); null = nobody. */
  readonly isTrusted: () => ((address: string) => boolean) | null;
  /** The header must arrive within this (header_timeout; 0 = 10 s). */
  readonly timeoutMs: () => number;
  /** Whether the listener currently expects headers (a reload may turn it off or on). */
  readonly enabled: () => boolean;
  readonly logger: Logger;
}

/** v2: 16 bytes of head plus at most 65535 of addresses and TLVs. */
const MAX_HEADER = 16 + 65_535;

/** Defers `server`'s connection listeners until each connection's PROXY header is read. */
export function expectProxyHeaders(server: Server, options: ProxyProtocolOptions): void {
  const listeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const handOver = (socket: Socket): void => {
    for (const listener of listeners) listener.call(server, socket);
  };
  server.on('connection', (socket: Socket) => {
    if (!options.enabled()) {
      handOver(socket);
      return;
    }
    const peer = unmapped(socket.remoteAddress ?? '');
    const trusted = options.isTrusted();
    if (trusted === null || !trusted(peer)) {
      options.logger.debug({ client: peer }, 'PROXY protocol: peer not in trusted_proxies, closed');
      socket.destroy();
      return;
    }
    readHeader(socket, options, peer, handOver);
  });
}

function unmapped(address: string): string {
  return address.startsWith('::ffff:') ? address.slice(7) : address;
}

function readHeader(socket: Socket, options: ProxyProtocolOptions, peer: string, handOver: (socket: Socket) => void): void {
  let buffered: Buffer = Buffer.alloc(0);
  const refuse = (reason: string): void => {
    cleanup();
    options.logger.debug({ client: peer, reason }, 'PROXY protocol header refused, closed');
    socket.destroy();
  };
  const timeout = options.timeoutMs() > 0 ? options.timeoutMs() : 10_000;
  const timer = setTimeout(() => refuse('no complete header in time'), timeout);
  const onData = (chunk: Buffer): void => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    const result = parseProxyHeader(buffered);
    if (result.kind === 'incomplete') {
      if (buffered.length > MAX_HEADER) refuse('header too long');
      return;
    }
    if (result.kind === 'invalid') {
      refuse(result.reason);
      return;
    }
    cleanup();
    socket.pause();
    const rest = buffered.subarray(result.length);
    const client = result.addresses === null
      ? { address: peer, port: socket.remotePort ?? 0 }
      : { address: unmapped(result.addresses.source.address), port: result.addresses.source.port };
    setProxiedClient(socket, client);
    if (rest.length > 0) socket.unshift(rest);
    handOver(socket);
    // The HTTP parser reads at once; a TCP session reads only once its tunnel opens: leave the
    // socket as a fresh one is (neither flowing nor paused), so its first `data` listener starts it.
    if (socket.listenerCount('data') > 0) socket.resume();
    else (socket as Socket & { readableFlowing: boolean | null }).readableFlowing = null;
  };
  const onEnd = (): void => refuse('connection closed before the header');
  const onError = (): void => refuse('connection error before the header');
  const cleanup = (): void => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('end', onEnd);
    socket.off('error', onError);
  };
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('error', onError);
}
