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
import type { TlsCertificate, TlsMaterial } from './schema.js';

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
  const material: TlsCertificate = { certFile, keyFile, cert: cert.text, key: key.text, names: serverNames(cert.text) };
  return { issues, material };
}

/**
 * The names a certificate serves by SNI: its DNS subject alternative names, lower-cased; a
 * certificate without any falls back to its subject CN (as Traefik does; browsers ignore the CN,
 * but a client that sends that name still gets the certificate it asked for).
 */
export function serverNames(pem: string): string[] {
  const x509 = new X509Certificate(pem);
  const names = (x509.subjectAltName ?? '')
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith('DNS:'))
    .map((entry) => entry.slice(4).toLowerCase());
  if (names.length > 0) return [...new Set(names)];
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.toLowerCase()];
}

interface Pair {
  readonly cert: string;
  readonly key: string;
  readonly at: PathSegment[];
}

/** The certificate/key pairs of a listener's `tls` value, wherever they are written. */
function pairsOf(tls: object, at: PathSegment[]): Pair[] | null {
  const { cert, key, certificates } = tls as { cert?: unknown; key?: unknown; certificates?: unknown };
  const valid = (c: unknown, k: unknown): c is string => typeof c === 'string' && typeof k === 'string' && c !== '' && k !== '';
  if (certificates !== undefined) {
    if (!Array.isArray(certificates)) return null;
    const pairs: Pair[] = [];
    for (const [i, entry] of certificates.entries()) {
      if (typeof entry !== 'object' || entry === null) return null;
      const { cert: c, key: k } = entry as { cert?: unknown; key?: unknown };
      if (!valid(c, k)) return null;
      pairs.push({ cert: c, key: k as string, at: [...at, 'certificates', i] });
    }
    return pairs.length === 0 ? null : pairs;
  }
  return valid(cert, key) ? [{ cert, key: key as string, at }] : null;
}

/** Loads a listener's certificates; with several, no name may be served by two of them. */
async function loadListener(pairs: readonly Pair[], baseDir: string): Promise<{ issues: PendingIssue[]; material?: TlsMaterial }> {
  const results = await Promise.all(pairs.map((p) => loadOne(p, baseDir, p.at)));
  const issues = results.flatMap((r) => r.issues);
  const certificates = results.map((r) => r.material).filter((m): m is TlsCertificate => m !== undefined);
  if (certificates.length !== pairs.length) return { issues };
  const owner = new Map<string, number>();
  certificates.forEach((certificate, i) => {
    for (const name of certificate.names) {
      const first = owner.get(name);
      if (first === undefined) owner.set(name, i);
      else issues.push({ path: [...(pairs[i] as Pair).at, 'cert'], message: `duplicate SNI name "${name}": certificates[${first}] already serves it` });
    }
  });
  if (issues.length > 0) return { issues };
  const first = certificates[0] as TlsCertificate;
  return { issues, material: { ...first, certificates } };
}

/** Loads the TLS files of every listener of the plain YAML value that names both. */
export async function loadTlsFiles(listeners: unknown, baseDir: string): Promise<TlsFiles> {
  const jobs: Promise<{ index: number; issues: PendingIssue[]; material?: TlsMaterial }>[] = [];
  (Array.isArray(listeners) ? listeners : []).forEach((listener: unknown, index) => {
    const tls = typeof listener === 'object' && listener !== null ? (listener as { tls?: unknown }).tls : undefined;
    if (typeof tls !== 'object' || tls === null) return;
    const pairs = pairsOf(tls, ['listeners', index, 'tls']);
    if (pairs === null) return;
    jobs.push(loadListener(pairs, baseDir).then((result) => ({ index, ...result })));
  });
  const results = await Promise.all(jobs);
  const material = new Map<number, TlsMaterial>();
  for (const result of results) if (result.material) material.set(result.index, result.material);
  return { issues: results.flatMap((r) => r.issues), material };
}
