/**
 * What a route does to an exchange besides choosing its pool (SPEC §10): strip its prefix, its
 * own response timeout and retry budget, header rules both ways, a body-size limit. Compiled once
 * per config generation from the route's config; applied per request without allocation beyond
 * the headers themselves. Pure: no sockets.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { routingPath } from '../core/path.js';

/** `set` replaces whatever a peer sent; `remove` drops it. Names are lower-case. */
export interface HeaderRules {
  readonly set: readonly (readonly [name: string, value: string])[];
  /** Lower-case names removed, and the names `set` replaces (so a peer's value never survives). */
  readonly drop: ReadonlySet<string>;
}

export interface RouteRules {
  /** The path_prefix to strip from the normalised path (null = forward the target as sent). */
  readonly stripPrefix: string | null;
  /** Overrides the pool's response_timeout (null = the pool's). */
  readonly responseTimeoutMs: number | null;
  /** Overrides the pool's retries (null = the pool's). */
  readonly retries: number | null;
  readonly requestHeaders: HeaderRules | null;
  readonly responseHeaders: HeaderRules | null;
  /** Request bodies larger than this are refused with 413; 0 = no limit. */
  readonly maxBodySize: number;
}

export const NO_RULES: RouteRules = Object.freeze({
  stripPrefix: null,
  responseTimeoutMs: null,
  retries: null,
  requestHeaders: null,
  responseHeaders: null,
  maxBodySize: 0,
});

export interface HeaderRulesInput {
  readonly set?: Readonly<Record<string, string>> | undefined;
  readonly remove?: readonly string[] | undefined;
}

export function compileHeaderRules(input: HeaderRulesInput | undefined): HeaderRules | null {
  if (input === undefined) return null;
  const set = Object.entries(input.set ?? {}).map(([name, value]) => [name.toLowerCase(), value] as const);
  const drop = new Set([...(input.remove ?? []).map((n) => n.toLowerCase()), ...set.map(([n]) => n)]);
  if (set.length === 0 && drop.size === 0) return null;
  return { set, drop };
}

/** Applies rules to a request's headers in place (after the proxy's own header handling). */
export function applyRequestRules(headers: IncomingHttpHeaders, rules: HeaderRules | null): void {
  if (rules === null) return;
  for (const name of rules.drop) {
    if (headers[name] !== undefined) delete headers[name];
  }
  for (const [name, value] of rules.set) headers[name] = value;
}

/** Applies rules to raw response headers (`[name, value, …]`): a new array when anything applies. */
export function applyResponseRules(raw: string[], rules: HeaderRules | null): string[] {
  if (rules === null) return raw;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (!rules.drop.has(name.toLowerCase())) out.push(name, raw[i + 1] as string);
  }
  for (const [name, value] of rules.set) out.push(name, value);
  return out;
}

/**
 * The target sent to the backend: as the client sent it, or with the route's prefix removed
 * from the normalised path (`/api/users?x=1` → `/users?x=1` for `/api/`), the query kept as sent.
 * A prefix ending in `/` keeps that `/` as the start of the new path.
 */
export function backendTarget(target: string, rules: RouteRules): string {
  const prefix = rules.stripPrefix;
  if (prefix === null) return target;
  // routingPath keeps the query when the path was already normal.
  const routed = routingPath(target);
  const end = routed.indexOf('?');
  const path = end === -1 ? routed : routed.slice(0, end);
  const q = target.indexOf('?');
  const query = q === -1 ? '' : target.slice(q);
  let rest = path.slice(prefix.endsWith('/') ? prefix.length - 1 : prefix.length);
  if (!rest.startsWith('/')) rest = `/${rest}`;
  return rest + query;
}
