/**
 * What a reload changes (SPEC §6): PURE `(old, new) → ReloadPlan`, no I/O.
 *
 * Listeners, pools and backends are matched by name. A backend whose address or role changes
 * is a new backend under an old name (`replaced`): the old one drains, the new one starts
 * unknown. A listener whose address, protocol or TLS-ness changes must be bound anew
 * (`rebound`); any other listener change is applied to the bound socket (`updated`).
 * Every setting that differs is listed with its old and new value as an operator writes it,
 * so the same plan drives the apply step and the `reload` event's summary.
 */
import type { BackendConfig, Config, ListenerConfig, PoolConfig } from './schema.js';
import * as CLASSES from './key-classes.js';

/** One changed key: dotted path below its owner, values shown as in proxy.yaml. */
export interface SettingChange {
  readonly key: string;
  readonly from: string;
  readonly to: string;
}

/** A listener (or backend) and what changed in it. */
export interface NamedChange {
  readonly name: string;
  readonly changes: readonly SettingChange[];
}

export interface PoolChange {
  readonly name: string;
  /** Pool settings (timeouts, checks, failover policy…), backends excluded. */
  readonly settings: readonly SettingChange[];
  readonly backends: {
    /** Same name, address and role: the running backend is kept with its state; `changes` may be empty. */
    readonly kept: readonly NamedChange[];
    readonly added: readonly string[];
    readonly removed: readonly string[];
    /** Same name, new address or role: a new backend; the old one drains. */
    readonly replaced: readonly NamedChange[];
  };
  /** The backends' config order changed (it decides which warm is promoted first). */
  readonly reordered: boolean;
}

export interface ReloadPlan {
  readonly listeners: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    /** Address, protocol or TLS-ness changed: the new address is bound, the old socket drains. */
    readonly rebound: readonly NamedChange[];
    /** Routes, limits, timeouts, trust, certificates: applied to the bound socket. */
    readonly updated: readonly NamedChange[];
  };
  readonly pools: {
    readonly added: readonly string[];
    readonly removed: readonly string[];
    /** Kept pools with at least one change. */
    readonly updated: readonly PoolChange[];
  };
  /** Top-level settings: shutdown_timeout, log, admin. */
  readonly settings: readonly SettingChange[];
  /** Whether anything at all differs. */
  readonly changed: boolean;
  /** One short line per change, for the `reload` event and the reload result. */
  readonly summary: readonly string[];
}

export function diffConfig(old: Config, next: Config): ReloadPlan {
  const listeners = diffListeners(old.listeners, next.listeners);
  const pools = diffPools(old.pools, next.pools);
  const settings = settingChanges(old, next, TOP_LEVEL_SKIP);
  const summary = [
    ...settings.map((c) => (AT_NEXT_START.some((k) => c.key === k || c.key.startsWith(`${k}.`)) ? `${line('')(c)} (applies at the next start)` : line('')(c))),
    ...listeners.added.map((name) => `listener ${name} added (${describeListener(find(next.listeners, name))})`),
    ...listeners.removed.map((name) => `listener ${name} removed`),
    ...listeners.rebound.map((l) => `listener ${l.name} rebound: ${l.changes.map(show).join(', ')}`),
    ...listeners.updated.flatMap((l) => l.changes.map(line(`listener ${l.name}: `))),
    ...pools.added.map((name) => `pool ${name} added (${plural(next.pools[name]?.backends.length ?? 0, 'backend')})`),
    ...pools.removed.map((name) => `pool ${name} removed`),
    ...pools.updated.flatMap((p) => poolSummary(p, next.pools[p.name] as PoolConfig)),
  ];
  return { listeners, pools, settings, changed: summary.length > 0, summary };
}

// The key classes come from the schema's annotations (`reload` in schema.ts), written out by
// `npm run docs` as key-classes.ts so that a worker diffing a reload never loads the schema.

