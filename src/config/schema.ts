/**
 * The proxy.yaml schema: every key, its type, range and default. Defaults live only in
 * {@link DEFAULTS}. Each key carries its documentation (`.meta(doc(...))`, see key-doc.ts): docs/configuration.md is generated from it.
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
import { doc } from './key-doc.js';

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
  host: parsedScalar(parseHostPattern, 'a host name like api.example.com or *.example.com').optional().meta(doc({ type: '`example.com` | `*.example.com`', default: 'any', description: '' })),
  path_prefix: z.string().startsWith('/', 'must start with "/"').check((ctx) => {
    // Requests are matched by their normalised path, which never holds `//`, dot segments or
    // encoded unreserved characters: a prefix spelled with them could never match.
    const prefix = ctx.value;
    if (!prefix.startsWith('/')) return;
    if (/[?#]/.test(prefix)) ctx.issues.push({ code: 'custom', input: prefix, message: 'must be a path without "?" or "#" (routes match the path only)' });
    else if (!isNormalPath(prefix)) ctx.issues.push({ code: 'custom', input: prefix, message: `must be in normal form: write ${normalizePath(prefix)} (requests are matched by their normalised path)` });
  }).optional().meta(doc({ type: 'path in normal form', default: 'any', description: '`/api` does not match `/api/` (and `/api/` does not match `/api`).' })),
  pool: name.optional().meta(doc({ type: 'pool name', default: '—', description: 'Where matching requests go. Exactly one of `pool` and `redirect`.' })),
  redirect: redirectSchema.optional().meta(doc({ type: '`{ to, code }`', default: '—', inline: true, description: 'Answer with a redirect instead: `to` is `http(s)://host[:port][/base]` (no query, fragment or credentials), `code` one of 301, 302, 303, 307, 308 (default `308`). The request\'s target as sent is appended to `to` (`https://example.com/new/` + `/x?y` → `https://example.com/new/x?y`, never a doubled `/`). Only `host`, `path_prefix` and `response_headers` may go with it.' })),
  strip_prefix: boolean().prefault(DEFAULTS.route.strip_prefix).meta(doc({ type: 'boolean', description: 'Needs `path_prefix`. The backend receives the normalised path with the prefix removed, and the query as sent: `path_prefix: /api/` turns `/api/users?q=1` into `/users?q=1` (and `/api/` into `/`). Without it the target goes to the backend byte for byte.' })),
  response_timeout: duration().optional().meta(doc({ type: 'duration', default: 'the pool\'s', description: 'Overrides the pool\'s `response_timeout` for this route (long polls, reports). `0s` = no limit.' })),
  retries: int(0, 10).optional().meta(doc({ type: 'integer 0-10', default: 'the pool\'s', description: 'Overrides the pool\'s `retries` for this route.' })),
  request_headers: headerRulesSchema.optional().meta(doc({ type: '`{ set: {Name: value}, remove: [Name] }`', inline: true, description: 'Applied to requests (and WebSocket handshakes) after the proxy\'s own header handling: `set` replaces any value the client sent (`X-Forwarded-For` included), `remove` drops the header. Header names in rules must be valid header names (letters, digits and ``!#$%&\'*+.^_`|~-``); values must be strings without control characters. A name may not be both set and removed, nor set twice in another letter case. Hop-by-hop and framing headers (`Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Trailer`, `Upgrade`, `Transfer-Encoding`, `Content-Length`) are the proxy\'s to manage: a rule naming one is an error.' })),
  response_headers: headerRulesSchema.optional().meta(doc({ type: '`{ set, remove }`', inline: true, description: 'Applied to every response of the route — the backend\'s, the proxy\'s own 4xx/5xx (413, 502, 503, 504) and redirects, and the WebSocket `101` — like NGINX\'s `add_header … always`. `set` replaces what the backend sent.' })),
  max_body_size: size().optional().meta(doc({ type: 'size', default: 'the listener\'s', description: 'Overrides the listener\'s `max_body_size` (`0` = no limit for this route).' })),
});

const listenerSchema = z.strictObject({
  name: name.meta(doc({ type: 'name', reload: 'name', description: 'Unique among listeners.' })),
  listen: address(0).meta(doc({ type: 'address', reload: 'rebind', description: '' })),
  protocol: z.enum(['http', 'tcp']).prefault(DEFAULTS.listener.protocol).meta(doc({ type: '`http` | `tcp`', reload: 'rebind', description: '`http` = HTTP/1.1 + WebSocket (and HTTP/2 with `tls`).' })),
  tls: tlsSchema.optional().meta(doc({ type: '`{ cert, key }` or `{ certificates: [{ cert, key }, …] }`', reload: 'rebind', inline: true, description: 'PEM files; relative paths are relative to the config file\'s folder. TLS 1.2+. Every file is read and checked (it loads, and the key belongs to the certificate) on every load and reload. Passphrase-protected keys are not supported. With `certificates`, the one served is chosen by SNI (see [Several certificates](web-apps.md#several-certificates-sni)); no two may serve the same name. Turning TLS on or off rebinds the listener; new certificates (other files, or new content in the same files) are applied by a reload to new connections.' })),
  /** TLS http listeners offer h2 by ALPN (SPEC §11); no effect without tls. */
  http2: z.boolean().prefault(DEFAULTS.listener.http2).meta(doc({ type: 'boolean', reload: 'rebind', description: 'A TLS `http` listener offers `h2` and `http/1.1` by ALPN; `false` offers `http/1.1` only. See [HTTP/2](http2.md#http2). `http2: true` without `tls` is an error (no h2c on plain TCP); on a `tcp` listener the key is an error. A change rebinds the listener.' })),
  trusted_proxies: z.array(parsedScalar(parseCidr, 'a CIDR like 10.0.0.0/8')).prefault(DEFAULTS.listener.trusted_proxies).meta(doc({ type: 'list of CIDRs', description: 'Peers whose `X-Forwarded-*` headers are kept.' })),
  header_timeout: duration().prefault(DEFAULTS.listener.header_timeout).meta(doc({ type: 'duration', description: 'The whole request head must arrive within this (slowloris); on a TLS listener (`tcp` too) the handshake must also complete within it. `0s` = no limit for the head (not recommended), 120 s for the handshake.' })),
  idle_timeout: duration().prefault(DEFAULTS.listener.idle_timeout).meta(doc({ type: 'duration', description: 'Client keep-alive idle time. `0s` = no limit.' })),
  max_connections: int(1, 1_000_000).prefault(DEFAULTS.listener.max_connections).meta(doc({ type: 'integer 1-1000000', description: '' })),
  max_header_size: size()
    .refine((n) => n >= 1024 && n <= 1024 * 1024, { message: 'must be between 1KiB and 1MiB' })
    .prefault(DEFAULTS.listener.max_header_size)
    .meta(doc({ type: 'size, 1KiB-1MiB', description: 'A request head larger than this gets 431. Over HTTP/2 it is the header list size (names, values and 32 bytes a field, HEADERS and CONTINUATION together), announced in SETTINGS_MAX_HEADER_LIST_SIZE.' })),
  routes: z.array(routeSchema).min(1).optional().meta(doc({ type: 'list (at least one)', description: '`http` only; first match wins. Each route: `host` (exact, or `*.example.com`; matched case-insensitively), `path_prefix` (starts with `/`, in normal form; matched against the normalised path, see [Routing](protocols.md#routing-how-a-request-finds-its-route)), and either `pool` or `redirect`; the other route keys are in [`listeners[].routes[]`](#listenersroutes). A route without `host` and `path_prefix` is a catch-all.' })),
  pool: name.optional().meta(doc({ type: 'pool name', description: 'The pool of a `tcp` listener, or of an `http` listener without `routes`.' })),
  redirect_https: boolean().prefault(DEFAULTS.listener.redirect_https).meta(doc({ type: 'boolean', description: '`http` only. Every request (and WebSocket upgrade) is answered `308` with `Location: https://<Host without its port><target as sent>`; the listener takes no `pool` or `routes`. A request without a usable `Host` gets 400.' })),
  proxy_protocol: boolean().prefault(DEFAULTS.listener.proxy_protocol).meta(doc({ type: 'boolean', description: 'Every connection must come from a peer in `trusted_proxies` (required with it) and start with a PROXY protocol v1 or v2 header, whose source address is the client\'s (see [PROXY protocol](web-apps.md#proxy-protocol)). `http` and `tcp` listeners.' })),
  max_body_size: size().prefault(DEFAULTS.listener.max_body_size).meta(doc({ type: 'size', description: '`http` only. Request bodies larger than this get `413` (see [Web apps](web-apps.md#serving-web-apps-redirects-header-rules-prefixes-limits)); a route may override it. `0` = no limit.' })),
});

