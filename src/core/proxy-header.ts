/**
 * The PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2), parsed from the
 * first bytes of a connection. Pure: bytes in, a verdict out. A load balancer in front of us
 * sends it to tell the client's address; we take it only from trusted peers (the listener).
 */

export interface ProxiedAddresses {
  readonly source: { readonly address: string; readonly port: number };
  readonly destination: { readonly address: string; readonly port: number };
}

export type ProxyHeaderResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  /** `addresses` null: `PROXY UNKNOWN` (v1) or a LOCAL / unspecified v2 header — the peer's own address stands. */
  | { readonly kind: 'ok'; readonly length: number; readonly addresses: ProxiedAddresses | null };

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ');
/** A v1 header is at most 107 bytes, CRLF included. */
const V1_MAX = 107;
const INCOMPLETE = { kind: 'incomplete' } as const;
const invalid = (reason: string): ProxyHeaderResult => ({ kind: 'invalid', reason });

/** Parses the start of `data`; `incomplete` asks for more bytes. */
export function parseProxyHeader(data: Buffer): ProxyHeaderResult {
  if (startsWithPrefixOf(data, V2_SIGNATURE)) return data.length < 16 ? INCOMPLETE : parseV2(data);
  if (startsWithPrefixOf(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? INCOMPLETE : parseV1(data);
  return invalid('no PROXY protocol header');
}

/** Whether `data` and `prefix` agree on their common length. */
function startsWithPrefixOf(data: Buffer, prefix: Buffer): boolean {
  const n = Math.min(data.length, prefix.length);
  return data.subarray(0, n).equals(prefix.subarray(0, n));
}

const PORT = /^(?:0|[1-9][0-9]{0,4})$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
const IPV6 = /^[0-9A-Fa-f:.]{2,45}$/;

function parseV1(data: Buffer): ProxyHeaderResult {
  const end = data.indexOf('\r\n');
  if (end === -1) return data.length >= V1_MAX ? invalid('v1 header longer than 107 bytes') : INCOMPLETE;
  if (end + 2 > V1_MAX) return invalid('v1 header longer than 107 bytes');
  const parts = data.toString('latin1', 0, end).split(' ');
  if (parts[1] === 'UNKNOWN') return { kind: 'ok', length: end + 2, addresses: null };
  if (parts.length !== 6) return invalid('v1 header does not have 6 fields');
  const [, family, src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const ip = family === 'TCP4' ? IPV4 : family === 'TCP6' ? IPV6 : null;
  if (ip === null) return invalid(`v1 protocol "${family}" is neither TCP4 nor TCP6`);
  if (!ip.test(src) || !ip.test(dst) || (family === 'TCP6' && (!src.includes(':') || !dst.includes(':')))) return invalid('v1 address malformed');
  if (!PORT.test(sport) || !PORT.test(dport) || Number(sport) > 65535 || Number(dport) > 65535) return invalid('v1 port malformed');
  return {
    kind: 'ok',
    length: end + 2,
    addresses: { source: { address: src, port: Number(sport) }, destination: { address: dst, port: Number(dport) } },
  };
}

function parseV2(data: Buffer): ProxyHeaderResult {
  const verCmd = data[12] as number;
  if (verCmd >> 4 !== 2) return invalid('v2 version is not 2');
  const command = verCmd & 0x0f;
  if (command > 1) return invalid('v2 command is neither LOCAL nor PROXY');
  const family = data[13] as number;
  const length = data.readUInt16BE(14);
  const total = 16 + length;
  if (data.length < total) return INCOMPLETE;
  const body = data.subarray(16, total);
  // LOCAL (health checks of the balancer itself) and unspecified families: the peer's address.
  if (command === 0 || family >> 4 === 0) return { kind: 'ok', length: total, addresses: null };
  const transport = family & 0x0f;
  if (transport !== 1 && transport !== 2) return invalid('v2 transport is neither STREAM nor DGRAM');
  let addresses: ProxiedAddresses;
  let used: number;
  switch (family >> 4) {
    case 1: // AF_INET
      if (length < 12) return invalid('v2 IPv4 block truncated');
      addresses = {
        source: { address: ipv4(body, 0), port: body.readUInt16BE(8) },
        destination: { address: ipv4(body, 4), port: body.readUInt16BE(10) },
      };
      used = 12;
      break;
    case 2: // AF_INET6
      if (length < 36) return invalid('v2 IPv6 block truncated');
      addresses = {
        source: { address: ipv6(body, 0), port: body.readUInt16BE(32) },
        destination: { address: ipv6(body, 16), port: body.readUInt16BE(34) },
      };
      used = 36;
      break;
    case 3: // AF_UNIX: no address to tell
      if (length < 216) return invalid('v2 UNIX block truncated');
      return { kind: 'ok', length: total, addresses: null };
    default:
      return invalid('v2 address family unknown');
  }
  // TLVs (ALPN, authority, CRC, SSL, …) follow the addresses: each must fit, none is needed.
  let at = used;
  while (at < length) {
    if (at + 3 > length) return invalid('v2 TLV truncated');
    const size = body.readUInt16BE(at + 1);
    at += 3 + size;
    if (at > length) return invalid('v2 TLV truncated');
  }
  return { kind: 'ok', length: total, addresses };
}

function ipv4(b: Buffer, at: number): string {
  return `${b[at]}.${b[at + 1]}.${b[at + 2]}.${b[at + 3]}`;
}

/** Compressed (RFC 5952) form, as Node reports IPv6 peers; an IPv4-mapped address as IPv4. */
function ipv6(b: Buffer, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(b.readUInt16BE(at + i * 2));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `${b[at + 12]}.${b[at + 13]}.${b[at + 14]}.${b[at + 15]}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/**
 * The header `send_proxy_protocol` writes before anything else on an upstream connection.
 * `null` addresses (health checks: the connection is the proxy's own) give `PROXY UNKNOWN` (v1)
 * or the LOCAL command (v2). Mixed families are sent as IPv6, the IPv4 side mapped (`::ffff:`).
 */
export function formatProxyHeader(version: 'v1' | 'v2', a: ProxiedAddresses | null): Buffer {
  if (version === 'v1') {
    if (a === null) return Buffer.from('PROXY UNKNOWN\r\n', 'latin1');
    const { source, destination, v6 } = sameFamily(a);
    return Buffer.from(`PROXY ${v6 ? 'TCP6' : 'TCP4'} ${source} ${destination} ${a.source.port} ${a.destination.port}\r\n`, 'latin1');
  }
  if (a === null) return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])]);
  const { source, destination, v6 } = sameFamily(a);
  const body = Buffer.alloc(v6 ? 36 : 12);
  if (v6) {
    writeIpv6(body, 0, source);
    writeIpv6(body, 16, destination);
    body.writeUInt16BE(a.source.port, 32);
    body.writeUInt16BE(a.destination.port, 34);
  } else {
    source.split('.').forEach((n, i) => (body[i] = Number(n)));
    destination.split('.').forEach((n, i) => (body[4 + i] = Number(n)));
    body.writeUInt16BE(a.source.port, 8);
    body.writeUInt16BE(a.destination.port, 10);
  }
  const head = Buffer.from([0x21, v6 ? 0x21 : 0x11, 0x00, body.length]);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

function sameFamily(a: ProxiedAddresses): { source: string; destination: string; v6: boolean } {
  const sv6 = a.source.address.includes(':');
  const dv6 = a.destination.address.includes(':');
  if (sv6 === dv6) return { source: a.source.address, destination: a.destination.address, v6: sv6 };
  const mapped = (address: string, isV6: boolean): string => (isV6 ? address : `::ffff:${address}`);
  return { source: mapped(a.source.address, sv6), destination: mapped(a.destination.address, dv6), v6: true };
}

/** Writes an IPv6 address (`::` compression and a dotted IPv4 tail allowed) as 16 bytes. */
function writeIpv6(out: Buffer, at: number, address: string): void {
  let text = address;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted !== null) {
    const parts = (dotted[1] as string).split('.').map(Number);
    tail.push(((parts[0] as number) << 8) | (parts[1] as number), ((parts[2] as number) << 8) | (parts[3] as number));
    text = text.slice(0, -(dotted[1] as string).length) + '0:0';
  }
  const [head = '', rest] = text.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) || 0, at + i * 2));
  if (tail.length === 2) {
    out.writeUInt16BE(tail[0] as number, at + 12);
    out.writeUInt16BE(tail[1] as number, at + 14);
  }
}
