/**
 * `max_connections` of a listener. In one process Node's `server.maxConnections` closes a
 * connection beyond the limit before it becomes a socket. In a cluster worker (SPEC §9) it must
 * not be used: a worker at its limit refuses the handle back to the primary, which hands it to
 * the next worker, and when every worker is full the connection goes round the workers for ever
 * (the client hangs, the primary spins). So a worker takes every connection and closes one
 * beyond its limit itself, as one process would: the limit holds per worker.
 */
import cluster from 'node:cluster';
import type { Server, Socket } from 'node:net';

const inWorker = cluster.isWorker;

/** Applies `limit` (at start and on reload). */
export function setConnectionLimit(server: Server, limit: number): void {
  if (!inWorker) server.maxConnections = limit;
}

/**
 * For the listener's `connection` handler, with the connections it holds (not counting
 * `socket`): true when `socket` was beyond the limit and is closed.
 */
export function refusedOverLimit(socket: Socket, open: number, limit: number): boolean {
  if (!inWorker || open < limit) return false;
  socket.destroy();
  return true;
}
