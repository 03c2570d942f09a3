/**
 * Header rules between client and backend (SPEC §5). Pure: no sockets, works on Node's header
 * object (request side) and raw header arrays (response side).
 *
 * Hop-by-hop headers describe one connection and must not cross the proxy; http-proxy forwards
 * them as they come (and with a keep-alive agent passes the client's `Connection: close` on,
 * which makes the backend drop our pooled connection). X-Forwarded-* are ours to set: http-proxy's
 * `xfwd` appends to whatever the client sent, which lets anyone spoof their address.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { applyResponseRules, type HeaderRules } from './route-rules.js';

/** Always removed (RFC 9110 §7.6.1 plus the legacy Proxy-Connection). */
const HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade'] as const;

/**
 * Never removed because `Connection` lists them: dropping a framing header would leave the body
 * unframed towards the backend (a desync), and Host decides routing.
 */
const PROTECTED = new Set(['content-length', 'transfer-encoding', 'host']);

export interface ForwardingContext {
  /** The client's address as seen on the socket (IPv4-mapped IPv6 already unwrapped). */
  readonly clientAddress: string;
  readonly proto: 'http' | 'https';
  /** The peer is in the listener's trusted_proxies: its X-Forwarded-* values are kept. */
  readonly trusted: boolean;
  /** A WebSocket upgrade: `Upgrade` and `Connection: upgrade` are end-to-end for this request. */
  readonly upgrade: boolean;
}

/**
 * Whether a peer's X-Forwarded-* values may be kept: it is in trusted_proxies. Asked only when it
 * sent any, since the address lookup has a cost and almost no client sends them.
 */
export function keepsForwardedHeaders(headers: IncomingHttpHeaders, peer: string, isTrusted: ((address: string) => boolean) | null): boolean {
  if (isTrusted === null) return false;
  const sent = headers['x-forwarded-for'] !== undefined || headers['x-forwarded-proto'] !== undefined || headers['x-forwarded-host'] !== undefined;
  return sent && isTrusted(peer);
}

/** What the listener a request arrived on says about forwarding: its scheme and whom it trusts. */
export interface ForwardingSource {
  readonly proto: 'http' | 'https';
  readonly isTrusted: ((address: string) => boolean) | null;
}

/** {@link prepareRequestHeaders} for a request from `client` on `source`, as HTTP and WebSocket forward it. */
export function prepareForBackend(headers: IncomingHttpHeaders, client: string, source: ForwardingSource, upgrade: boolean): void {
  prepareRequestHeaders(headers, {
    clientAddress: client,
    proto: source.proto,
    trusted: keepsForwardedHeaders(headers, client, source.isTrusted),
    upgrade,
  });
}

/** Lower-case names listed in a Connection header value, framing headers excluded. */
function connectionTokens(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  const text = Array.isArray(value) ? value.join(',') : value;
  // Nearly every peer sends exactly one of these two, which name no other header.
  if (text.length <= 10) {
    const lower = text.toLowerCase();
    if (lower === 'keep-alive' || lower === 'close') return [];
  }
  const tokens: string[] = [];
  for (const part of text.split(',')) {
    const token = part.trim().toLowerCase();
    if (token !== '' && !PROTECTED.has(token)) tokens.push(token);
  }
  return tokens;
}

/**
 * Rewrites the request headers in place for the backend: hop-by-hop removed (first, so a
 * `Connection: X-Forwarded-For` cannot smuggle a value past us), `Expect` answered by us and not
 * forwarded, then X-Forwarded-For / -Proto / -Host set; from an untrusted peer, Forwarded and
 * X-Real-IP removed.
 */
export function prepareRequestHeaders(headers: IncomingHttpHeaders, ctx: ForwardingContext): void {
  const listed = headers.connection;
  if (listed !== undefined) {
    for (const token of connectionTokens(listed)) delete headers[token];
  }
  for (const name of HOP_BY_HOP) {
    if (headers[name] !== undefined) delete headers[name];
  }
  // We answer `100-continue` to the client ourselves; forwarding Expect would let a backend
  // that answers 417 without reading the body leave the body on our pooled connection.
  if (headers.expect !== undefined) delete headers.expect;
  if (ctx.upgrade) {
    headers.connection = 'upgrade';
    headers.upgrade = 'websocket';
  }

  // Client-address headers we do not set ourselves (RFC 7239 Forwarded, NGINX's X-Real-IP) are
  // what some frameworks trust instead of X-Forwarded-For: from an untrusted peer, a spoof.
  if (!ctx.trusted) {
    if (headers.forwarded !== undefined) delete headers.forwarded;
    if (headers['x-real-ip'] !== undefined) delete headers['x-real-ip'];
  }
  const priorFor = headers['x-forwarded-for'];
  headers['x-forwarded-for'] =
    ctx.trusted && priorFor !== undefined && priorFor !== '' ? `${String(priorFor)}, ${ctx.clientAddress}` : ctx.clientAddress;
  if (!(ctx.trusted && headers['x-forwarded-proto'] !== undefined)) headers['x-forwarded-proto'] = ctx.proto;
  if (!(ctx.trusted && headers['x-forwarded-host'] !== undefined)) {
    if (headers.host !== undefined) headers['x-forwarded-host'] = headers.host;
    else delete headers['x-forwarded-host'];
  }
}

/** Response-side removals: hop-by-hop plus Transfer-Encoding (Node re-frames the body itself). */
function isResponseHopByHop(lower: string): boolean {
  switch (lower.length) {
    case 2:
      return lower === 'te';
    case 7:
      return lower === 'upgrade' || lower === 'trailer';
    case 10:
      return lower === 'connection' || lower === 'keep-alive';
    case 16:
      return lower === 'proxy-connection';
    case 17:
      return lower === 'transfer-encoding';
    default:
      return false;
  }
}

/**
 * The backend's raw response headers ([name, value, name, value, …], original case and
 * duplicates kept — Set-Cookie survives) without hop-by-hop headers and the names that its
 * Connection header lists. A 1xx or 204 loses Content-Length too (RFC 9110 §8.6 forbids it
 * there): a lenient client further on could read that many bytes of the next response as a body.
 */
export function responseHeaders(raw: readonly string[], status: number): string[] {
  const noLength = status < 200 || status === 204;
  let listed: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      listed = listed === null ? connectionTokens(raw[i + 1]) : listed.concat(connectionTokens(raw[i + 1]));
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const lower = name.toLowerCase();
    if (isResponseHopByHop(lower) || (listed !== null && listed.includes(lower))) continue;
    if (noLength && lower === 'content-length') continue;
    out.push(name, raw[i + 1] as string);
  }
  return out;
}

/**
 * The headers of a backend's `101 Switching Protocols` for the client: hop-by-hop removed as for
 * any response, then `Connection: Upgrade` and the backend's `Upgrade` put back — for this one
 * response they are end-to-end, the client needs them to accept the switch.
 */
export function switchingProtocolsHeaders(raw: readonly string[], rules: HeaderRules | null = null): string[] {
  let upgrade = 'websocket';
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === 'upgrade') upgrade = raw[i + 1] as string;
  }
  return [...applyResponseRules(responseHeaders(raw, 101), rules), 'Connection', 'Upgrade', 'Upgrade', upgrade];
}
