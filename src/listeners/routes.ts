/**
 * A listener's routes compiled for the router: each one forwards to a pool with its rules
 * (strip_prefix, timeouts, header rules, body limit) or answers with a redirect (SPEC §10).
 */
import type { ListenerConfig } from '../config/schema.js';
import type { Redirect } from '../forward/redirect.js';
import { compileHeaderRules, NO_RULES, type RouteRules } from '../forward/route-rules.js';
import type { PoolRuntime } from '../upstream/pool-runtime.js';

export type CompiledRoute =
  | { readonly pool: PoolRuntime; readonly redirect: null; readonly rules: RouteRules }
  | { readonly pool: null; readonly redirect: Redirect; readonly rules: RouteRules };

type RouteConfig = NonNullable<ListenerConfig['routes']>[number];

/** A route as configured, or a listener's single `pool` (which has no rules of its own). */
export function compileRoute(route: Partial<RouteConfig>, listener: ListenerConfig, pools: ReadonlyMap<string, PoolRuntime>): CompiledRoute {
  const rules = compileRules(route, listener);
  if (route.redirect !== undefined) return { pool: null, redirect: { base: route.redirect.to, code: route.redirect.code }, rules };
  const pool = route.pool === undefined ? undefined : pools.get(route.pool);
  if (pool === undefined) throw new Error(`listener ${listener.name}: unknown pool ${route.pool ?? '(none)'}`);
  return { pool, redirect: null, rules };
}

function compileRules(route: Partial<RouteConfig>, listener: ListenerConfig): RouteRules {
  const rules: RouteRules = {
    stripPrefix: route.strip_prefix === true && route.path_prefix !== undefined ? route.path_prefix : null,
    responseTimeoutMs: route.response_timeout ?? null,
    retries: route.retries ?? null,
    requestHeaders: compileHeaderRules(route.request_headers),
    responseHeaders: compileHeaderRules(route.response_headers),
    maxBodySize: route.max_body_size ?? listener.max_body_size,
  };
  const plain =
    rules.stripPrefix === null && rules.responseTimeoutMs === null && rules.retries === null &&
    rules.requestHeaders === null && rules.responseHeaders === null && rules.maxBodySize === 0;
  // The common route shares one frozen object: the forwarders skip all rule work for it.
  return plain ? NO_RULES : rules;
}