const expectStatus = parsedScalar(parseStatusRange, 'a status or range like 200-399', { numbers: true });

const healthCheckSchema = z.strictObject({
  protocol: z.enum(['http', 'tcp']).prefault(DEFAULTS.health_check.protocol).meta(doc({ type: '`http` | `tcp`', description: '' })),
  path: z.string().startsWith('/', 'must start with "/"').optional().meta(doc({ type: 'string starting with `/`', description: '**Required** for `http` checks (so with the default protocol too).' })),
  host: z.string().min(1).optional().meta(doc({ type: 'string', default: 'the backend\'s address', description: 'Host header for http checks.' })),
  expect_status: expectStatus.prefault(DEFAULTS.health_check.expect_status).meta(doc({ type: 'status range', description: '' })),
  interval: positiveDuration().prefault(DEFAULTS.health_check.interval).meta(doc({ type: 'duration > 0s', description: '' })),
  timeout: positiveDuration().prefault(DEFAULTS.health_check.timeout).meta(doc({ type: 'duration > 0s', description: '' })),
  rise: int(1, 100).prefault(DEFAULTS.health_check.rise).meta(doc({ type: 'integer 1-100', description: 'Consecutive successes that make a backend up.' })),
  fall: int(1, 100).prefault(DEFAULTS.health_check.fall).meta(doc({ type: 'integer 1-100', description: 'Consecutive failures that make a backend down.' })),
});

