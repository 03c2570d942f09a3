/**
 * The proxy.yaml schema: every key, its type, range and default. Defaults live only in
 * {@link DEFAULTS}; the README's configuration reference is checked against it by a test.
 * Cross-references (pool names, duplicate names, admin token rules) are checked in load.ts,
 * where positions are known.
 */
import { z } from 'zod';
import {
  parseCidr,
  parseDuration,
  parseHostPattern,
  parseHostPort,
  parseSize,
  parseStatusRange,
  type Parsed,
} from './units.js';
import { describeValue } from './messages.js';
import { DNS_NAME, isSrvName, parseResolver } from './dns-names.js';
import { isNormalPath, normalizePath } from '../core/path.js';
import { headerRulesSchema, redirectSchema } from './web-rules.js';

/** Every default, in the units an operator writes them. */
export const DEFAULTS = {
  shutdown_timeout: '30s',
  /** `auto` = one worker per available CPU (os.availableParallelism()). */
  workers: 'auto',
  watch: false,
  log: { level: 'info', access: true, format: 'json' },
  listener: {
    protocol: 'http',
    trusted_proxies: [] as string[],
    header_timeout: '10s',
    idle_timeout: '60s',
    max_connections: 10000,
    max_header_size: '16KiB',
    http2: true,
    redirect_https: false,
    max_body_size: 0,
    proxy_protocol: false,
  },
  route: { strip_prefix: false },
  pool: {
    connect_timeout: '2s',
    response_timeout: '30s',
    tunnel_idle_timeout: '1h',
    retries: 2,
    drain_timeout: '5m',
    max_replay_body: '64KiB',
    send_proxy_protocol: 'off',
    resolve_interval: '10s',
  },
  health_check: {
    protocol: 'http',
    expect_status: '200-399',
    interval: '2s',
    timeout: '1s',
    rise: 2,
    fall: 3,
  },
  /** A pool without a health_check block is checked like this. */
  implicit_health_check: { protocol: 'tcp', interval: '2s', timeout: '1s', rise: 2, fall: 3 },
  passive: { consecutive_failures: 3 },
  failover: { failback: 'auto', failback_hold: '30s', slow_start: '10s', spill: true },
  warmup: { path: '/', requests: 10 },
  backend: { weight: 1, max_conns: 0, role: 'hot' },
  discover: { weight: 1, max_conns: 0, role: 'hot' },
} as const;

/** Names appear in URLs of the admin API and in metric labels: keep them plain. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const name = z.string().regex(NAME, 'must be 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit');

/** "expected a duration string like 2s, got 2": for a value of the wrong YAML type. */
const expected = (what: string) => (issue: { readonly input?: unknown }) =>
  issue.input === undefined ? undefined : `expected ${what}, got ${describeValue(issue.input)}`;

/** A scalar turned into a value by one of the units.ts parsers; `what` names it in type errors. */
function parsedScalar<T>(parse: (text: string) => Parsed<T>, what: string, options: { numbers?: boolean } = {}) {
  const error = expected(what);
  const input: z.ZodType<string | number> = options.numbers
    ? z.union([z.string(), z.number()], { error })
    : z.string({ error });
  return input.transform((value, ctx): T => {
    const result = parse(String(value));
    if (result.ok) return result.value;
    ctx.addIssue({ code: 'custom', message: result.message });
    return z.NEVER;
  });
}

const duration = () => parsedScalar(parseDuration, 'a duration string like 2s');
/** A duration that must be strictly positive (intervals, check timeouts). */
const positiveDuration = () =>
  duration().refine((ms) => ms > 0, { message: 'must be greater than 0s' });
/** Sizes take `16KiB` / `1MiB` or a plain number of bytes. */
const size = () => parsedScalar(parseSize, 'a size like 16KiB', { numbers: true });
const address = (minPort: number) =>
  parsedScalar((text) => parseHostPort(text, minPort), 'an address like 127.0.0.1:8080');
