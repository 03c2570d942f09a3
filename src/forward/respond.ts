/**
 * Error responses written by the proxy itself: a status, a short generic body, never a backend
 * address, an internal error text or a stack. Bodies are rendered once per status.
 */
import type { ServerResponse } from 'node:http';
import { STATUS_TEXT } from '../errors.js';

const bodies = new Map<number, Buffer>();

function bodyFor(status: number): Buffer {
  let body = bodies.get(status);
  if (body === undefined) {
    body = Buffer.from(`${status} ${STATUS_TEXT[status] ?? 'Error'}\n`);
    bodies.set(status, body);
  }
  return body;
}

/**
 * Answers with `status`. `retryAfter` > 0 adds Retry-After (503 when nothing serves);
 * `close` ends the client connection afterwards (bad input, shutdown).
 */
export function sendError(res: ServerResponse, status: number, retryAfter: number, close: boolean): void {
  const body = bodyFor(status);
  if (close) res.shouldKeepAlive = false;
  const headers: Record<string, string | number> = {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': body.length,
    'cache-control': 'no-store',
  };
  if (retryAfter > 0) headers['retry-after'] = retryAfter;
  res.writeHead(status, headers);
  res.end(body);
}

/** The same answer on a raw socket, for errors Node reports before a response object exists. */
export function rawErrorResponse(status: number): string {
  const body = bodyFor(status);
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body.toString()}`;
}
