/** TLS termination options shared by http and tcp listeners: the first context and every swap on reload. */
import type { SecureContextOptions } from 'node:tls';
import type { TlsMaterial } from '../config/schema.js';

/** TLS 1.2 and newer only (SPEC §2); Node's default cipher list otherwise. */
export function secureContextOptions(material: TlsMaterial): SecureContextOptions {
  return { cert: material.cert, key: material.key, minVersion: 'TLSv1.2' };
}
