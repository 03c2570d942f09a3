/**
 * The path a route is chosen by (SPEC §5: routing cannot be bypassed by spelling). A backend
 * framework resolves `/%61dmin/`, `/x/../admin/`, `//admin/` and `/./admin/` to `/admin/`; so
 * must the router, or a route guarding `/admin/` is walked around. The request itself is
 * forwarded with its original target: only the choice of route uses this form.
 *
 * Normalisation, in this order:
 * 1. percent-encoded unreserved characters (RFC 3986 §2.3: ALPHA DIGIT - . _ ~) are decoded,
 *    hex case-insensitive (`%61` and `%6a`/`%6A`); every other escape stays encoded with its hex
 *    upper-cased (`%2f` ≡ `%2F`, RFC 3986 §6.2.2.1) — `%2F`, `%5C`, `%25` are never decoded, so
 *    nothing is decoded twice and no new `/` or `%` can appear; invalid escapes (`%zz`, a
 *    trailing `%`) stay as they are, and an escape that would complete one of them into a valid
 *    escape once decoded (`%%61a`) stays encoded;
 * 2. runs of `/` are merged;
 * 3. dot segments are removed (RFC 3986 §5.2.4); `..` never climbs above `/`.
 * Merging before removing dot segments is deliberate: `/a//../b` is `/b` to NGINX
 * (merge_slashes), to a POSIX file system and to Node's path.normalize, while plain RFC 3986
 * would make it `/a/b`. Routing by the former can only over-protect, never under-protect.
 * `\`, `;params` and letter case are left alone.
 *
 * Pure and allocation-free when the path is already normal (the common case): a scan decides
 * first whether anything would change.
 */

/**
 * What path prefixes are compared with, for an origin-form target: the target itself when its
 * path is already normal (query included: a path prefix holds no `?`, so `startsWith` can never
 * reach past the path into the query — and nothing is allocated), else the normal form of its
 * path (`/a/../b?q` → `/b`). `*` stays `*`.
 */
export function routingPath(target: string): string {
  let end = target.indexOf('?');
  if (end === -1) end = target.length;
  return needsNormalising(target, end) ? normalizePath(target.slice(0, end)) : target;
}

/** True when the path is already in the form {@link normalizePath} returns. */
export function isNormalPath(path: string): boolean {
  return !needsNormalising(path, path.length);
}

/** The normal form of an absolute path (one starting with `/`); other strings are returned unchanged. */
export function normalizePath(path: string): string {
  if (path.charCodeAt(0) !== SLASH || !needsNormalising(path, path.length)) return path;
  const decoded = decodeUnreserved(path);
  // Split on `/`: empty segments are merged slashes; `.`/`..` are dot segments. A path that
  // ends in `/`, `/.` or `/..` keeps its trailing slash (RFC 3986 §5.2.4: `/a/b/..` → `/a/`).
  const segments = decoded.split('/');
  const out: string[] = [];
  let trailing = false;
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i] as string;
    trailing = segment === '' || segment === '.' || segment === '..';
    if (segment === '..') out.pop();
    else if (!trailing) out.push(segment);
  }
  const joined = `/${out.join('/')}`;
  return trailing && out.length > 0 ? `${joined}/` : joined;
}

const SLASH = 0x2f;
const DOT = 0x2e;
const PERCENT = 0x25;

/** Whether `path[0, end)` would change under normalisation. No allocation. */
function needsNormalising(path: string, end: number): boolean {
  // Native searches first: most paths hold no `%`, `//` or `/.` at all.
  const from = Math.min(firstBefore(path, '%', end), firstBefore(path, '/.', end), firstBefore(path, '//', end));
  if (from === end) return false;
  for (let i = from; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === PERCENT) {
      if (i + 2 >= end) continue;
      const hi = hexValue(path.charCodeAt(i + 1));
      const lo = hexValue(path.charCodeAt(i + 2));
      if (hi === -1 || lo === -1) continue;
      // Up to the first change the output is the input, so the input's preceding characters are the output's.
      const decodes = isUnreserved(hi * 16 + lo) && !wouldFormEscape(hi * 16 + lo, path.charCodeAt(i - 1), path.charCodeAt(i - 2));
      if (decodes || isLowerHex(path.charCodeAt(i + 1)) || isLowerHex(path.charCodeAt(i + 2))) return true;
      i += 2;
    } else if (c === SLASH && i + 1 < end) {
      const next = path.charCodeAt(i + 1);
      if (next === SLASH) return true;
      if (next === DOT && isDotSegmentAt(path, i + 1, end)) return true;
    }
  }
  return false;
}

/** Index of the first `needle` in `path[0, end)`, or `end`. */
function firstBefore(path: string, needle: string, end: number): number {
  const at = path.indexOf(needle);
  return at === -1 || at >= end ? end : at;
}

/** `.` or `..` starting at `start` and ending at a `/` or at `end`. */
function isDotSegmentAt(path: string, start: number, end: number): boolean {
  let j = start + 1;
  if (j < end && path.charCodeAt(j) === DOT) j++;
  return j === end || path.charCodeAt(j) === SLASH;
}

/** One pass, escapes of unreserved characters decoded, the other valid ones upper-cased. */
function decodeUnreserved(path: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i + 2 < path.length; i++) {
    if (path.charCodeAt(i) !== PERCENT) continue;
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi === -1 || lo === -1) continue;
    const byte = hi * 16 + lo;
    out += path.slice(from, i);
    const decodes = isUnreserved(byte) && !wouldFormEscape(byte, out.charCodeAt(out.length - 1), out.charCodeAt(out.length - 2));
    out += decodes ? String.fromCharCode(byte) : path.slice(i, i + 3).toUpperCase();
    i += 2;
    from = i + 1;
  }
  return out + path.slice(from);
}

/**
 * Whether decoding `byte` after the output's last two characters (`prev1` last) would turn a
 * `%` left from an invalid escape into a valid one: `%%61a` must not become `%aa`, which would
 * read as byte 0xAA. Such an escape stays encoded; the normal form stays unambiguous and stable.
 */
function wouldFormEscape(byte: number, prev1: number, prev2: number): boolean {
  if (hexValue(byte) === -1) return false;
  return prev1 === PERCENT || (prev2 === PERCENT && hexValue(prev1) !== -1);
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

function isLowerHex(c: number): boolean {
  return c >= 0x61 && c <= 0x66;
}

/** RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === DOT || c === 0x5f || c === 0x7e;
}
