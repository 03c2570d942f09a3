/**
 * Error responses written by the proxy itself: a status, a short generic body, never a backend
 * address, an internal error text or a stack. Bodies are rendered once per status.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { STATUS_TEXT } from '../errors.js';
import { applyResponseRules, type HeaderRules } from './route-rules.js';

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
 * `close` ends the client connection afterwards (bad input, shutdown); `rules` are the route's
 * response_headers, applied to the proxy's own answers too.
 */
export function sendError(res: ServerResponse, status: number, retryAfter: number, close: boolean, rules: HeaderRules | null = null): void {
  const body = bodyFor(status);
  if (close) res.shouldKeepAlive = false;
  if (rules === null) {
    const headers: Record<string, string | number> = {
      'content-type': 'text/plain; charset=utf-8',
      'content-length': body.length,
      'cache-control': 'no-store',
    };
    if (retryAfter > 0) headers['retry-after'] = retryAfter;
    res.writeHead(status, headers);
  } else {
    res.writeHead(status, applyResponseRules(errorHeaders(body, retryAfter), rules));
  }
  res.end(body);
}

function errorHeaders(body: Buffer, retryAfter: number): string[] {
  const headers = ['content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length), 'cache-control', 'no-store'];
  if (retryAfter > 0) headers.push('retry-after', String(retryAfter));
  return headers;
}

/**
 * The same answer on a raw socket, for errors Node reports before a response object exists
 * and for WebSocket upgrades (which have no response object either).
 */
export function rawErrorResponse(status: number, retryAfter = 0, extraHeaders = '', body: Buffer = bodyFor(status)): string {
  const retry = retryAfter > 0 ? `retry-after: ${retryAfter}\r\n` : '';
  return `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Error'}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\ncache-control: no-store\r\n${retry}${extraHeaders}connection: close\r\n\r\n${body.toString()}`;
}

/**
 * Headers a refusal of this status must carry: a 426 names the protocol to upgrade to
 * (RFC 9110 §15.5.22) and the WebSocket version we speak (RFC 6455 §4.4).
 */
function requiredHeaders(status: number): string {
  return status === 426 ? 'upgrade: websocket\r\nsec-websocket-version: 13\r\n' : '';
}

/** The response Node is writing on this client connection, if any (Node's `_httpMessage`). */
export function pendingResponse(socket: Duplex): ServerResponse | null {
  return (socket as Duplex & { _httpMessage?: ServerResponse | null })._httpMessage ?? null;
}

const refusing = new WeakSet<Duplex>();

/**
 * Answers `status` on the raw socket and closes the connection. With pipelining, responses to
 * earlier requests on the connection are still being written when a later request turns out
 * malformed (or is an upgrade): they go first, in order, and the refusal answers the bad request
 * after them, as HAProxy and NGINX do; written at once it would read as the answer to the first.
 * A response whose own request is the bad one (an error inside its body) is answered at once,
 * or the connection is just closed when its head is already out.
 */
export function refuseOnSocket(socket: Duplex, status: number, retryAfter = 0, rules: HeaderRules | null = null): void {
  // Once per connection: an errored parser reports again with every chunk that still arrives.
  if (socket.destroyed || refusing.has(socket)) return;
  refusing.add(socket);
  const answer =
    rules === null
      ? rawErrorResponse(status, retryAfter, requiredHeaders(status))
      : rawHead(status, STATUS_TEXT[status] ?? 'Error', [...applyResponseRules(errorHeaders(bodyFor(status), retryAfter), rules), 'connection', 'close']) + bodyFor(status).toString();
  answerAfterEarlier(socket, answer);
}

function answerAfterEarlier(socket: Duplex, answer: string): void {
  if (socket.destroyed) return;
  const earlier = pendingResponse(socket);
  if (earlier !== null && earlier.req.complete) {
    // `close` follows `finish` by a tick, after Node has attached the next queued response.
    earlier.once('close', () => answerAfterEarlier(socket, answer));
    return;
  }
  if (!socket.writable || (earlier !== null && earlier.headersSent)) {
    socket.destroy();
    return;
  }
  socket.end(answer, () => socket.destroy());
}

/**
 * A response head written on a raw socket: status line and `[name, value, …]` headers. Names
 * and values come from Node's parser (no CR/LF can be in them) or from us.
 */
export function rawHead(status: number, message: string, headers: readonly string[]): string {
  let head = `HTTP/1.1 ${status} ${message}\r\n`;
  for (let i = 0; i < headers.length; i += 2) head += `${headers[i] as string}: ${headers[i + 1] as string}\r\n`;
  return `${head}\r\n`;
}
