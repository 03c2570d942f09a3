/**
 * Redirects answered by the proxy itself (SPEC §10): `redirect_https` listeners send every
 * request to `https://<host without port><target>`, `redirect` routes to `<to><target>`. The
 * path and query travel as the client sent them. The route's response_headers apply.
 */
import type { ServerResponse } from 'node:http';
import { STATUS_TEXT } from '../errors.js';
import { applyResponseRules, type HeaderRules } from './route-rules.js';
import { rawHead } from './respond.js';

/** A route's redirect: `base` is `scheme://host[:port][/path]` without a trailing `/`. */
export interface Redirect {
  readonly base: string;
  readonly code: number;
}

/** Host names and addresses, optionally with a port: anything else is no place to redirect to. */
const HOST_HEADER = /^(?:[A-Za-z0-9._~!$&'()*+,;=-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]*)?$/;

/**
 * `https://<host><target>` for a Host header, its port dropped (the HTTPS listener has its own);
 * null when the Host is missing or not a plain host (nothing sensible to redirect to).
 */
export function httpsLocation(hostHeader: string | undefined, target: string): string | null {
  if (hostHeader === undefined || !HOST_HEADER.test(hostHeader)) return null;
  let host = hostHeader;
  if (host.startsWith('[')) host = host.slice(0, host.indexOf(']') + 1);
  else {
    const colon = host.indexOf(':');
    if (colon !== -1) host = host.slice(0, colon);
  }
  return `https://${host}${locationTarget(target)}`;
}

/** `<base><target>`, the target's `/` joining them (never doubled). */
export function routeLocation(redirect: Redirect, target: string): string {
  return redirect.base + locationTarget(target);
}

/** `*` (OPTIONS *) has no path: it goes to the root. */
function locationTarget(target: string): string {
  return target.startsWith('/') ? target : '/';
}

function redirectHeaders(location: string, body: Buffer, rules: HeaderRules | null): string[] {
  const headers = ['location', location, 'content-type', 'text/plain; charset=utf-8', 'content-length', String(body.length)];
  return applyResponseRules(headers, rules);
}

const bodies = new Map<number, Buffer>();
function bodyFor(code: number): Buffer {
  let body = bodies.get(code);
  if (body === undefined) {
    body = Buffer.from(`${code} ${STATUS_TEXT[code] ?? 'Redirect'}\n`);
    bodies.set(code, body);
  }
  return body;
}

/**
 * Answers a redirect (an unread request body is discarded by Node before the connection's next
 * request, as NGINX discards it). Returns false when the location
 * holds characters no header may carry (nothing was written).
 */
export function sendRedirect(res: ServerResponse, code: number, location: string, rules: HeaderRules | null, close: boolean): boolean {
  const body = bodyFor(code);
  // Before writeHead: Node writes the Connection header from it there and then.
  if (close) res.shouldKeepAlive = false;
  try {
    res.writeHead(code, redirectHeaders(location, body, rules));
  } catch {
    return false;
  }
  res.end(body);
  return true;
}

/** The same redirect on a raw socket (a WebSocket upgrade), which then closes. */
export function rawRedirect(code: number, location: string, rules: HeaderRules | null): string | null {
  if (/[^\t\x20-\x7e\x80-\xff]/.test(location)) return null;
  const body = bodyFor(code);
  return rawHead(code, STATUS_TEXT[code] ?? 'Redirect', [...redirectHeaders(location, body, rules), 'connection', 'close']) + body.toString();
}
