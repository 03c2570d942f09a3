/**
 * Rules that span several keys: names, pool references, listener shapes, address conflicts,
 * the admin token, unreachable routes. They run on the plain YAML value, before or despite
 * schema errors, and skip whatever has the wrong shape (the schema reports that), so one run
 * reports every problem of the file.
 */
import { isIP } from 'node:net';
import { DEFAULTS } from './schema.js';
import type { PathSegment, PendingIssue } from './issues.js';
import type { Locator } from './locate.js';
import { closestKey } from './suggest.js';
import { parseHostPort, type HostPort } from './units.js';

type Env = Readonly<Record<string, string | undefined>>;
type Obj = Readonly<Record<string, unknown>>;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);
const list = (value: unknown): readonly unknown[] => (Array.isArray(value) ? value : []);
const text = (value: unknown): string | undefined => (typeof value === 'string' ? value : undefined);

/** Every cross-key rule; `env` is where `admin.token_env` is looked up. */
export function crossCheck(raw: unknown, locator: Locator, env: Env): PendingIssue[] {
  if (!isObj(raw)) return [];
  const line = (path: readonly PathSegment[]): number => locator.locate(path).line;
  return [
    ...checkListeners(raw, line),
    ...checkPools(raw, line, env),
    ...checkAddresses(raw, locator),
    ...checkAdmin(raw, env),
  ];
}

/** Issues for every name after the first one equal to it. */
function duplicates(
  names: readonly (string | undefined)[],
  path: (index: number) => PathSegment[],
  what: string,
  line: (path: readonly PathSegment[]) => number,
): PendingIssue[] {
  const first = new Map<string, number>();
  const issues: PendingIssue[] = [];
  names.forEach((name, index) => {
    if (name === undefined) return;
    const earlier = first.get(name);
    if (earlier === undefined) first.set(name, index);
    else issues.push({ path: path(index), message: `duplicate ${what} name "${name}" (first at line ${line(path(earlier))})` });
  });
  return issues;
}

function checkListeners(raw: Obj, line: (path: readonly PathSegment[]) => number): PendingIssue[] {
  const listeners = list(raw['listeners']);
  const pools = isObj(raw['pools']) ? raw['pools'] : undefined;
  const issues = duplicates(
    listeners.map((l) => (isObj(l) ? text(l['name']) : undefined)),
    (i) => ['listeners', i, 'name'],
    'listener',
    line,
  );
  const poolRef = (path: PathSegment[], value: unknown): void => {
    const name = text(value);
    if (name === undefined || !pools || Object.hasOwn(pools, name)) return;
    const near = closestKey(name, Object.keys(pools));
    issues.push({ path, message: near === undefined ? `unknown pool "${name}"` : `unknown pool "${name}"; did you mean "${near}"?` });
  };

  listeners.forEach((listener, i) => {
    if (!isObj(listener)) return;
    const at = ['listeners', i];
    const hasRoutes = listener['routes'] !== undefined;
    const hasPool = listener['pool'] !== undefined;
    const protocol = listener['protocol'] ?? DEFAULTS.listener.protocol;
    if (listener['http2'] === true && protocol === 'http' && listener['tls'] === undefined) {
      issues.push({ path: [...at, 'http2'], message: 'HTTP/2 is offered on TLS listeners only (by ALPN); h2c on plain TCP is not: add "tls" or remove "http2"' });
    } else if (listener['http2'] !== undefined && protocol === 'tcp') {
      issues.push({ path: [...at, 'http2'], message: 'applies to http listeners only' });
    }
    const redirects = listener['redirect_https'] === true;
    if (redirects) {
      // Every request is answered with a redirect: a pool or routes would never be used.
      if (protocol === 'tcp') issues.push({ path: [...at, 'redirect_https'], message: 'only http listeners redirect' });
      else if (hasRoutes) issues.push({ path: [...at, 'routes'], message: 'a redirect_https listener answers every request itself: it takes no routes' });
      else if (hasPool) issues.push({ path: [...at, 'pool'], message: 'a redirect_https listener answers every request itself: it takes no pool' });
    } else if (protocol === 'http') {
      if (hasRoutes && hasPool) {
        issues.push({ path: [...at, 'pool'], message: 'an http listener takes either "routes" or "pool", not both' });
      } else if (!hasRoutes && !hasPool) {
        issues.push({ path: at, message: 'an http listener needs "routes" or "pool"' });
      }
    } else if (protocol === 'tcp') {
      if (hasRoutes) issues.push({ path: [...at, 'routes'], message: 'a tcp listener has no routes: name one "pool" instead' });
      if (!hasPool) issues.push({ path: [...at, 'pool'], message: 'required for a tcp listener' });
    }
    if (protocol === 'tcp' && listener['max_body_size'] !== undefined) {
      // A tunnel has no request body to measure: the key would be silently ignored.
      issues.push({ path: [...at, 'max_body_size'], message: 'applies to http listeners only (a tcp tunnel has no request bodies)' });
    }
    if (listener['proxy_protocol'] === true && list(listener['trusted_proxies']).length === 0) {
      issues.push({ path: [...at, 'proxy_protocol'], message: 'needs trusted_proxies: the peers allowed to send the PROXY header (every other connection is closed)' });
    }
    poolRef([...at, 'pool'], listener['pool']);
    list(listener['routes']).forEach((route, j) => {
      if (!isObj(route)) return;
      poolRef([...at, 'routes', j, 'pool'], route['pool']);
      issues.push(...checkRoute(route, [...at, 'routes', j]));
    });
    issues.push(...unreachableRoutes(list(listener['routes']), at, line));
  });
  return issues;
}

