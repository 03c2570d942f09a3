/**
 * DNS names and DNS server addresses as proxy.yaml writes them (SPEC §12). Checked only, never
 * resolved: `hotwarm check` passes a config with cluster-internal names on any machine.
 */
import { isIP } from 'node:net';
import type { Parsed } from './units.js';

/** Labels of letters, digits, `-` and `_` (SRV labels start with `_`), dot-separated; a trailing dot is allowed. */
export const DNS_NAME = /^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** `_service._proto.name`: looked up as SRV. */
export function isSrvName(name: string): boolean {
  return name.startsWith('_');
}

/** Whether `host` (from an `address`) is a name to resolve rather than an IP literal. */
export function isDnsName(host: string): boolean {
  return isIP(host) === 0;
}

/** `10.0.0.2`, `10.0.0.2:5353`, `::1`, `[::1]:5353` → the form `Resolver.setServers` takes. */
export function parseResolver(text: string): Parsed<string> {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const v4 = bracketed ? null : /^([\d.]+)(?::(\d+))?$/.exec(text);
  const host = bracketed?.[1] ?? v4?.[1] ?? (isIP(text) === 6 ? text : undefined);
  const portText = bracketed?.[2] ?? v4?.[2];
  if (host === undefined || isIP(host) === 0) return { ok: false, message: `invalid DNS server "${text}": use an IP address, with :port if not 53` };
  const port = portText === undefined ? 53 : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) return { ok: false, message: `port ${portText ?? ''} out of range 1-65535` };
  return { ok: true, value: isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}` };
}
