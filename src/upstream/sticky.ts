/**
 * Sticky-session tokens (SPEC §10): a cookie names its backend by an opaque token, a keyed MAC
 * (HMAC-SHA256) of the backend's identity — pool, name and address — so it reveals neither name
 * nor address and cannot be forged without the key. The same backend under the same key gives the
 * same token, so tokens stay valid across reloads (and across workers sharing the key) while the
 * backend exists; a backend replaced under its name (new address) gets new tokens.
 */
import { createHmac, randomBytes } from 'node:crypto';

/** 128 bits of MAC, base64url: 22 characters, cookie-safe. */
const TOKEN_LENGTH = 22;

export function stickyToken(key: Buffer, pool: string, name: string, address: string): string {
  return createHmac('sha256', key).update(`${pool}\n${name}\n${address}`).digest('base64url').slice(0, TOKEN_LENGTH);
}

/** A fresh random key, for pools whose `sticky` names no `secret_env`. */
export function randomStickyKey(): Buffer {
  return randomBytes(32);
}

/** Token ↔ backend name for one pool's members; rebuilt when the members or the key change. */
export class StickyTokens {
  readonly cookie: string;
  readonly #byToken = new Map<string, string>();
  readonly #byName = new Map<string, string>();

  constructor(key: Buffer, cookie: string, pool: string, members: readonly { readonly name: string; readonly address: string }[]) {
    this.cookie = cookie;
    for (const m of members) {
      const token = stickyToken(key, pool, m.name, m.address);
      this.#byToken.set(token, m.name);
      this.#byName.set(m.name, token);
    }
  }

  /** The backend a token names, or undefined (forged, or its backend is gone). */
  backendOf(token: string): string | undefined {
    return this.#byToken.get(token);
  }

  tokenOf(name: string): string | undefined {
    return this.#byName.get(name);
  }
}