const warmupSchema = z.strictObject({
  path: z.string().startsWith('/', 'must start with "/"').prefault(DEFAULTS.warmup.path),
  requests: int(1, 1000).prefault(DEFAULTS.warmup.requests),
});

const failoverSchema = z.strictObject({
  failback: z.enum(['auto', 'manual']).prefault(DEFAULTS.failover.failback).meta(doc({ type: '`auto` | `manual`', description: '' })),
  failback_hold: duration().prefault(DEFAULTS.failover.failback_hold).meta(doc({ type: 'duration', description: 'A recovered hot backend must stay up this long before its warm is released. `0s` = fail back as soon as it is up.' })),
  slow_start: duration().prefault(DEFAULTS.failover.slow_start).meta(doc({ type: 'duration', description: 'Ramp from 10% to 100% of the weight. `0s` = no ramp.' })),
  warmup: warmupSchema.optional().meta(doc({ type: '`{ path, requests }`', inline: true, description: `Requests sent to a warm backend before it takes traffic. \`path\`: starts with \`/\`, default \`${DEFAULTS.warmup.path}\`; \`requests\`: integer 1-1000, default \`${DEFAULTS.warmup.requests}\`. \`warmup: {}\` takes both defaults.` })),
  spill: boolean().prefault(DEFAULTS.failover.spill).meta(doc({ type: 'boolean', description: 'Overflow to warm standbys when every serving backend is full.' })),
});