/** Keys that only mean something when a route forwards to a pool. */
const FORWARDING_KEYS = ['strip_prefix', 'response_timeout', 'retries', 'request_headers', 'max_body_size'] as const;

/** A route forwards to a pool or redirects, never both; strip_prefix needs a prefix to strip. */
function checkRoute(route: Obj, at: PathSegment[]): PendingIssue[] {
  const issues: PendingIssue[] = [];
  const hasPool = route['pool'] !== undefined;
  const hasRedirect = route['redirect'] !== undefined;
  if (hasPool && hasRedirect) issues.push({ path: [...at, 'redirect'], message: 'a route takes either "pool" or "redirect", not both' });
  else if (!hasPool && !hasRedirect) issues.push({ path: at, message: 'a route needs "pool" or "redirect"' });
  if (route['strip_prefix'] === true && route['path_prefix'] === undefined) {
    issues.push({ path: [...at, 'strip_prefix'], message: 'needs a path_prefix to strip' });
  }
  if (hasRedirect && !hasPool) {
    for (const key of FORWARDING_KEYS) {
      if (route[key] !== undefined) issues.push({ path: [...at, key], message: 'a redirect route forwards nothing: this key does not apply' });
    }
  }
  return issues;
}

/**
 * A route is unreachable when an earlier route matches every request it would: the earlier
 * one has no host (or the same host) and the same path prefix, or is a catch-all (no host, no
 * prefix or prefix `/`).
 */
function unreachableRoutes(routes: readonly unknown[], at: PathSegment[], line: (path: readonly PathSegment[]) => number): PendingIssue[] {
  const issues: PendingIssue[] = [];
  const seen: { index: number; host: string | undefined; prefix: string }[] = [];
  routes.forEach((route, j) => {
    if (!isObj(route)) return;
    const { host: hostValue, path_prefix: prefixValue } = route;
    if (![hostValue, prefixValue].every((v) => v === undefined || typeof v === 'string')) return;
    const host = text(hostValue)?.toLowerCase();
    const prefix = text(prefixValue) ?? '/';
    const shadow = seen.find((e) => e.host === undefined && (e.prefix === '/' || e.prefix === prefix))
      ?? seen.find((e) => e.host === host && e.prefix === prefix);
    if (shadow) {
      const where = `routes[${shadow.index}] (line ${line([...at, 'routes', shadow.index])})`;
      const why = shadow.host === undefined && shadow.prefix === '/' ? 'is a catch-all' : 'already matches every request it would';
      issues.push({ path: [...at, 'routes', j], message: `unreachable: ${where} above it ${why}` });
    }
    seen.push({ index: j, host, prefix });
  });
  return issues;
}

