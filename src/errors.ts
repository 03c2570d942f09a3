/**
 * Every error hotwarm can produce, in one list. Each code says who caused it (`source`),
 * what the client is answered (`status`, 0 = the connection is closed instead) and whether
 * the request may be retried on another backend. Beside it: the error classes of a bad config
 * file ({@link ConfigError}), a failed reload ({@link ReloadError}) and the failover reducer's
 * refusals of operator actions ({@link REFUSAL_CODES}). docs/errors.md is checked against these
 * lists both ways by a test.
 */

export type ErrorSource = 'upstream' | 'downstream' | 'internal';

/**
 * `retry`:
 * - `always`: nothing reached the backend, any method may go elsewhere;
 * - `idempotent`: the backend may have seen the request head, only idempotent replayable requests go elsewhere;
 * - `never`: the backend may have acted on it, or the failure is not the backend's.
 */
export type RetryPolicy = 'always' | 'idempotent' | 'never';

interface ErrorSpec {
  readonly source: ErrorSource;
  readonly status: number;
  readonly retry: RetryPolicy;
  /** Counts against the backend for passive failure detection. */
  readonly passive: boolean;
  readonly description: string;
}

export const ERROR_CODES = {
  UPSTREAM_CONNECT_FAILED: {
    source: 'upstream', status: 502, retry: 'always', passive: true,
    description: 'the backend refused or dropped the connection before it was established',
  },
  UPSTREAM_CONNECT_TIMEOUT: {
    source: 'upstream', status: 502, retry: 'always', passive: true,
    description: 'no connection to the backend within connect_timeout',
  },
  UPSTREAM_RESET_BEFORE_HEAD: {
    source: 'upstream', status: 502, retry: 'idempotent', passive: true,
    description: 'the backend closed or reset the connection before the response head',
  },
  UPSTREAM_STALE_CONNECTION: {
    source: 'upstream', status: 502, retry: 'idempotent', passive: false,
    description: 'a pooled keep-alive connection was closed by the backend as it was reused',
  },
  UPSTREAM_BAD_RESPONSE: {
    source: 'upstream', status: 502, retry: 'never', passive: true,
    description: 'the backend sent a malformed response head',
  },
  UPSTREAM_RESPONSE_TIMEOUT: {
    source: 'upstream', status: 504, retry: 'never', passive: false,
    description: 'no response head from the backend within response_timeout',
  },
  UPSTREAM_RESET_MID_BODY: {
    source: 'upstream', status: 0, retry: 'never', passive: false,
    description: 'the backend failed after the response head was sent; the client connection is closed',
  },
  UPGRADE_REFUSED: {
    source: 'upstream', status: 0, retry: 'never', passive: false,
    description: 'the backend answered a WebSocket upgrade with something other than 101 (passed back as HTTP)',
  },
  UPGRADE_BAD_RESPONSE: {
    source: 'upstream', status: 502, retry: 'never', passive: false,
    description: 'the backend answered a WebSocket upgrade with a 101 lacking Upgrade: websocket or the Sec-WebSocket-Accept that matches the key; nothing is tunnelled',
  },
  TUNNEL_UPSTREAM_RESET: {
    source: 'upstream', status: 0, retry: 'never', passive: false,
    description: 'the backend reset or dropped an open tunnel (TCP or WebSocket); the client side is closed too (reset, when the backend reset)',
  },
  TUNNEL_IDLE_TIMEOUT: {
    source: 'internal', status: 0, retry: 'never', passive: false,
    description: 'no bytes either way on a tunnel for tunnel_idle_timeout; both sides are closed',
  },
  TUNNEL_CLOSED: {
    source: 'internal', status: 0, retry: 'never', passive: false,
    description: 'the proxy closed an open tunnel: its backend went down, drain_timeout passed, or shutdown',
  },
  NO_SERVING_BACKEND: {
    source: 'internal', status: 503, retry: 'never', passive: false,
    description: 'no backend of the pool is serving',
  },
  ALL_BACKENDS_FULL: {
    source: 'internal', status: 503, retry: 'never', passive: false,
    description: 'every serving backend (and standby, with spill) is at max_conns',
  },
  NO_ROUTE: {
    source: 'downstream', status: 404, retry: 'never', passive: false,
    description: 'no route of the listener matches the request host and path',
  },
  BAD_REQUEST: {
    source: 'downstream', status: 400, retry: 'never', passive: false,
    description: 'the request is malformed or ambiguous (smuggling guard); it never reaches a backend',
  },
  BODY_TOO_LARGE: {
    source: 'downstream', status: 413, retry: 'never', passive: false,
    description: 'the request body is larger than max_body_size: refused before forwarding when Content-Length says so, else the upstream request is aborted mid-stream; the connection closes',
  },
  WEBSOCKET_BAD_HANDSHAKE: {
    source: 'downstream', status: 400, retry: 'never', passive: false,
    description: 'a WebSocket upgrade that is not a well-formed opening handshake (RFC 6455 §4); it never reaches a backend',
  },
  WEBSOCKET_VERSION_UNSUPPORTED: {
    source: 'downstream', status: 426, retry: 'never', passive: false,
    description: 'a WebSocket upgrade for a Sec-WebSocket-Version other than 13 (answered with Sec-WebSocket-Version: 13)',
  },
  TLS_PLAIN_HTTP: {
    source: 'downstream', status: 400, retry: 'never', passive: false,
    description: 'plain HTTP sent to a TLS listener: answered in plain HTTP on an http listener (closed on a tcp one), then the connection closes',
  },
  TLS_HANDSHAKE_TIMEOUT: {
    source: 'downstream', status: 0, retry: 'never', passive: false,
    description: 'the TLS handshake did not complete within header_timeout; the connection is closed',
  },
  HTTP2_ABUSE: {
    source: 'downstream', status: 0, retry: 'never', passive: false,
    description: 'an HTTP/2 connection broke an abuse limit (rapid resets, SETTINGS flood); it is ended with GOAWAY(ENHANCE_YOUR_CALM)',
  },
  HEADERS_TOO_LARGE: {
    source: 'downstream', status: 431, retry: 'never', passive: false,
    description: 'the request head exceeds max_header_size or the header count limit',
  },
  REQUEST_TIMEOUT: {
    source: 'downstream', status: 408, retry: 'never', passive: false,
    description: 'the request head did not arrive within header_timeout',
  },
  METHOD_NOT_ALLOWED: {
    source: 'downstream', status: 405, retry: 'never', passive: false,
    description: 'CONNECT is not proxied',
  },
  VERSION_NOT_SUPPORTED: {
    source: 'downstream', status: 505, retry: 'never', passive: false,
    description: 'only HTTP/1.0 and HTTP/1.1 are accepted',
  },
  CLIENT_ABORTED: {
    source: 'downstream', status: 499, retry: 'never', passive: false,
    description: 'the client closed the connection before the response was complete (logged as 499)',
  },
  SHUTTING_DOWN: {
    source: 'internal', status: 503, retry: 'never', passive: false,
    description: 'the proxy is shutting down',
  },
  CONFIG_INVALID: {
    source: 'internal', status: 0, retry: 'never', passive: false,
    description: 'the configuration file has errors; nothing was applied',
  },
  LISTEN_FAILED: {
    source: 'internal', status: 0, retry: 'never', passive: false,
    description: 'a listener could not bind its address',
  },
  RELOAD_FAILED: {
    source: 'internal', status: 0, retry: 'never', passive: false,
    description: 'a reload could not be applied; the running configuration stays',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** An error with a code from {@link ERROR_CODES}; `cause` keeps the low-level error for logs only. */
export class ProxyError extends Error {
  readonly code: ErrorCode;
  readonly source: ErrorSource;
  readonly status: number;
  readonly retry: RetryPolicy;
  readonly passive: boolean;

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    const spec: ErrorSpec = ERROR_CODES[code];
    super(message ?? spec.description, options);
    this.name = 'ProxyError';
    this.code = code;
    this.source = spec.source;
    this.status = spec.status;
    this.retry = spec.retry;
    this.passive = spec.passive;
  }
}

// ---------------------------------------------------------------------------------------------
// A config file with errors.

/** One problem in a config file, positioned (1-based line and column). */
export interface ConfigIssue {
  /** The file as the caller named it (what the operator typed after `-c`). */
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** `pools.app.backends[1].weight`; `(root)` for the document itself, `(yaml)` for a YAML syntax error. */
  readonly path: string;
  readonly message: string;
}

/** `${file}:${line}:${col}: ${path}: ${message}` */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.path}: ${issue.message}`;
}

/** Sorts by line, then column; issues at the same place keep their order. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.col - b.issue.col || a.index - b.index)
    .map(({ issue }) => issue);
}

/**
 * An invalid config file (`CONFIG_INVALID`). `issues` holds every problem found, sorted by
 * position; `message` is their formatted lines joined by newlines, ready for stderr.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID' satisfies ErrorCode;
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const sorted = Object.freeze(sortIssues(issues).map((issue) => Object.freeze({ ...issue })));
    super(sorted.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = sorted;
  }
}

/** A reload that could not be applied (`CONFIG_INVALID`, `LISTEN_FAILED`, `RELOAD_FAILED`); `errors` are the lines to show. */
export class ReloadError extends Error {
  readonly code: ErrorCode;
  readonly errors: readonly string[];

  constructor(code: ErrorCode, errors: readonly string[]) {
    super(errors.join('\n'));
    this.name = 'ReloadError';
    this.code = code;
    this.errors = errors;
  }
}

// ---------------------------------------------------------------------------------------------
// Operator actions the failover reducer refuses (the admin API answers 409; nothing changes).

export const REFUSAL_CODES = {
  PROMOTE_HOT: 'promote of a hot backend: hot backends serve by role',
  ALREADY_PROMOTED: 'promote of a warm that is already promoted (covering a hot backend, or by an operator)',
  PROMOTE_NOT_UP: 'promote of a warm that is down or not checked yet: only an up warm can be promoted',
  PROMOTE_NOT_ENABLED: 'promote of a draining or disabled warm: enable it first',
  DEMOTE_HOT: 'demote of a hot backend: hot backends serve by role',
  NOT_PROMOTED: 'demote of a warm that is not promoted: it covers nothing',
  DEMOTE_WOULD_UNCOVER: 'demote of a warm whose hot backend is still not serving: it would be left uncovered',
} as const satisfies Record<string, string>;

export type RefusalCode = keyof typeof REFUSAL_CODES;

/** A refused operator action: its code and the sentence shown to the operator. */
export interface Refusal {
  readonly code: RefusalCode;
  readonly message: string;
}

/** Thrown inside the failover reducer only; `reduce` catches it and returns the {@link Refusal} as a value. */
export class FailoverRefusal extends Error {
  readonly code: RefusalCode;

  constructor(code: RefusalCode, message: string) {
    super(message);
    this.name = 'FailoverRefusal';
    this.code = code;
  }
}

/** Short generic reason phrases for error bodies: never backend addresses or internal text. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  426: 'Upgrade Required',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};