/** An integer in [min, max]; a wrong type or a fraction gets the same message as a value out of range. */
const int = (min: number, max: number) => {
  const message = `must be an integer between ${min} and ${max}`;
  return z
    .int({ error: (issue) => (issue.input === undefined ? undefined : message) })
    .min(min, message)
    .max(max, message);
};
const boolean = () => z.boolean({ error: expected('true or false') });

const certificateSchema = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
});

/** One certificate (`{ cert, key }`) or several chosen by SNI (`{ certificates: [...] }`). */
const tlsSchema = z
  .strictObject({
    cert: z.string().min(1).optional(),
    key: z.string().min(1).optional(),
    certificates: z.array(certificateSchema).min(1, 'at least one certificate').optional(),
  })
  .check((ctx) => {
    const { cert, key, certificates } = ctx.value;
    if (certificates !== undefined) {
      if (cert !== undefined || key !== undefined) {
        ctx.issues.push({ code: 'custom', input: ctx.value, path: [cert !== undefined ? 'cert' : 'key'], message: 'use either cert/key or certificates, not both' });
      }
      return;
    }
    for (const [name, value] of [['cert', cert], ['key', key]] as const) {
      if (value === undefined) ctx.issues.push({ code: 'custom', input: ctx.value, path: [name], message: 'required (or list them under certificates)' });
    }
  });

