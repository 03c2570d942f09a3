/**
 * The WebSocket opening handshake, checked on both sides (RFC 6455 §4, SPEC §5). Pure: works on
 * parsed heads.
 *
 * Client side (§4.2.1): a handshake that is not well formed never reaches a backend — a backend
 * that is laxer than the RFC (or a framework that takes any `Upgrade`) would otherwise open a
 * tunnel the proxy cannot account for as a WebSocket. Backend side (§4.1): a `101` that does not
 * prove the backend understood the handshake (`Upgrade: websocket` and the accept value derived
 * from the client's key) is not tunnelled: it is what a non-WebSocket server, or one answering
 * some other request on a confused connection, would send.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { ErrorCode } from '../errors.js';
import type { RequestHead } from './guard.js';

/** The protocol version hotwarm's tunnels are checked for (RFC 6455 §4.4). */
export const WEBSOCKET_VERSION = '13';

/** RFC 6455 §1.3. */
const ACCEPT_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** 16 bytes in base64: 22 characters and `==` (§4.1: "a randomly selected 16-byte value"). */
const KEY = /^[A-Za-z0-9+/]{22}==$/;

export interface HandshakeRefusal {
  readonly code: Extract<ErrorCode, 'BAD_REQUEST' | 'WEBSOCKET_BAD_HANDSHAKE' | 'WEBSOCKET_VERSION_UNSUPPORTED'>;
  /** For the log only. */
  readonly reason: string;
}

export interface UpgradeHead extends RequestHead {
  readonly headers: IncomingHttpHeaders;
}

function refuse(code: HandshakeRefusal['code'], reason: string): HandshakeRefusal {
  return { code, reason };
}

/** Whether a comma-separated header value lists `token` (case-insensitive), as Connection and Upgrade do. */
export function hasToken(value: string | string[] | undefined, token: string): boolean {
  if (value === undefined) return false;
  const text = Array.isArray(value) ? value.join(',') : value;
  if (text.length === token.length) return text.toLowerCase() === token;
  for (const part of text.split(',')) if (part.trim().toLowerCase() === token) return true;
  return false;
}

/** A request that asks for a WebSocket (its Upgrade lists `websocket`), whether well formed or not. */
export function asksForWebSocket(headers: IncomingHttpHeaders): boolean {
  return hasToken(headers.upgrade, 'websocket');
}

/**
 * The verdict on an upgrade request (one Node handed over as an upgrade, or a request naming
 * `websocket` in Upgrade): null when it is a well-formed opening handshake.
 */
export function checkHandshake(head: UpgradeHead): HandshakeRefusal | null {
  const headers = head.headers;
  // Only WebSocket is proxied: other upgrades (h2c, TLS) are not ours to tunnel.
  if (!asksForWebSocket(headers)) return refuse('BAD_REQUEST', `upgrade to ${String(headers.upgrade)} is not proxied`);
  // A handshake has no body; one announced anyway is either dropped by the backend or read by
  // it as the start of the next request, which is how smuggling through upgrades begins.
  const length = headers['content-length'];
  if (headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
    return refuse('BAD_REQUEST', 'WebSocket handshake with a body');
  }
  if (head.method !== 'GET') return refuse('WEBSOCKET_BAD_HANDSHAKE', `method ${String(head.method)}`);
  if (head.httpVersionMajor !== 1 || head.httpVersionMinor !== 1) {
    return refuse('WEBSOCKET_BAD_HANDSHAKE', `HTTP/${head.httpVersionMajor}.${head.httpVersionMinor}`);
  }
  if (!hasToken(headers.connection, 'upgrade')) return refuse('WEBSOCKET_BAD_HANDSHAKE', 'Connection does not list upgrade');
  const key = headers['sec-websocket-key'];
  if (key === undefined || !KEY.test(key)) return refuse('WEBSOCKET_BAD_HANDSHAKE', 'Sec-WebSocket-Key is not 16 bytes in base64');
  const version = headers['sec-websocket-version'];
  if (version === undefined) return refuse('WEBSOCKET_BAD_HANDSHAKE', 'no Sec-WebSocket-Version');
  if (version !== WEBSOCKET_VERSION) {
    // §4.2.2: a version the server does not speak is answered 426 with the versions it does;
    // a value that is not a version at all is just malformed.
    return /^\d{1,3}$/.test(version)
      ? refuse('WEBSOCKET_VERSION_UNSUPPORTED', `Sec-WebSocket-Version ${version}`)
      : refuse('WEBSOCKET_BAD_HANDSHAKE', 'Sec-WebSocket-Version is not a version');
  }
  return null;
}

/** The `Sec-WebSocket-Accept` a server must send for `key` (RFC 6455 §4.2.2 step 5.4). */
export function acceptFor(key: string): string {
  return createHash('sha1').update(key + ACCEPT_GUID).digest('base64');
}

/**
 * The verdict on a backend's `101` to a handshake with `key`: null when it may be tunnelled,
 * else what is wrong with it (for the log).
 */
export function checkSwitchingProtocols(headers: IncomingHttpHeaders, key: string): string | null {
  if (!hasToken(headers.upgrade, 'websocket')) return `101 with Upgrade ${String(headers.upgrade)}`;
  const accept = headers['sec-websocket-accept'];
  if (accept === undefined) return '101 without Sec-WebSocket-Accept';
  if (accept.trim() !== acceptFor(key)) return '101 with a Sec-WebSocket-Accept that does not match the key';
  return null;
}
