/**
 * Strict input (SPEC §5): requests that could smuggle or confuse are refused before any backend
 * sees them. Pure: works on the parsed request head.
 *
 * Node's parser (llhttp, strict mode) already refuses CL+TE in either order, duplicate or
 * malformed Content-Length, obs-fold, bare CR/LF, NUL bytes, `chunked, identity`, doubled TE
 * lines and oversized heads — those never reach us (the listener's clientError answers them).
 * What it lets through, and this guard refuses: Transfer-Encoding other than exactly `chunked`
 * (`gzip, chunked`, `xchunked`), duplicate or malformed Host, absolute-form targets naming
 * another host, `*` outside OPTIONS, fragments, versions other than 1.0/1.1, header names that
 * alias a framing or forwarding header through `_`, and more headers than we forward (Node
 * would silently drop the excess).
 */
import type { ErrorCode } from '../errors.js';

export interface RequestHead {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  readonly httpVersionMajor: number;
  readonly httpVersionMinor: number;
  /** [name, value, name, value, …] as received. */
  readonly rawHeaders: readonly string[];
}

export interface Refusal {
  readonly code: Extract<ErrorCode, 'BAD_REQUEST' | 'HEADERS_TOO_LARGE' | 'VERSION_NOT_SUPPORTED' | 'METHOD_NOT_ALLOWED'>;
  /** For the log only; clients get the generic status text. */
  readonly reason: string;
}

/** More header lines than this is refused with 431 (HAProxy's default limit is 101). */
export const MAX_HEADER_COUNT = 256;

/** Names that, spelled with `_` instead of `-`, some backends (CGI, PHP, WSGI) treat as the real header. */
const ALIAS_TARGETS = new Set([
  'content-length', 'transfer-encoding', 'host', 'connection', 'upgrade', 'expect', 'te', 'trailer',
  'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host', 'x-real-ip', 'forwarded',
]);

/**
 * reg-name / IPv4 (a fully qualified name may end in a dot; the router ignores it) with optional
 * port, or a bracketed IPv6 literal with optional port.
 */
const HOST_VALUE = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._~-]*[A-Za-z0-9])?\.?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

function refuse(code: Refusal['code'], reason: string): Refusal {
  return { code, reason };
}

/**
 * The last Host value found well-formed: a site's requests name the same host over and over,
 * and an equal string (compared by content) needs no second look at the pattern.
 */
let lastGoodHost: string | null = null;

/** The verdict on a request head: null when it may be forwarded. */
export function checkRequest(head: RequestHead): Refusal | null {
  // HTTP/0.9 (no version, no headers) is malformed HTTP/1; a later major version spelled in
  // HTTP/1 syntax is well-formed but not ours to speak (llhttp already refused 1.2+ minors).
  if (head.httpVersionMajor === 0) return refuse('BAD_REQUEST', 'HTTP/0.9 request');
  if (head.httpVersionMajor !== 1 || (head.httpVersionMinor !== 0 && head.httpVersionMinor !== 1)) {
    return refuse('VERSION_NOT_SUPPORTED', `HTTP/${head.httpVersionMajor}.${head.httpVersionMinor}`);
  }
  const raw = head.rawHeaders;
  if (raw.length > MAX_HEADER_COUNT * 2) return refuse('HEADERS_TOO_LARGE', `more than ${MAX_HEADER_COUNT} header lines`);

  let host: string | undefined;
  let hostCount = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const len = name.length;
    if (len === 4 && name.toLowerCase() === 'host') {
      hostCount++;
      host = raw[i + 1];
    } else if (len === 17 && name.toLowerCase() === 'transfer-encoding') {
      // llhttp already refused a second TE line and TE together with Content-Length. HTTP/1.0
      // has no chunked framing: RFC 9112 §6.1 calls TE there faulty framing, a smuggling vector
      // through any hop that reads the body by Content-Length or to the close.
      if (head.httpVersionMinor === 0) return refuse('BAD_REQUEST', 'Transfer-Encoding in an HTTP/1.0 request');
      if ((raw[i + 1] as string).trim().toLowerCase() !== 'chunked') {
        return refuse('BAD_REQUEST', `Transfer-Encoding "${raw[i + 1]}" is not "chunked"`);
      }
    } else if (name.includes('_') && ALIAS_TARGETS.has(name.toLowerCase().replaceAll('_', '-'))) {
      return refuse('BAD_REQUEST', `header name ${name} aliases ${name.replaceAll('_', '-')}`);
    }
  }
  if (hostCount > 1) return refuse('BAD_REQUEST', 'duplicate Host');
  if (host === undefined) {
    if (head.httpVersionMinor === 1) return refuse('BAD_REQUEST', 'missing Host');
  } else if (host !== lastGoodHost) {
    if (!HOST_VALUE.test(host) || !portInRange(host)) return refuse('BAD_REQUEST', 'malformed Host');
    lastGoodHost = host;
  }
  return checkTarget(head.method, head.url ?? '', host);
}

/** The port of a Host value that passed HOST_VALUE, when it has one, is at most 65535. */
function portInRange(host: string): boolean {
  const colon = host.lastIndexOf(':');
  if (colon === -1 || host.endsWith(']')) return true;
  return Number(host.slice(colon + 1)) <= 65535;
}

function checkTarget(method: string | undefined, url: string, host: string | undefined): Refusal | null {
  if (url.includes('#')) return refuse('BAD_REQUEST', 'fragment in request target');
  if (url.charCodeAt(0) === 47 /* '/' */) return null;
  if (url === '*') return method === 'OPTIONS' ? null : refuse('BAD_REQUEST', '"*" target outside OPTIONS');
  const authority = absoluteFormAuthority(url);
  if (authority === null) return refuse('BAD_REQUEST', 'request target is not origin- or absolute-form');
  if (host === undefined || !sameAuthority(authority, host)) {
    return refuse('BAD_REQUEST', 'absolute-form target names another host than Host');
  }
  return null;
}

/** `http://Example.com:80/x?y` → `Example.com:80`; null when not absolute-form http(s). */
function absoluteFormAuthority(url: string): string | null {
  const match = /^https?:\/\/([^/?#]*)/i.exec(url);
  if (!match || match[1] === undefined || match[1] === '' || match[1].includes('@')) return null;
  return match[1];
}

function sameAuthority(a: string, b: string): boolean {
  return stripDefaultPort(a.toLowerCase()) === stripDefaultPort(b.toLowerCase());
}

function stripDefaultPort(authority: string): string {
  return authority.endsWith(':80') || authority.endsWith(':443') ? authority.slice(0, authority.lastIndexOf(':')) : authority;
}

/**
 * The origin-form target sent to the backend: absolute-form is reduced to path and query
 * (RFC 9112 §3.2.2: a server must accept it, a backend need not), `*` stays `*`.
 */
export function originForm(url: string): string {
  if (url.charCodeAt(0) === 47 || url === '*') return url;
  const match = /^https?:\/\/[^/?#]*(.*)$/i.exec(url);
  const rest = match?.[1] ?? '';
  return rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
}
