/**
 * Who may use the admin API (SPEC §7).
 *
 * With a token, every endpoint but `/healthz` needs `Authorization: Bearer <token>`, compared in
 * constant time. Browsers cannot set that header everywhere, so two more carriers are accepted,
 * each only where a browser needs it: `?token=` on the dashboard page itself (`GET /`), and a
 * WebSocket subprotocol `hotwarm.token.<base64url(token)>` on `/events/stream` (the page offers
 * it next to `hotwarm.v1`, which is the one the server selects, so the token is never echoed).
 *
 * Without a token the API is on loopback (the loader insists), but a browser on the same
 * machine can still be made to reach it by another site. So then: the Host header must name a
 * loopback host (DNS rebinding), and a POST or WebSocket upgrade whose Origin is another site is
 * refused (CSRF, cross-site WebSocket hijacking).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';

/** The subprotocol the event stream speaks (and selects). */
export const STREAM_PROTOCOL = 'hotwarm.v1';
/** Prefix of the subprotocol that carries the token from a browser. */
export const TOKEN_PROTOCOL_PREFIX = 'hotwarm.token.';

export type AuthResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly status: 401 | 403; readonly error: string; readonly challenge: string | null };

const sha256 = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

/**
 * Whether `presented` equals `expected`, in time that depends on neither: both are hashed to
 * 32 bytes first, so `timingSafeEqual` always compares equal lengths and the length of the
 * secret does not show either.
 */
export function tokenMatches(expected: string, presented: string): boolean {
  return timingSafeEqual(sha256(expected), sha256(presented));
}

/** The token of an `Authorization: Bearer …` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(header);
  return match === null ? null : (match[1] as string);
}

/** The token carried in `Sec-WebSocket-Protocol` (see the module comment), or null. */
export function protocolToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  for (const part of header.split(',')) {
    const protocol = part.trim();
    if (protocol.startsWith(TOKEN_PROTOCOL_PREFIX)) {
      return Buffer.from(protocol.slice(TOKEN_PROTOCOL_PREFIX.length), 'base64url').toString('utf8');
    }
  }
  return null;
}

function isLoopbackHost(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined) return false;
  // `[::1]:9901`, `127.0.0.1:9901`, `localhost`
  const host = hostHeader.startsWith('[') ? hostHeader.slice(1, hostHeader.indexOf(']')) : hostHeader.replace(/:\d*$/, '');
  const name = host.toLowerCase();
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  if (isIP(name) === 4) return name.startsWith('127.');
  return name === '::1';
}

export class AdminAuth {
  readonly #token: string | null;

  /** `token`: the bearer token, or null for an API without one (loopback only). */
  constructor(token: string | null) {
    this.#token = token === '' ? null : token;
  }

  get required(): boolean {
    return this.#token !== null;
  }

  /**
   * An HTTP request. `queryToken` is the `?token=` of the dashboard page (pass null for every
   * other path); `mutation` marks POSTs for the Origin check.
   */
  request(req: IncomingMessage, queryToken: string | null, mutation: boolean): AuthResult {
    if (this.#token === null) return this.#unauthenticated(req, mutation);
    const presented = bearerToken(req.headers.authorization) ?? queryToken;
    return this.#verify(presented);
  }

  /** A WebSocket upgrade: the Authorization header, or the token subprotocol. */
  upgrade(req: IncomingMessage): AuthResult {
    if (this.#token === null) return this.#unauthenticated(req, true);
    const presented = bearerToken(req.headers.authorization) ?? protocolToken(req.headers['sec-websocket-protocol']);
    return this.#verify(presented);
  }

  #verify(presented: string | null): AuthResult {
    const token = this.#token as string;
    if (presented === null) return { ok: false, status: 401, error: 'a bearer token is required', challenge: 'Bearer realm="hotwarm"' };
    if (!tokenMatches(token, presented)) {
      return { ok: false, status: 401, error: 'invalid token', challenge: 'Bearer realm="hotwarm", error="invalid_token"' };
    }
    return { ok: true };
  }

  #unauthenticated(req: IncomingMessage, checkOrigin: boolean): AuthResult {
    const host = req.headers.host;
    if (!isLoopbackHost(host)) {
      return { ok: false, status: 403, error: 'without an admin token only loopback host names are accepted', challenge: null };
    }
    const origin = req.headers.origin;
    if (checkOrigin && origin !== undefined && origin !== `http://${host}`) {
      return { ok: false, status: 403, error: 'cross-origin requests are refused', challenge: null };
    }
    return { ok: true };
  }
}
