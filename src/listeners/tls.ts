/**
 * TLS termination shared by http and tcp listeners: the options of the first context and of
 * every swap on reload, the handshake deadline, and what a failed handshake gets.
 */
import type { Socket } from 'node:net';
import { createSecureContext, type SecureContext, type SecureContextOptions, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { TlsMaterial } from '../config/schema.js';
import type { ErrorCode } from '../errors.js';
import { rawErrorResponse } from '../forward/respond.js';
import type { Logger } from '../log.js';

/** TLS 1.2 and newer only (SPEC §2); Node's default cipher list otherwise. */
export function secureContextOptions(material: { readonly cert: string; readonly key: string }): SecureContextOptions {
  return { cert: material.cert, key: material.key, minVersion: 'TLSv1.2' };
}

/**
 * A listener's certificates chosen by SNI (SPEC §10): an exact name first, then a wildcard
 * `*.example.com` for one label (`a.example.com`, not `a.b.example.com` nor `example.com`), and
 * the first certificate for an unknown name; a client without SNI gets the server's default
 * context, which is the first certificate too. Swapped whole on reload; handshakes under way
 * keep the context they were given.
 */
export class Certificates {
  #contexts = new Map<string, SecureContext>();
  #fallback: SecureContext | undefined;

  constructor(material: TlsMaterial) {
    this.update(material);
  }

  /** Takes the reloaded material; returns the default context's options for `setSecureContext`. */
  update(material: TlsMaterial): SecureContextOptions {
    const contexts = new Map<string, SecureContext>();
    let fallback: SecureContext | undefined;
    if (material.certificates.length > 1) {
      for (const certificate of material.certificates) {
        const context = createSecureContext(secureContextOptions(certificate));
        fallback ??= context;
        for (const name of certificate.names) contexts.set(name, context);
      }
    }
    this.#contexts = contexts;
    this.#fallback = fallback;
    return secureContextOptions(material);
  }

  /** Server options: the default certificate plus the SNI lookup. */
  serverOptions(material: TlsMaterial): SecureContextOptions & { SNICallback: Certificates['SNICallback'] } {
    return { ...secureContextOptions(material), SNICallback: this.SNICallback };
  }

  readonly SNICallback = (servername: string, callback: (err: Error | null, context?: SecureContext) => void): void => {
    callback(null, this.select(servername));
  };

  /** The context for a server name; undefined = the server's default (the first certificate). */
  select(servername: string): SecureContext | undefined {
    if (this.#fallback === undefined) return undefined;
    const name = servername.toLowerCase();
    const exact = this.#contexts.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    const wildcard = dot > 0 ? this.#contexts.get(`*${name.slice(dot)}`) : undefined;
    return wildcard ?? this.#fallback;
  }
}

/**
 * The handshake must complete within `header_timeout` (SPEC §5): a client that connects and
 * never sends a ClientHello, or stalls half-way, holds a socket like a slowloris does. Node's
 * default is 120 s; `0` (no header limit) keeps that default rather than no limit at all.
 */
export function handshakeTimeout(headerTimeoutMs: number): number | undefined {
  return headerTimeoutMs > 0 ? headerTimeoutMs : undefined;
}

/**
 * Reload: Node reads the handshake timeout from the server for each new connection, under a
 * symbol (`handshake-timeout`) it sets from the constructor option. Open connections keep theirs.
 */
export function setHandshakeTimeout(server: TlsServer, headerTimeoutMs: number): void {
  const key = Object.getOwnPropertySymbols(server).find((s) => s.description === 'handshake-timeout');
  if (key !== undefined) (server as unknown as Record<symbol, number>)[key] = handshakeTimeout(headerTimeoutMs) ?? 120_000;
}

/**
 * OpenSSL's verdicts on a first record that is not TLS: "GET "/"POST"/"HEAD"/"PUT " (http
 * request), "CONNECT" (https proxy request), anything else (wrong version number). NGINX
 * answers every non-TLS first byte with its "plain HTTP request was sent to HTTPS port" 400.
 */
const NOT_TLS = new Set(['ERR_SSL_HTTP_REQUEST', 'ERR_SSL_HTTPS_PROXY_REQUEST', 'ERR_SSL_WRONG_VERSION_NUMBER']);

const PLAIN_HTTP_BODY = Buffer.from('400 Bad Request: this port speaks HTTPS (TLS); the plain HTTP request was sent to an HTTPS port\n');
const PLAIN_HTTP_ANSWER = rawErrorResponse(400, 0, '', PLAIN_HTTP_BODY);

/**
 * A handshake that failed: logged at debug with its code, and the connection closed. On an
 * http listener, plain HTTP gets a readable plain-HTTP 400 first, written on the raw socket
 * under the TLS layer; a tcp listener has no protocol to answer in and just closes.
 */
export function onHandshakeError(err: NodeJS.ErrnoException, socket: TLSSocket, answerPlainHttp: boolean, logger: Logger): void {
  const code: ErrorCode | null = NOT_TLS.has(err.code ?? '')
    ? 'TLS_PLAIN_HTTP'
    : err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT' ? 'TLS_HANDSHAKE_TIMEOUT' : null;
  logger.debug({ code: code ?? undefined, err: err.code ?? err.message, client: socket.remoteAddress }, 'TLS handshake failed');
  const raw = (socket as TLSSocket & { _parent?: Socket | null })._parent;
  if (code !== 'TLS_PLAIN_HTTP' || !answerPlainHttp || raw == null || !raw.writable) {
    socket.destroy();
    return;
  }
  raw.on('error', () => raw.destroy());
  raw.end(PLAIN_HTTP_ANSWER, () => raw.destroy());
}
