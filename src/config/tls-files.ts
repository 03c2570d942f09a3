/**
 * Reads each listener's TLS certificate and key (paths relative to the config file's folder)
 * and checks that they load and belong together, so a bad pair fails `hotwarm check` and a
 * reload instead of the first handshake.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import type { PathSegment, PendingIssue } from './issues.js';
import type { TlsMaterial } from './schema.js';

export interface TlsFiles {
  readonly issues: readonly PendingIssue[];
  /** Material by listener index, for listeners whose files loaded and validated. */
  readonly material: ReadonlyMap<number, TlsMaterial>;
}

/** The OpenSSL reason (`no start line`) or Node's message, never a stack. */
function reasonOf(err: unknown): string {
  if (typeof err !== 'object' || err === null) return String(err);
  const { code, reason, message } = err as { code?: unknown; reason?: unknown; message?: unknown };
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  if (typeof reason === 'string') return reason;
  return typeof message === 'string' ? message : String(err);
}

/** `"certs/web.crt"`, plus where that is when it was relative. */
function shown(written: string, absolute: string): string {
  return isAbsolute(written) ? JSON.stringify(written) : `${JSON.stringify(written)} (${absolute})`;
}

async function read(file: string): Promise<{ ok: true; text: string } | { ok: false; reason: string }> {
  try {
    return { ok: true, text: await readFile(file, 'utf8') };
  } catch (err) {
    return { ok: false, reason: reasonOf(err) };
  }
}

function certProblem(cert: string): string | undefined {
  try {
    new X509Certificate(cert);
    return undefined;
  } catch (err) {
    const reason = reasonOf(err);
    return reason === 'no start line' ? 'no PEM certificate found' : reason;
  }
}

function keyProblem(key: string): string | undefined {
  try {
    createPrivateKey(key);
    return undefined;
  } catch (err) {
    const reason = reasonOf(err);
    if (/interrupted or cancelled|passphrase|bad decrypt/i.test(reason)) {
      return 'the key is encrypted; passphrase-protected keys are not supported';
    }
    return reason === 'unsupported' || reason === 'no start line' ? 'no PEM private key found' : reason;
  }
}

async function loadOne(tls: { cert: string; key: string }, baseDir: string, at: PathSegment[]) {
  const certFile = resolve(baseDir, tls.cert);
  const keyFile = resolve(baseDir, tls.key);
  const [cert, key] = await Promise.all([read(certFile), read(keyFile)]);
  const issues: PendingIssue[] = [];
  const certAt = [...at, 'cert'];
  const keyAt = [...at, 'key'];
  if (!cert.ok) issues.push({ path: certAt, message: `cannot read certificate file ${shown(tls.cert, certFile)}: ${cert.reason}` });
  if (!key.ok) issues.push({ path: keyAt, message: `cannot read key file ${shown(tls.key, keyFile)}: ${key.reason}` });
  if (!cert.ok || !key.ok) return { issues };

  const badCert = certProblem(cert.text);
  const badKey = keyProblem(key.text);
  if (badCert) issues.push({ path: certAt, message: `invalid certificate in ${shown(tls.cert, certFile)}: ${badCert}` });
  if (badKey) issues.push({ path: keyAt, message: `invalid private key in ${shown(tls.key, keyFile)}: ${badKey}` });
  if (badCert || badKey) return { issues };

  try {
    createSecureContext({ cert: cert.text, key: key.text, minVersion: 'TLSv1.2' });
  } catch (err) {
    const reason = reasonOf(err);
    const message = reason === 'key values mismatch'
      ? `private key ${shown(tls.key, keyFile)} does not match certificate ${shown(tls.cert, certFile)}`
      : `cannot use this certificate and key: ${reason}`;
    return { issues: [{ path: keyAt, message }] };
  }
  const material: TlsMaterial = { certFile, keyFile, cert: cert.text, key: key.text };
  return { issues, material };
}

/** Loads the TLS files of every listener of the plain YAML value that names both. */
export async function loadTlsFiles(listeners: unknown, baseDir: string): Promise<TlsFiles> {
  const jobs: Promise<{ index: number; issues: PendingIssue[]; material?: TlsMaterial }>[] = [];
  (Array.isArray(listeners) ? listeners : []).forEach((listener: unknown, index) => {
    const tls = typeof listener === 'object' && listener !== null ? (listener as { tls?: unknown }).tls : undefined;
    if (typeof tls !== 'object' || tls === null) return;
    const { cert, key } = tls as { cert?: unknown; key?: unknown };
    if (typeof cert !== 'string' || typeof key !== 'string' || cert === '' || key === '') return;
    jobs.push(loadOne({ cert, key }, baseDir, ['listeners', index, 'tls']).then((result) => ({ index, ...result })));
  });
  const results = await Promise.all(jobs);
  const material = new Map<number, TlsMaterial>();
  for (const result of results) if (result.material) material.set(result.index, result.material);
  return { issues: results.flatMap((r) => r.issues), material };
}