/**
 * Top-level settings read at startup only (`reload: 'restart'`): the admin listener and its token
 * (they guard the reload itself), the log's format and file (the open log file is the
 * process's), the process layout. Paths of top-level keys and of the keys inside their mappings.
 */
const AT_NEXT_START: readonly string[] = CLASSES.AT_NEXT_START;

/** Keys of the root that are not settings (compared on their own) or not comparable. */
const TOP_LEVEL_SKIP: ReadonlySet<string> = new Set(['listeners', 'pools', 'file', 'source']);
/** The names that match old and new (`reload: 'name'`). */
const LISTENER_SKIP: ReadonlySet<string> = new Set(CLASSES.LISTENER_NAME);
const POOL_SKIP: ReadonlySet<string> = new Set(['backends']);
const BACKEND_SKIP: ReadonlySet<string> = new Set(CLASSES.BACKEND_NAME);
/** Keys whose change means a new socket (`reload: 'rebind'`): the bound address and what is spoken on it (ALPN is fixed when the server is made). */
const BINDING_KEYS: ReadonlySet<string> = new Set(CLASSES.LISTENER_BINDING);
/** Keys whose change makes a backend a different backend (`reload: 'replace'`). */
const IDENTITY_KEYS: ReadonlySet<string> = new Set(CLASSES.BACKEND_IDENTITY);

function diffListeners(old: readonly ListenerConfig[], next: readonly ListenerConfig[]): ReloadPlan['listeners'] {
  const before = new Map(old.map((l) => [l.name, l]));
  const added: string[] = [];
  const rebound: NamedChange[] = [];
  const updated: NamedChange[] = [];
  for (const listener of next) {
    const prev = before.get(listener.name);
    if (prev === undefined) {
      added.push(listener.name);
      continue;
    }
    const changes = settingChanges(prev, listener, LISTENER_SKIP);
    if (changes.length === 0) continue;
    // `tls` itself changes only when TLS is turned on or off; a new certificate is `tls.cert`.
    (changes.some((c) => BINDING_KEYS.has(c.key)) ? rebound : updated).push({ name: listener.name, changes });
  }
  const names = new Set(next.map((l) => l.name));
  const removed = old.filter((l) => !names.has(l.name)).map((l) => l.name);
  return { added, removed, rebound, updated };
}

function diffPools(old: Config['pools'], next: Config['pools']): ReloadPlan['pools'] {
  const added: string[] = [];
  const updated: PoolChange[] = [];
  for (const [name, pool] of Object.entries(next)) {
    const prev = old[name];
    if (prev === undefined) {
      added.push(name);
      continue;
    }
    const change = diffPool(name, prev, pool);
    const { kept, added: newBackends, removed, replaced } = change.backends;
    const touched = change.settings.length + newBackends.length + removed.length + replaced.length > 0;
    if (touched || change.reordered || kept.some((b) => b.changes.length > 0)) updated.push(change);
  }
  const removed = Object.keys(old).filter((name) => !Object.hasOwn(next, name));
  return { added, removed, updated };
}

function diffPool(name: string, old: PoolConfig, next: PoolConfig): PoolChange {
  const before = new Map(old.backends.map((b) => [b.name, b]));
  const kept: NamedChange[] = [];
  const added: string[] = [];
  const replaced: NamedChange[] = [];
  for (const backend of next.backends) {
    const prev = before.get(backend.name);
    if (prev === undefined) {
      added.push(backend.name);
      continue;
    }
    const changes = settingChanges(prev, backend, BACKEND_SKIP);
    (changes.some((c) => IDENTITY_KEYS.has(c.key)) ? replaced : kept).push({ name: backend.name, changes });
  }
  const names = new Set(next.backends.map((b) => b.name));
  const removed = old.backends.filter((b) => !names.has(b.name)).map((b) => b.name);
  // Order among the backends present in both lists: additions and removals are not reorders.
  const oldOrder = old.backends.map((b) => b.name).filter((n) => names.has(n));
  const newOrder = next.backends.map((b) => b.name).filter((n) => before.has(n));
  const reordered = oldOrder.some((n, i) => n !== newOrder[i]);
  return { name, settings: settingChanges(old, next, POOL_SKIP), backends: { kept, added, removed, replaced }, reordered };
}

