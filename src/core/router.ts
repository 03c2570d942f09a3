/**
 * A listener's compiled route table (SPEC §2 `routes`): first match wins. Hosts match exactly
 * or by `*.example.com` (any depth of subdomain, not the bare domain); path prefixes match the
 * start of the request path in its normal form ({@link routingPath}: `/%61dmin/../admin//x` is
 * `/admin/x`), case-sensitively, without the query.
 */
import { routingPath } from './path.js';


export interface RouteRule<T> {
  /** Lower-case exact host or `*.suffix`; undefined = any host. */
  readonly host?: string | undefined;
  /**
   * A path in normal form without `?` (config validation ensures both): a prefix in another
   * spelling never matches, and one with `?` could match into the query.
   */
  readonly pathPrefix?: string | undefined;
  readonly target: T;
}

interface CompiledRule<T> {
  readonly exact: string | null;
  /** `.example.com` for `*.example.com`. */
  readonly suffix: string | null;
  readonly pathPrefix: string | null;
  readonly target: T;
}

export class RouteTable<T> {
  readonly #rules: readonly CompiledRule<T>[];
  /** A table whose first rule matches everything needs no host or path work per request. */
  readonly #catchAll: T | null;

  constructor(rules: readonly RouteRule<T>[]) {
    this.#rules = rules.map((r) => {
      const host = r.host?.toLowerCase() ?? null;
      const wildcard = host !== null && host.startsWith('*.');
      return {
        exact: wildcard ? null : host,
        suffix: wildcard ? (host as string).slice(1) : null,
        pathPrefix: r.pathPrefix ?? null,
        target: r.target,
      };
    });
    const first = this.#rules[0];
    this.#catchAll = first && !first.exact && !first.suffix && !first.pathPrefix ? first.target : null;
  }

  /**
   * `hostHeader` as sent (may carry a port, any case); `target` is the origin-form request
   * target as sent (path and query), normalised here only when a path prefix is to be compared.
   */
  match(hostHeader: string | undefined, target: string): T | null {
    if (this.#catchAll !== null) return this.#catchAll;
    const host = hostHeader === undefined ? '' : normalizeHost(hostHeader);
    let path: string | null = null;
    for (const rule of this.#rules) {
      if (rule.exact !== null && rule.exact !== host) continue;
      if (rule.suffix !== null && !(host.endsWith(rule.suffix) && host.length > rule.suffix.length)) continue;
      if (rule.pathPrefix !== null && !(path ??= routingPath(target)).startsWith(rule.pathPrefix)) continue;
      return rule.target;
    }
    return null;
  }
}

/** `Example.COM:8080` → `example.com`; `[::1]:80` → `[::1]`; a trailing dot is dropped. */
export function normalizeHost(hostHeader: string): string {
  let host = hostHeader.toLowerCase();
  if (host.startsWith('[')) {
    const close = host.indexOf(']');
    return close === -1 ? host : host.slice(0, close + 1);
  }
  const colon = host.lastIndexOf(':');
  if (colon !== -1) host = host.slice(0, colon);
  return host.endsWith('.') ? host.slice(0, -1) : host;
}