const backendSchema = z.strictObject({
  name: name.meta(doc({ type: 'name', reload: 'name', description: 'Unique within the pool.' })),
  address: address(1).meta(doc({ type: 'address (port 1-65535)', reload: 'replace', description: 'The host may be a DNS name: resolved at start and every `resolve_interval`, first address of the answer (see [Backends from DNS](operations.md#backends-from-dns)).' })),
  weight: int(1, 256).prefault(DEFAULTS.backend.weight).meta(doc({ type: 'integer 1-256', description: '' })),
  max_conns: int(0, 1_000_000).prefault(DEFAULTS.backend.max_conns).meta(doc({ type: 'integer 0-1000000', description: '`0` = unlimited.' })),
  role: z.enum(['hot', 'warm']).prefault(DEFAULTS.backend.role).meta(doc({ type: '`hot` | `warm`', reload: 'replace', description: '' })),
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
    dns: z.string({ error: expected('a DNS name') }).regex(DNS_NAME, 'must be a DNS name like app.default.svc.cluster.local or _http._tcp.app.service.consul')
      .meta(doc({ type: 'DNS name', description: 'A name whose first label starts with `_` (`_http._tcp.app.service.consul`) is looked up as **SRV**: each target\'s addresses, with the port and weight of its record. Any other name is looked up as **A and AAAA**.' })),
    port: int(1, 65535).optional().meta(doc({ type: 'integer 1-65535', description: '**Required** for A/AAAA names; not allowed with SRV names (the answer has it).' })),
    weight: int(1, 256).optional().meta(doc({ type: 'integer 1-256', default: `\`${DEFAULTS.discover.weight}\``, description: 'A/AAAA names only; SRV weights come from the answer (`max(1, min(256, weight))`).' })),
    max_conns: int(0, 1_000_000).prefault(DEFAULTS.discover.max_conns).meta(doc({ type: 'integer 0-1000000', description: 'For each discovered backend.' })),
    role: z.enum(['hot', 'warm']).prefault(DEFAULTS.discover.role).meta(doc({ type: '`hot` | `warm`', description: 'For each discovered backend (SRV priority is not used).' })),
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
  connect_timeout: positiveDuration().prefault(DEFAULTS.pool.connect_timeout).meta(doc({ type: 'duration > 0s', description: 'A connection to a backend must be established within this, else the next backend is tried.' })),
  response_timeout: duration().prefault(DEFAULTS.pool.response_timeout).meta(doc({ type: 'duration', description: 'Until the backend\'s response head arrives, else 504. `0s` = no limit.' })),
  tunnel_idle_timeout: duration().prefault(DEFAULTS.pool.tunnel_idle_timeout).meta(doc({ type: 'duration', description: 'WebSocket / TCP tunnels with no bytes either way. `0s` = no limit.' })),
  retries: int(0, 10).prefault(DEFAULTS.pool.retries).meta(doc({ type: 'integer 0-10', description: 'Extra attempts on other backends, when safe.' })),
  max_replay_body: size()
    .refine((n) => n <= 16 * 1024 * 1024, { message: 'must be at most 16MiB' })
    .prefault(DEFAULTS.pool.max_replay_body)
    .meta(doc({ type: 'size, at most 16MiB', description: 'Request bodies up to this size are kept in memory so a retry can resend them; a request whose body is larger cannot be retried once the body has started to go out. `0` = no body is kept.' })),
  health_check: healthCheckSchema.optional().meta(doc({ type: 'mapping', default: 'a tcp check', description: `Active health checks, see below. Without the block a pool is checked over tcp: \`${Object.entries(DEFAULTS.implicit_health_check).map(([k, v]) => `${k}: ${v}`).join(', ')}\`.` })),
  passive: z
    .strictObject({
      consecutive_failures: int(0, 1000).prefault(DEFAULTS.passive.consecutive_failures)
        .meta(doc({ type: 'integer 0-1000', description: 'Connect failures / resets on live traffic, in a row, that mark a backend down at once. `0` = passive detection off.' })),
    })
    .prefault({})
    .meta(doc({ type: 'mapping', default: 'see below', description: 'Passive failure detection on live traffic.' })),
  failover: failoverSchema.prefault({}).meta(doc({ type: 'mapping', default: 'see below', description: 'How warms take over and hand back, see below and [Balancing and failover](failover.md).' })),
  drain_timeout: duration().prefault(DEFAULTS.pool.drain_timeout).meta(doc({ type: 'duration', description: 'How long released or removed backends may keep their work. `0s` = cut at once.' })),
  sticky: stickySchema.optional().meta(doc({ type: '`{ cookie, secret_env }`', inline: true, description: 'Cookie affinity (see [Sticky sessions](web-apps.md#sticky-sessions)). `cookie`: the cookie\'s name. `secret_env`: an environment variable holding the key the tokens are signed with (must be set and not empty); without it a random key is drawn at start, so sessions are re-balanced after a restart.' })),
  send_proxy_protocol: z.enum(['off', 'v1', 'v2']).prefault(DEFAULTS.pool.send_proxy_protocol).meta(doc({ type: '`off` | `v1` | `v2`', description: 'Every connection to a backend starts with a PROXY protocol header naming the client and the listener\'s address and port it connected to (HTTP, WebSocket and TCP; see [PROXY protocol](web-apps.md#proxy-protocol)). Health checks carry one too.' })),
  /** Listed backends; a pool with `discover` entries may have none (load.ts checks "at least one of them"). */
  backends: z.array(backendSchema).prefault([]).meta(doc({ type: 'list', description: 'A pool needs at least one backend or one `discover` entry.' })),
  discover: z.array(discoverSchema).optional().meta(doc({ type: 'list', description: 'Backends from DNS, see below.' })),
  resolve_interval: duration()
    .refine((ms) => ms >= 1000, { message: 'must be at least 1s' })
    .prefault(DEFAULTS.pool.resolve_interval)
    .meta(doc({ type: 'duration, at least 1s', description: 'How often the pool\'s `discover` names and host names in `address` are looked up again.' })),
});