function poolSummary(change: PoolChange, pool: PoolConfig): string[] {
  const at = `pool ${change.name}: `;
  const backend = (name: string): BackendConfig => find(pool.backends, name);
  return [
    ...change.settings.map(line(at)),
    ...change.backends.added.map((name) => `${at}backend ${name} added (${describeBackend(backend(name))})`),
    ...change.backends.removed.map((name) => `${at}backend ${name} removed`),
    ...change.backends.replaced.map((b) => `${at}backend ${b.name} replaced (${b.changes.map(show).join(', ')})`),
    ...change.backends.kept.flatMap((b) => b.changes.map(line(`${at}backend ${b.name} `))),
    ...(change.reordered ? [`${at}backend order changed`] : []),
  ];
}

// ---------------------------------------------------------------------------------------------
// Settings: a walk over two config objects that lists every leaf that differs.

/** Object-valued keys compared and shown as one value rather than walked into. */
const WHOLE: ReadonlySet<string> = new Set(['listen', 'address', 'expect_status', 'warmup', 'routes', 'trusted_proxies']);

type Obj = Readonly<Record<string, unknown>>;

const isObj = (value: unknown): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

/**
 * Every leaf that differs between `a` and `b` (keys in `skip` left out), in `b`'s key order.
 * Nested mappings are walked (`health_check.interval`); a mapping present on one side only
 * is compared against an empty one, so each of its keys is listed.
 */
function settingChanges(a: object | undefined, b: object | undefined, skip: ReadonlySet<string>, prefix = ''): SettingChange[] {
  const left = (a ?? {}) as Obj;
  const right = (b ?? {}) as Obj;
  const keys = [...new Set([...Object.keys(right), ...Object.keys(left)])].filter((k) => !skip.has(k));
  const out: SettingChange[] = [];
  for (const key of keys) {
    const path = prefix === '' ? key : `${prefix}.${key}`;
    const from = left[key];
    const to = right[key];
    if (key === 'tls') {
      out.push(...tlsChanges(from as TlsLike | undefined, to as TlsLike | undefined));
    } else if ((isObj(from) || isObj(to)) && !WHOLE.has(key)) {
      out.push(...settingChanges(from as object | undefined, to as object | undefined, skip, path));
    } else if (!deepEqual(from, to)) {
      out.push({ key: path, from: display(key, from), to: display(key, to) });
    }
  }
  return out;
}

interface TlsLike {
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  readonly certificates?: readonly Omit<TlsLike, 'certificates'>[];
}

/**
 * TLS is shown by file, never by content. Turning it on or off is one change (`tls: off → on`);
 * a rotated certificate at the same path shows as `(new content)`.
 */
function tlsChanges(from: TlsLike | undefined, to: TlsLike | undefined): SettingChange[] {
  if (from === undefined && to === undefined) return [];
  if (from === undefined || to === undefined) {
    return [{ key: 'tls', from: from === undefined ? 'off' : 'on', to: to === undefined ? 'off' : 'on' }];
  }
  const out: SettingChange[] = [];
  const file = (key: 'cert' | 'key', path: 'certFile' | 'keyFile'): void => {
    if (from[path] === to[path] && from[key] === to[key]) return;
    out.push({ key: `tls.${key}`, from: from[path], to: from[path] === to[path] ? `${to[path]} (new content)` : to[path] });
  };
  file('cert', 'certFile');
  file('key', 'keyFile');
  // The SNI certificates past the first (the first is shown as tls.cert / tls.key above).
  const rest = (t: TlsLike) => (t.certificates ?? []).slice(1);
  const [a, b] = [rest(from), rest(to)];
  const same = a.length === b.length && a.every((c, i) => c.certFile === b[i]?.certFile && c.keyFile === b[i]?.keyFile && c.cert === b[i]?.cert && c.key === b[i]?.key);
  if (!same) {
    const files = (list: typeof a): string => (list.length === 0 ? 'none' : list.map((c) => c.certFile).join(', '));
    const content = files(a) === files(b) ? ' (new content)' : '';
    out.push({ key: 'tls.certificates', from: files(a), to: `${files(b)}${content}` });
  }
  return out;
}

