/**
 * HTTP/2 requests made to look like the HTTP/1.1 requests the forwarder sends on (SPEC §11), in
 * this one place.
 *
 * Node's compatibility API hands an HTTP/2 stream over as request/response objects shaped like
 * node:http's; http-proxy then copies `req.headers` into the upstream request as they are — and
 * HTTP/2 headers carry `:method`, `:path`, `:scheme` and `:authority`, which an HTTP/1 request
 * must not (node-http-proxy #1201, #1237: Node refuses the pseudo-header names). So the request
 * class the HTTP/2 server builds shows the forwarder HTTP/1.1 headers instead: no pseudo-headers,
 * `:authority` as `Host`, a body without a length announced as chunked (RFC 9113 §8.2.2 on
 * intermediaries). The response class takes the forwarder's HTTP/1 response heads: no reason
 * phrase (HTTP/2 has none), connection-specific headers dropped (RFC 9113 §8.2.2; headers.ts
 * already drops hop-by-hop ones, this catches what it does not know, like `HTTP2-Settings`).
 */
import { constants, Http2ServerRequest, Http2ServerResponse, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { checkRequest, type Refusal } from './guard.js';

const { NGHTTP2_INTERNAL_ERROR } = constants;

/** Header names that describe one HTTP/1 connection: never sent on an HTTP/2 stream. */
const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'http2-settings', 'te']);

/** An HTTP/2 request as the forwarder sees it: HTTP/1.1 headers, method and target captured. */
export class ProxiedH2Request extends Http2ServerRequest {
  #translated: IncomingHttpHeaders | null = null;
  /** Why the head cannot be forwarded as HTTP/1.1 (null: it can). Decided once, on first use. */
  #refusal: Refusal | null = null;
  /** RFC 9113 §6.5.2 size of the header list received. */
  #listSize = 0;

  /**
   * HTTP/1.1 headers for the backend, built once: pseudo-headers out, `:authority` as `Host`.
   * Mutable like node:http's (headers.ts rewrites them in place before forwarding). It is what
   * `headers` returns (installed on the prototype below: the base declares a property, not an accessor).
   */
  translatedHeaders(): IncomingHttpHeaders {
    this.#translated ??= this.#translate();
    return this.#translated;
  }

  /**
   * The verdict on this head; null = forward it. 431 past `maxHeaderSize` (the header list size
   * of RFC 9113 §6.5.2: names, values and 32 bytes a field — Node enforces the same limit only once
   * the client has acknowledged our SETTINGS, so it is checked here too), 400 for a `host` that is
   * not `:authority`, then the HTTP/1.1 guard's rules.
   */
  refusal(maxHeaderSize: number): Refusal | null {
    this.#translated ??= this.#translate();
    if (this.#listSize > maxHeaderSize) return { code: 'HEADERS_TOO_LARGE', reason: `header list of ${this.#listSize} bytes` };
    return this.#refusal;
  }

  #translate(): IncomingHttpHeaders {
    const original = BASE_HEADERS.call(this);
    const out: IncomingHttpHeaders = {};
    // rawHeaders keeps every field as received ([name, value, …]); duplicates matter for the guard.
    const raw = this.rawHeaders;
    const guardRaw: string[] = [];
    for (const name of Object.keys(original)) {
      if (name.charCodeAt(0) === 58 /* ':' */) continue;
      out[name] = original[name] as string | string[];
    }
    let listSize = 0;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string;
      const value = raw[i + 1] as string;
      listSize += name.length + value.length + 32;
      if (name.charCodeAt(0) !== 58 && name !== 'host') guardRaw.push(name, value);
    }
    this.#listSize = listSize;
    const authority = original[':authority'];
    const host = original.host;
    if (this.method === 'CONNECT') {
      // Plain CONNECT is valid HTTP/2, but we proxy no tunnels by it (as on HTTP/1.1).
      this.#refusal = { code: 'METHOD_NOT_ALLOWED', reason: 'CONNECT' };
    } else if (authority !== undefined && host !== undefined && host !== authority) {
      this.#refusal = { code: 'BAD_REQUEST', reason: 'host header differs from :authority' };
    } else if (Array.isArray(host)) {
      this.#refusal = { code: 'BAD_REQUEST', reason: 'duplicate host' };
    }
    const hostValue = authority ?? host;
    if (hostValue !== undefined) {
      out.host = hostValue;
      guardRaw.push('host', hostValue);
    }
    // A body whose length the client did not announce (DATA frames after a HEADERS without
    // END_STREAM) goes to the backend chunked; the guard sees the same framing the backend will.
    if (!this.stream.endAfterHeaders && out['content-length'] === undefined) {
      out['transfer-encoding'] = 'chunked';
      guardRaw.push('transfer-encoding', 'chunked');
    }
    this.#refusal ??= checkRequest({ method: this.method, url: this.url, httpVersionMajor: 1, httpVersionMinor: 1, rawHeaders: guardRaw });
    return out;
  }
}

const BASE_HEADERS = Object.getOwnPropertyDescriptor(Http2ServerRequest.prototype, 'headers')?.get as (this: Http2ServerRequest) => IncomingHttpHeaders;
if (BASE_HEADERS === undefined) throw new Error('node:http2 Http2ServerRequest has no headers accessor');
Object.defineProperty(ProxiedH2Request.prototype, 'headers', {
  configurable: true,
  get(this: ProxiedH2Request): IncomingHttpHeaders {
    return this.translatedHeaders();
  },
});

/** The response side: HTTP/1 response heads from the forwarder written as HTTP/2 ones. */
export class ProxiedH2Response extends Http2ServerResponse<ProxiedH2Request> {
  /** Set when the proxy reset the stream itself (a backend failed mid-body): not the client's reset. */
  resetByProxy = false;

  /** The stream is reset with INTERNAL_ERROR (not CANCEL): the client must not take a cut-short body for a complete one. */
  override destroy(err?: Error): this {
    this.resetByProxy = true;
    const stream = this.stream;
    if (!stream.closed && !stream.destroyed) stream.close(NGHTTP2_INTERNAL_ERROR);
    return super.destroy(err);
  }

  /**
   * `[name, value, …]` (raw headers: Node 20+ takes them here too, duplicates such as Set-Cookie
   * kept) or an object, as node:http takes them; the reason phrase is dropped (HTTP/2 has none).
   */
  override writeHead(statusCode: number, statusMessage?: string | OutgoingHttpHeaders | readonly string[], headers?: OutgoingHttpHeaders | readonly string[]): this {
    const given = typeof statusMessage === 'string' ? headers : statusMessage;
    if (Array.isArray(given)) {
      const kept: string[] = [];
      for (let i = 0; i < given.length; i += 2) {
        const name = given[i] as string;
        if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) kept.push(name, given[i + 1] as string);
      }
      return super.writeHead(statusCode, kept as unknown as OutgoingHttpHeaders);
    }
    if (given === undefined) return super.writeHead(statusCode);
    const kept: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(given as OutgoingHttpHeaders)) {
      if (!CONNECTION_SPECIFIC.has(name.toLowerCase())) kept[name] = value;
    }
    return super.writeHead(statusCode, kept);
  }
}