const adminSchema = z.strictObject({
  listen: address(0).meta(doc({ type: 'address', description: '' })),
  token_env: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name').optional().meta(doc({ type: 'environment variable name', description: 'Name of the variable holding the bearer token. **Required** when `listen` is not a loopback address (127.0.0.0/8, `::1`, `localhost`). When set, the variable must exist and be non-empty when the config is loaded.' })),
});

const logSchema = z.strictObject({
  level: z.enum(['trace', 'debug', 'info', 'warn', 'error']).prefault(DEFAULTS.log.level).meta(doc({ type: '`trace` | `debug` | `info` | `warn` | `error`', description: '' })),
  access: boolean().prefault(DEFAULTS.log.access).meta(doc({ type: 'boolean', description: 'One JSON line per request / tunnel.' })),
  format: z.enum(['json', 'text']).prefault(DEFAULTS.log.format).meta(doc({ type: '`json` | `text`', reload: 'restart', description: '`text`: one readable line per entry, for terminals.' })),
  /** Relative paths are relative to the config file's folder; made absolute by the loader. */
  file: z.string().min(1, 'must be a file path').optional().meta(doc({ type: 'path', default: 'none (stdout)', reload: 'restart', description: 'Every log line goes to this file (relative to the config file\'s folder) and none to stdout; `SIGUSR1` reopens it.' })),
});

/** `auto`, or a number of worker processes (1 = a single process, no primary). */
const workersSchema = z.union([z.literal('auto'), z.int()], { error: (issue) => (issue.input === undefined ? undefined : 'must be "auto" or an integer between 1 and 256') })
  .refine((n) => n === 'auto' || (n >= 1 && n <= 256), { message: 'must be "auto" or an integer between 1 and 256' });
/** A DNS server: an IP address with an optional port (default 53). */
const resolverSchema = parsedScalar(parseResolver, 'a DNS server address like 10.0.0.2 or 10.0.0.2:53');

export const configSchema = z.strictObject({
  admin: adminSchema.optional().meta(doc({ type: 'mapping', reload: 'restart', description: 'Omitted = no admin listener.' })),
  workers: workersSchema.prefault(DEFAULTS.workers).meta(doc({ type: '`auto` or 1–256', reload: 'restart', description: 'Worker processes ([Workers](workers.md#workers-every-core-one-brain)). `auto` = one per available CPU (`os.availableParallelism()`); `1` = one process, no primary. Read at startup only: a reload reports a change as applying at the next start.' })),
  log: logSchema.prefault({}).meta(doc({ type: 'mapping', default: 'see below', description: 'Where and how lines are logged ([Logs](operations.md#logs)).' })),
  shutdown_timeout: duration().prefault(DEFAULTS.shutdown_timeout).meta(doc({ type: 'duration', description: 'On SIGTERM/SIGINT, how long in-flight requests and tunnels may take before they are closed. `0s` = close at once.' })),
  watch: boolean().prefault(DEFAULTS.watch).meta(doc({ type: 'boolean', description: 'Reload when the file\'s content changes, Kubernetes ConfigMap swaps included; same semantics as `SIGHUP` (see [Reload](operations.md#reload-sighup)).' })),
  resolvers: z.array(resolverSchema).min(1, 'list at least one server, or leave the key out for the system resolvers').optional().meta(doc({ type: 'list of DNS servers', default: 'the system\'s', description: 'DNS servers for `discover` and for host names in backend `address`es: `10.0.0.2`, `10.0.0.2:5353`, `[fd00::1]:53` (port 53 when left out). Without it, `discover` uses the servers of `/etc/resolv.conf` and names in `address` are resolved like a connect would (`/etc/hosts` too).' })),
  listeners: z.array(listenerSchema).min(1, 'at least one listener is required').meta(doc({ type: 'list', description: 'At least one.' })),
  pools: z.record(name, poolSchema).meta(doc({ type: 'mapping of name → pool', description: 'Backends grouped by the listeners and routes that send to them; a pool\'s name is a [name](#values).' })),
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
  /** The file as the command line named it (`-c`): how messages name it. */
  readonly source: string;
  readonly listeners: readonly ListenerConfig[];
  readonly pools: { readonly [name: string]: PoolConfig };
};

/** The check of a pool without a `health_check` block: `DEFAULTS.implicit_health_check`, parsed. */
export function implicitHealthCheck(): HealthCheckConfig {
  return healthCheckSchema.parse(DEFAULTS.implicit_health_check);
}
