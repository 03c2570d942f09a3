/**
 * Sticky sessions at the exchange (SPEC §10): read the pool's affinity cookie, send the request
 * where the pool says its session lives, and tell the exchange whether the response must carry
 * a new cookie. The decision itself is the core's (core/pool.ts `affinity`).
 */
import type { UpstreamBackend } from '../upstream/backend.js';
import type { StickyPool } from '../upstream/contracts.js';

export type { StickyPool } from '../upstream/contracts.js';

export interface StickyChoice {
  /** The backend the session lives on (first attempt only; a retry may go elsewhere). */
  readonly preferred: UpstreamBackend | null;
  /** Whether the response sets a cookie for the backend that answers it. */
  readonly issue: boolean;
}

const ISSUE: StickyChoice = Object.freeze({ preferred: null, issue: true });
const KEEP: StickyChoice = Object.freeze({ preferred: null, issue: false });

/** null when the pool is not sticky. */
export function chooseSticky(pool: StickyPool, cookieHeader: string | undefined): StickyChoice | null {
  const sticky = pool.sticky;
  if (sticky === null) return null;
  const token = cookieHeader === undefined ? undefined : cookieValue(cookieHeader, sticky.cookie);
  if (token === undefined) return ISSUE;
  const affinity = pool.affinity(token);
  switch (affinity.kind) {
    case 'backend':
      return { preferred: affinity.backend, issue: false };
    case 'busy':
      return KEEP;
    case 'lost':
      return ISSUE;
  }
}

/** The value of cookie `name` in a Cookie header (the first, as browsers send the most specific first). */
export function cookieValue(header: string, name: string): string | undefined {
  let at = 0;
  while (at < header.length) {
    let end = header.indexOf(';', at);
    if (end === -1) end = header.length;
    const eq = header.indexOf('=', at);
    if (eq !== -1 && eq < end && header.slice(at, eq).trim() === name) return header.slice(eq + 1, end).trim();
    at = end + 1;
  }
  return undefined;
}

/** `Set-Cookie` value naming `token`: a session cookie, HttpOnly, Path=/, SameSite=Lax, Secure over TLS. */
export function stickyCookie(name: string, token: string, secure: boolean): string {
  return `${name}=${token}; Path=/; HttpOnly; SameSite=Lax${secure ? '; Secure' : ''}`;
}
