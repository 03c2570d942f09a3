/**
 * Parsers for the unit-bearing scalars of proxy.yaml: durations, sizes, addresses, CIDRs and
 * status ranges. Each returns the parsed value or an error message (never throws), so the
 * schema can attach the message to the key's position.
 */
import { isIP } from 'node:net';

export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/;
const DURATION_FACTOR = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 } as const;
/** Node timers hold at most 2^31-1 ms (about 24.8 days); a longer delay fires after 1 ms instead. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

/**
 * `250ms`, `2s`, `1.5m`, `1h` → milliseconds. A bare number is refused: units are required.
 * At most {@link MAX_DURATION_MS} (596h), so every duration can be handed to a timer as is.
 */
export function parseDuration(text: string): Parsed<number> {
  const match = DURATION.exec(text.trim());
  if (!match) {
    return { ok: false, message: `invalid duration "${text}": use a number with a unit, e.g. 250ms, 2s, 1m, 1h` };
  }
  const value = Math.round(Number(match[1]) * DURATION_FACTOR[match[2] as keyof typeof DURATION_FACTOR]);
  if (value > MAX_DURATION_MS) return { ok: false, message: `duration "${text}" is too long: at most 596h` };
  return { ok: true, value };
}

const SIZE = /^(\d+)\s*(B|KiB|MiB)?$/;
const SIZE_FACTOR = { B: 1, KiB: 1024, MiB: 1024 * 1024 } as const;

/** `512`, `512B`, `16KiB`, `1MiB` → bytes. */
export function parseSize(text: string): Parsed<number> {
  const match = SIZE.exec(text.trim());
  if (!match) return { ok: false, message: `invalid size "${text}": use bytes or KiB / MiB, e.g. 16KiB` };
  const unit = (match[2] ?? 'B') as keyof typeof SIZE_FACTOR;
  return { ok: true, value: Number(match[1]) * SIZE_FACTOR[unit] };
}

export interface HostPort {
  /** Host without brackets: `127.0.0.1`, `::`, `localhost`. */
  readonly host: string;
  readonly port: number;
}

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `host:port` or `[ipv6]:port`; `minPort` is 0 for listen addresses (ephemeral), 1 for backends. */
export function parseHostPort(text: string, minPort: number): Parsed<HostPort> {
  const bracketed = /^\[([^\]]+)\]:(\d+)$/.exec(text);
  const plain = bracketed ? null : /^([^:]+):(\d+)$/.exec(text);
  const match = bracketed ?? plain;
  if (!match) return { ok: false, message: `invalid address "${text}": use host:port or [ipv6]:port` };
  const host = match[1] as string;
  const port = Number(match[2]);
  if (bracketed ? isIP(host) !== 6 : isIP(host) === 0 && !HOSTNAME.test(host)) {
    return { ok: false, message: `invalid host "${host}" in "${text}"` };
  }
  if (!Number.isInteger(port) || port < minPort || port > 65535) {
    return { ok: false, message: `port ${match[2]} out of range ${minPort}-65535` };
  }
  return { ok: true, value: { host, port } };
}

export interface Cidr {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** `10.0.0.0/8`, `::1/128`, or a single address (full-length prefix). */
export function parseCidr(text: string): Parsed<Cidr> {
  const [address = '', prefixText, extra] = text.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return { ok: false, message: `invalid CIDR "${text}"` };
  const max = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (!/^\d+$/.test(prefixText ?? String(max)) || prefix > max) {
    return { ok: false, message: `invalid prefix length in "${text}" (0-${max})` };
  }
  return { ok: true, value: { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' } };
}

export interface StatusRange {
  readonly min: number;
  readonly max: number;
}

/** `200`, `200-399` → inclusive range within 100–599. */
export function parseStatusRange(input: string | number): Parsed<StatusRange> {
  const text = String(input).trim();
  const match = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(text);
  if (!match) return { ok: false, message: `invalid status range "${text}": use 200 or 200-399` };
  const min = Number(match[1]);
  const max = Number(match[2] ?? match[1]);
  if (min < 100 || max > 599 || min > max) {
    return { ok: false, message: `status range "${text}" must lie within 100-599, low to high` };
  }
  return { ok: true, value: { min, max } };
}

/** Route host patterns: an exact host name or `*.example.com`. */
export function parseHostPattern(text: string): Parsed<string> {
  const lower = text.toLowerCase();
  const name = lower.startsWith('*.') ? lower.slice(2) : lower;
  if (!HOSTNAME.test(name) && isIP(name) === 0) {
    return { ok: false, message: `invalid host pattern "${text}": use an exact host or *.example.com` };
  }
  return { ok: true, value: lower };
}
