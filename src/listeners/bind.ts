/**
 * Binding a server to its configured address and closing it again, for every listener (traffic
 * and admin): a failure to bind is a `LISTEN_FAILED` with one clear line (startup prints it; a
 * reload rolls back on it), and once bound, later server errors are logged rather than thrown.
 */
import type { AddressInfo, Server } from 'node:net';
import { ProxyError } from '../errors.js';
import type { Logger } from '../log.js';

/** `who`: how the error line names the listener, e.g. `listener web` or `admin`. */
export function bind(server: Server, who: string, address: { readonly host: string; readonly port: number }, logger: Logger): Promise<AddressInfo> {
  const { host, port } = address;
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new ProxyError('LISTEN_FAILED', `${who}: cannot listen on ${host}:${port}: ${err.code ?? err.message}`, { cause: err }));
    };
    server.once('error', onError);
    // Not exclusive: in a worker (SPEC §9) the primary holds the socket and hands connections
    // round-robin, so a worker that dies loses none still queued. Outside a cluster it changes nothing.
    server.listen({ host, port }, () => {
      server.off('error', onError);
      server.on('error', (err) => logger.error({ err }, `${who}: server error`));
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Stops `server` accepting; resolves once its last connection is gone (at once if it is not listening). */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    server.close(() => resolve());
  });
}

/** A listener a reload removed or rebound: it stops accepting, and what is still open after `graceMs` is closed. */
export async function drainWithin(listener: { stopAccepting(): Promise<void>; closeAllConnections(): void }, graceMs: number): Promise<void> {
  const timer = setTimeout(() => listener.closeAllConnections(), graceMs);
  await listener.stopAccepting();
  clearTimeout(timer);
}