/** Keys shown as durations (`30s`) and sizes (`64KiB`): those the schema types so. */
const DURATION_KEYS: ReadonlySet<string> = new Set(CLASSES.DURATION_KEYS);
const SIZE_KEYS: ReadonlySet<string> = new Set(CLASSES.SIZE_KEYS);

interface RouteLike {
  readonly host?: string;
  readonly path_prefix?: string;
  readonly pool?: string;
  readonly redirect?: { readonly to: string; readonly code: number };
  readonly [key: string]: unknown;
}

const ROUTE_MATCH_KEYS: ReadonlySet<string> = new Set(['host', 'path_prefix', 'pool', 'redirect']);

/** `api.example.com/v1/:api(strip_prefix, response_timeout=5m)`, `old.example.com:→301 https://example.com`. */
function displayRoute(r: RouteLike): string {
  const target = r.redirect !== undefined ? `→${r.redirect.code} ${r.redirect.to}` : (r.pool ?? '?');
  const extras = Object.entries(r)
    .filter(([k, v]) => !ROUTE_MATCH_KEYS.has(k) && v !== undefined && v !== false)
    .map(([k, v]) => (v === true ? k : `${k}=${display(k, v)}`));
  return `${r.host ?? '*'}${r.path_prefix ?? ''}:${target}${extras.length === 0 ? '' : `(${extras.join(', ')})`}`;
}

/** A value as an operator would write it in proxy.yaml. */
function display(key: string, value: unknown): string {
  if (value === undefined) return 'none';
  if (typeof value === 'number' && DURATION_KEYS.has(key)) return formatDuration(value);
  if (typeof value === 'number' && SIZE_KEYS.has(key)) return formatSize(value);
  switch (key) {
    case 'listen':
    case 'address':
      return formatAddress(value as { host: string; port: number });
    case 'expect_status': {
      const { min, max } = value as { min: number; max: number };
      return min === max ? String(min) : `${min}-${max}`;
    }
    case 'warmup': {
      const { path, requests } = value as { path: string; requests: number };
      return `${requests} × ${path}`;
    }
    case 'routes':
      return (value as readonly RouteLike[]).map(displayRoute).join(' ');
    case 'trusted_proxies': {
      const list = value as readonly { address: string; prefix: number }[];
      return list.length === 0 ? 'none' : list.map((c) => `${c.address}/${c.prefix}`).join(' ');
    }
    default:
      return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }
}

/** 30000 → `30s`, 250 → `250ms`, 0 → `0s`: the largest unit that divides exactly. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1_000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function formatSize(bytes: number): string {
  if (bytes > 0 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)}MiB`;
  if (bytes > 0 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}

function formatAddress({ host, port }: { host: string; port: number }): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].every((k) => deepEqual(a[k], b[k]));
  }
  return false;
}

const show = (c: SettingChange): string => `${c.key} ${c.from} → ${c.to}`;
const line = (prefix: string) => (c: SettingChange): string => `${prefix}${show(c)}`;
const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

function describeListener(l: ListenerConfig): string {
  return `${l.protocol}${l.tls === undefined ? '' : '+tls'} on ${formatAddress(l.listen)}`;
}

function describeBackend(b: BackendConfig): string {
  return `${formatAddress(b.address)}, ${b.role}, weight ${b.weight}`;
}

function find<T extends { readonly name: string }>(list: readonly T[], name: string): T {
  const found = list.find((x) => x.name === name);
  if (found === undefined) throw new RangeError(`no ${name} in the new config`);
  return found;
}