function checkPools(raw: Obj, line: (path: readonly PathSegment[]) => number, env: Env): PendingIssue[] {
  const pools = raw['pools'];
  if (!isObj(pools)) return [];
  const issues: PendingIssue[] = [];
  for (const [name, pool] of Object.entries(pools)) {
    if (!isObj(pool)) continue;
    const backends = list(pool['backends']);
    issues.push(
      ...duplicates(
        backends.map((b) => (isObj(b) ? text(b['name']) : undefined)),
        (j) => ['pools', name, 'backends', j, 'name'],
        'backend',
        line,
      ),
    );
    // Discover entries count as backends here: what their answers hold is not known before run time.
    const discover = list(pool['discover']);
    if (backends.length === 0 && discover.length === 0 && (pool['backends'] === undefined || Array.isArray(pool['backends']))) {
      issues.push({ path: ['pools', name, 'backends'], message: 'a pool needs at least one backend or a discover entry' });
    }
    const roles = [...backends, ...discover].map((b) => (isObj(b) ? (b['role'] ?? DEFAULTS.backend.role) : undefined));
    const rolesValid = roles.every((role) => role === 'hot' || role === 'warm');
    if (roles.length > 0 && rolesValid && !roles.includes('hot')) {
      issues.push({ path: ['pools', name, 'backends'], message: 'a pool needs at least one hot backend (all are warm)' });
    }
    const sticky = pool['sticky'];
    const secretEnv = isObj(sticky) ? sticky['secret_env'] : undefined;
    if (typeof secretEnv === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(secretEnv)) {
      const value = env[secretEnv];
      const at = ['pools', name, 'sticky', 'secret_env'];
      if (value === undefined) issues.push({ path: at, message: `environment variable ${secretEnv} is not set` });
      else if (value.trim() === '') issues.push({ path: at, message: `environment variable ${secretEnv} is empty` });
    }
    const check = pool['health_check'];
    if (isObj(check) && (check['protocol'] ?? DEFAULTS.health_check.protocol) === 'http' && check['path'] === undefined) {
      issues.push({ path: ['pools', name, 'health_check', 'path'], message: 'required for http health checks' });
    }
  }
  return issues;
}

interface Bound {
  readonly label: string;
  readonly path: PathSegment[];
  readonly text: string;
  readonly address: HostPort;
  readonly host: string;
}

/** Lower-cased host, IPv6 in canonical form (`0:0::1` → `::1`). */
function normalHost(host: string): string {
  if (isIP(host) === 6) return new URL(`http://[${host}]/`).hostname.slice(1, -1);
  return host.toLowerCase();
}

const WILDCARDS = new Set(['0.0.0.0', '::']);
const LOCALHOST = new Set(['localhost', '127.0.0.1', '::1']);

/** Whether two listen addresses would fight over a port (port 0 is ephemeral: never). */
function overlaps(a: Bound, b: Bound): boolean {
  if (a.address.port === 0 || a.address.port !== b.address.port) return false;
  if (a.host === b.host || WILDCARDS.has(a.host) || WILDCARDS.has(b.host)) return true;
  // `localhost` binds whichever of 127.0.0.1 / ::1 it resolves to first.
  return (a.host === 'localhost' || b.host === 'localhost') && LOCALHOST.has(a.host) && LOCALHOST.has(b.host);
}

function checkAddresses(raw: Obj, locator: Locator): PendingIssue[] {
  const bound: Bound[] = [];
  const add = (label: string, path: PathSegment[], value: unknown): void => {
    const parsed = typeof value === 'string' ? parseHostPort(value, 0) : undefined;
    if (parsed?.ok) bound.push({ label, path, text: value as string, address: parsed.value, host: normalHost(parsed.value.host) });
  };
  list(raw['listeners']).forEach((listener, i) => {
    if (isObj(listener)) add(`listener "${text(listener['name']) ?? i}"`, ['listeners', i, 'listen'], listener['listen']);
  });
  const admin = raw['admin'];
  if (isObj(admin)) add('admin', ['admin', 'listen'], admin['listen']);

  const issues: PendingIssue[] = [];
  const reported = new Set<Bound>();
  const offset = (b: Bound): number => locator.locate(b.path).offset;
  for (let i = 0; i < bound.length; i++) {
    for (let j = i + 1; j < bound.length; j++) {
      const [first, second] = [bound[i] as Bound, bound[j] as Bound].sort((a, b) => offset(a) - offset(b)) as [Bound, Bound];
      if (reported.has(second) || !overlaps(first, second)) continue;
      reported.add(second);
      const line = locator.locate(first.path).line;
      issues.push({ path: second.path, message: `${second.text} conflicts with ${first.label} on ${first.text} (line ${line})` });
    }
  }
  return issues;
}

function isLoopback(host: string): boolean {
  const h = normalHost(host);
  if (h === 'localhost' || h === '::1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

function checkAdmin(raw: Obj, env: Env): PendingIssue[] {
  const admin = raw['admin'];
  if (!isObj(admin)) return [];
  const tokenEnv = admin['token_env'];
  if (tokenEnv === undefined) {
    const listen = typeof admin['listen'] === 'string' ? parseHostPort(admin['listen'], 0) : undefined;
    if (listen?.ok && !isLoopback(listen.value.host)) {
      return [{ path: ['admin', 'token_env'], message: 'required when admin.listen is not a loopback address' }];
    }
    return [];
  }
  if (typeof tokenEnv !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) return [];
  const value = env[tokenEnv];
  if (value === undefined) return [{ path: ['admin', 'token_env'], message: `environment variable ${tokenEnv} is not set` }];
  if (value.trim() === '') return [{ path: ['admin', 'token_env'], message: `environment variable ${tokenEnv} is empty` }];
  return [];
}