const routeSchema = z.strictObject({
  host: parsedScalar(parseHostPattern, 'a host name like api.example.com or *.example.com').optional(),
  path_prefix: z.string().startsWith('/', 'must start with "/"').check((ctx) => {
    // Requests are matched by their normalised path, which never holds `//`, dot segments or
    // encoded unreserved characters: a prefix spelled with them could never match.
    const prefix = ctx.value;
    if (!prefix.startsWith('/')) return;
    if (/[?#]/.test(prefix)) ctx.issues.push({ code: 'custom', input: prefix, message: 'must be a path without "?" or "#" (routes match the path only)' });
    else if (!isNormalPath(prefix)) ctx.issues.push({ code: 'custom', input: prefix, message: `must be in normal form: write ${normalizePath(prefix)} (requests are matched by their normalised path)` });
  }).optional(),
  pool: name.optional(),
  redirect: redirectSchema.optional(),
  strip_prefix: boolean().prefault(DEFAULTS.route.strip_prefix),
  response_timeout: duration().optional(),
  retries: int(0, 10).optional(),
  request_headers: headerRulesSchema.optional(),
  response_headers: headerRulesSchema.optional(),
  max_body_size: size().optional(),
});

const listenerSchema = z.strictObject({
  name,
  listen: address(0),
  protocol: z.enum(['http', 'tcp']).prefault(DEFAULTS.listener.protocol),
  tls: tlsSchema.optional(),
  /** TLS http listeners offer h2 by ALPN (SPEC §11); no effect without tls. */
  http2: z.boolean().prefault(DEFAULTS.listener.http2),
  trusted_proxies: z.array(parsedScalar(parseCidr, 'a CIDR like 10.0.0.0/8')).prefault(DEFAULTS.listener.trusted_proxies),
  header_timeout: duration().prefault(DEFAULTS.listener.header_timeout),
  idle_timeout: duration().prefault(DEFAULTS.listener.idle_timeout),
  max_connections: int(1, 1_000_000).prefault(DEFAULTS.listener.max_connections),
  max_header_size: size()
    .refine((n) => n >= 1024 && n <= 1024 * 1024, { message: 'must be between 1KiB and 1MiB' })
    .prefault(DEFAULTS.listener.max_header_size),
  routes: z.array(routeSchema).min(1).optional(),
  pool: name.optional(),
  redirect_https: boolean().prefault(DEFAULTS.listener.redirect_https),
  proxy_protocol: boolean().prefault(DEFAULTS.listener.proxy_protocol),
  max_body_size: size().prefault(DEFAULTS.listener.max_body_size),
});

const expectStatus = parsedScalar(parseStatusRange, 'a status or range like 200-399', { numbers: true });

const healthCheckSchema = z.strictObject({
  protocol: z.enum(['http', 'tcp']).prefault(DEFAULTS.health_check.protocol),
  path: z.string().startsWith('/', 'must start with "/"').optional(),
  host: z.string().min(1).optional(),
  expect_status: expectStatus.prefault(DEFAULTS.health_check.expect_status),
  interval: positiveDuration().prefault(DEFAULTS.health_check.interval),
  timeout: positiveDuration().prefault(DEFAULTS.health_check.timeout),
  rise: int(1, 100).prefault(DEFAULTS.health_check.rise),
  fall: int(1, 100).prefault(DEFAULTS.health_check.fall),
});

const warmupSchema = z.strictObject({
  path: z.string().startsWith('/', 'must start with "/"').prefault(DEFAULTS.warmup.path),
  requests: int(1, 1000).prefault(DEFAULTS.warmup.requests),
});

const failoverSchema = z.strictObject({
  failback: z.enum(['auto', 'manual']).prefault(DEFAULTS.failover.failback),
  failback_hold: duration().prefault(DEFAULTS.failover.failback_hold),
  slow_start: duration().prefault(DEFAULTS.failover.slow_start),
  warmup: warmupSchema.optional(),
  spill: boolean().prefault(DEFAULTS.failover.spill),
});

const backendSchema = z.strictObject({
  name,
  address: address(1),
  weight: int(1, 256).prefault(DEFAULTS.backend.weight),
  max_conns: int(0, 1_000_000).prefault(DEFAULTS.backend.max_conns),
  role: z.enum(['hot', 'warm']).prefault(DEFAULTS.backend.role),
});

/** A cookie name is an RFC 6265 token. */
const stickySchema = z.strictObject({
  cookie: z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be a cookie name (letters, digits and !#$%&\'*+.^_`|~-)'),
  secret_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
});

/**
 * A DNS name to take backends from (SPEC §12). A name whose first label starts with `_`
 * (`_http._tcp.app.service.consul`) is looked up as SRV: port and weight come from the answer,
 * so the entry may not set them. Any other name is looked up as A and AAAA and needs `port`.
 */
const discoverSchema = z
  .strictObject({
    dns: z.string({ error: expected('a DNS name') }).regex(DNS_NAME, 'must be a DNS name like app.default.svc.cluster.local or _http._tcp.app.service.consul'),
    port: int(1, 65535).optional(),
    weight: int(1, 256).optional(),
    max_conns: int(0, 1_000_000).prefault(DEFAULTS.discover.max_conns),
    role: z.enum(['hot', 'warm']).prefault(DEFAULTS.discover.role),
  })
  .superRefine((entry, ctx) => {
    if (isSrvName(entry.dns)) {
      if (entry.port !== undefined) ctx.addIssue({ code: 'custom', path: ['port'], message: 'an SRV name takes the port from its answer: remove "port"' });
      if (entry.weight !== undefined) ctx.addIssue({ code: 'custom', path: ['weight'], message: 'an SRV name takes the weight from its answer: remove "weight"' });
    } else if (entry.port === undefined) {
      ctx.addIssue({ code: 'custom', path: [], message: 'an A/AAAA name needs "port" (or use an SRV name like _http._tcp.app.example.com)' });
    }
  });

const poolSchema = z.strictObject({
  connect_timeout: positiveDuration().prefault(DEFAULTS.pool.connect_timeout),
  response_timeout: duration().prefault(DEFAULTS.pool.response_timeout),
  tunnel_idle_timeout: duration().prefault(DEFAULTS.pool.tunnel_idle_timeout),
  retries: int(0, 10).prefault(DEFAULTS.pool.retries),
  max_replay_body: size()
    .refine((n) => n <= 16 * 1024 * 1024, { message: 'must be at most 16MiB' })
    .prefault(DEFAULTS.pool.max_replay_body),
  health_check: healthCheckSchema.optional(),
  passive: z
    .strictObject({ consecutive_failures: int(0, 1000).prefault(DEFAULTS.passive.consecutive_failures) })
    .prefault({}),
  failover: failoverSchema.prefault({}),
  drain_timeout: duration().prefault(DEFAULTS.pool.drain_timeout),
  sticky: stickySchema.optional(),
  send_proxy_protocol: z.enum(['off', 'v1', 'v2']).prefault(DEFAULTS.pool.send_proxy_protocol),
  /** Listed backends; a pool with `discover` entries may have none (load.ts checks "at least one of them"). */
  backends: z.array(backendSchema).prefault([]),
  discover: z.array(discoverSchema).optional(),
  resolve_interval: duration()
    .refine((ms) => ms >= 1000, { message: 'must be at least 1s' })
    .prefault(DEFAULTS.pool.resolve_interval),
});

const adminSchema = z.strictObject({
  listen: address(0),
  token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional(),
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).prefault(DEFAULTS.log.level),
  access: boolean().prefault(DEFAULTS.log.access),
  format: z.enum(['json', 'text']).prefault(DEFAULTS.log.format),
  /** Relative paths are relative to the config file's folder; made absolute by the loader. */
  file: z.string().min(1, 'must be a file path').optional(),
});

/** `auto`, or a number of worker processes (1 = a single process, no primary). */
const workersSchema = z.union([z.literal('auto'), z.int()], { error: (issue) => (issue.input === undefined ? undefined : 'must be "auto" or an integer between 1 and 256') })
  .refine((n) => n === 'auto' || (n >= 1 && n <= 256), { message: 'must be "auto" or an integer between 1 and 256' });
/** A DNS server: an IP address with an optional port (default 53). */
const resolverSchema = parsedScalar(parseResolver, 'a DNS server address like 10.0.0.2 or 10.0.0.2:53');

export const configSchema = z.strictObject({
  admin: adminSchema.optional(),
  workers: workersSchema.prefault(DEFAULTS.workers),
  log: logSchema.prefault({}),
  shutdown_timeout: duration().prefault(DEFAULTS.shutdown_timeout),
  watch: boolean().prefault(DEFAULTS.watch),
  resolvers: z.array(resolverSchema).min(1, 'list at least one server, or leave the key out for the system resolvers').optional(),
  listeners: z.array(listenerSchema).min(1, 'at least one listener is required'),
  pools: z.record(name, poolSchema),
});

/** The validated configuration as parsed from YAML, before cross-checks and freezing. */
export type RawConfig = z.output<typeof configSchema>;

type DeepReadonly<T> = T extends (infer E)[]
  ? readonly DeepReadonly<E>[]
  : T extends object
    ? { readonly [K in keyof T]: DeepReadonly<T[K]> }
    : T;

type RawPool = RawConfig['pools'][string];
type RawListener = RawConfig['listeners'][number];

/** One certificate and its key as read from disk when the config was loaded (re-read on every reload). */
export interface TlsCertificate {
  /** Paths as resolved against the config file's folder. */
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
  /** Lower-case DNS names it serves by SNI (its SANs, else its CN); `*.example.com` for wildcards. */
  readonly names: readonly string[];
}

/** A listener's certificates: the fields of the first (the default), and all of them for SNI. */
export interface TlsMaterial extends TlsCertificate {
  readonly certificates: readonly TlsCertificate[];
}

export type ListenerConfig = DeepReadonly<Omit<RawListener, 'tls'>> & { readonly tls?: TlsMaterial };
/** A pool with its health check made explicit (the implicit tcp check filled in). */
export type PoolConfig = DeepReadonly<Omit<RawPool, 'health_check'> & { health_check: NonNullable<RawPool['health_check']> }>;
export type BackendConfig = PoolConfig['backends'][number];
export type HealthCheckConfig = PoolConfig['health_check'];

/** The frozen configuration the proxy runs on. */
export type Config = DeepReadonly<Omit<RawConfig, 'pools' | 'listeners'>> & {
  /** Absolute path of the file it was loaded from. */
  readonly file: string;
  readonly listeners: readonly ListenerConfig[];
  readonly pools: { readonly [name: string]: PoolConfig };
};

/** The check of a pool without a `health_check` block: `DEFAULTS.implicit_health_check`, parsed. */
export function implicitHealthCheck(): HealthCheckConfig {
  return healthCheckSchema.parse(DEFAULTS.implicit_health_check);
}
