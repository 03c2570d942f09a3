/**
 * Several certificates on one TLS listener, chosen by SNI (SPEC §10): names from the SANs, a
 * wildcard for one label, the first certificate for no SNI or an unknown name; key mismatch and
 * duplicate names are config errors; certificates re-read on reload, a bad one fails the reload.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { parseConfig } from '../../src/config/load.js';
import { TestBackend } from '../helpers/backend.js';
import { leakCheck } from '../helpers/handles.js';
import { startProxy, writeConfig } from '../helpers/harness.js';
import { HTTP_CHECKS } from '../helpers/tunnels.js';

const run = promisify(execFile);

/** A self-signed EC certificate with these DNS SANs (none: CN only), as `<name>.crt` / `<name>.key`. */
async function certificate(dir: string, name: string, sans: readonly string[], cn = name): Promise<{ cert: string; key: string }> {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const san = sans.length === 0 ? [] : ['-addext', `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}`];
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', `/CN=${cn}`, '-days', '1', ...san, '-keyout', key, '-out', cert]);
  return { cert, key };
}

const serial = (file: string): string => new X509Certificate(readFileSync(file)).serialNumber;

/** The serial of the certificate the server presents for `servername` (undefined = no SNI). */
function presented(port: number, servername: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) });
    socket.once('secureConnect', () => {
      const s = socket.getPeerCertificate().serialNumber;
      socket.destroy();
      resolve(s);
    });
    socket.once('error', reject);
  });
}

const dir = t.testdir({});
const site = await certificate(dir, 'site', ['example.com', 'www.example.com']);
const other = await certificate(dir, 'other', ['*.other.test']);
const cnOnly = await certificate(dir, 'legacy', [], 'legacy.test');
const rotated = await certificate(dir, 'rotated', ['*.other.test', 'new.test']);
const twin = await certificate(dir, 'twin', ['www.example.com']);

function config(certificates: readonly { cert: string; key: string }[], backend: string): Record<string, unknown> {
  return {
    log: { level: 'debug' },
    shutdown_timeout: '1s',
    listeners: [{ name: 'web', listen: '127.0.0.1:0', tls: { certificates }, pool: 'app' }],
    pools: { app: { health_check: HTTP_CHECKS, backends: [{ name: 'app', address: backend }] } },
  };
}

t.test('the certificate is chosen by SNI; no SNI or an unknown name gets the first', async (t) => {
  const leaks = leakCheck();
  const backend = await new TestBackend({ name: 'app' }).start();
  const h = await startProxy(config([site, other, cnOnly], backend.address));
  const port = h.port();
  t.equal(await presented(port, 'example.com'), serial(site.cert));
  t.equal(await presented(port, 'WWW.Example.com'), serial(site.cert), 'names compare case-insensitively');
  t.equal(await presented(port, 'a.other.test'), serial(other.cert), 'wildcard SAN');
  t.equal(await presented(port, 'a.b.other.test'), serial(site.cert), 'a wildcard matches one label only');
  t.equal(await presented(port, 'other.test'), serial(site.cert), 'nor the bare domain');
  t.equal(await presented(port, 'legacy.test'), serial(cnOnly.cert), 'a certificate without SANs serves its CN');
  t.equal(await presented(port, 'unknown.test'), serial(site.cert), 'unknown name → first certificate');
  t.equal(await presented(port, undefined), serial(site.cert), 'no SNI → first certificate');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});

t.test('key mismatch and duplicate SNI names are config errors with line:col', async (t) => {
  const load = (certificates: readonly { cert: string; key: string }[]) =>
    parseConfig(stringify(config(certificates, '127.0.0.1:1')), join(dir, 'proxy.yaml'), { env: {} }).then(
      () => [],
      (err: { issues?: { line: number; col: number; path: string; message: string }[] }) => err.issues ?? [],
    );
  const mismatch = await load([site, { cert: other.cert, key: site.key }]);
  t.equal(mismatch.length, 1);
  t.equal(mismatch[0]?.path, 'listeners[0].tls.certificates[1].key');
  t.match(mismatch[0]?.message, /does not match certificate/);
  t.ok((mismatch[0]?.line ?? 0) > 1 && (mismatch[0]?.col ?? 0) > 1, 'positioned');
  const duplicate = await load([site, twin]);
  t.equal(duplicate.length, 1);
  t.equal(duplicate[0]?.path, 'listeners[0].tls.certificates[1].cert');
  t.equal(duplicate[0]?.message, 'duplicate SNI name "www.example.com": certificates[0] already serves it');
  const both = await parseConfig(
    stringify({ listeners: [{ name: 'web', listen: '127.0.0.1:0', tls: { cert: site.cert, key: site.key, certificates: [site] }, pool: 'app' }], pools: { app: { backends: [{ name: 'a', address: '127.0.0.1:1' }] } } }),
    'x.yaml',
    { env: {} },
  ).then(() => [], (err: { issues?: { path: string; message: string }[] }) => err.issues ?? []);
  t.match(both, [{ path: 'listeners[0].tls.cert', message: 'use either cert/key or certificates, not both' }]);
});

t.test('certificates are re-read on reload; a bad one fails the reload and the old ones stay', async (t) => {
  const leaks = leakCheck();
  const backend = await new TestBackend({ name: 'app' }).start();
  const files = t.testdir({});
  const live = { cert: join(files, 'live.crt'), key: join(files, 'live.key') };
  copyFileSync(other.cert, live.cert);
  copyFileSync(other.key, live.key);
  const file = join(files, 'proxy.yaml');
  const h = await startProxy(config([site, live], backend.address), { file });
  const port = h.port();
  t.equal(await presented(port, 'a.other.test'), serial(other.cert));

  // Rotated at the same paths: picked up by the reload.
  copyFileSync(rotated.cert, live.cert);
  copyFileSync(rotated.key, live.key);
  const ok = await h.proxy.reload();
  t.equal(ok.ok, true, 'reload ok');
  t.match(ok.changes.join('\n'), /tls\.certificates .*live\.crt → .*live\.crt \(new content\)/, 'the change is named');
  t.equal(await presented(port, 'a.other.test'), serial(rotated.cert), 'the new certificate is served');
  t.equal(await presented(port, 'new.test'), serial(rotated.cert), 'with its new names');

  // A certificate whose key does not match: the reload fails, nothing changes.
  copyFileSync(other.cert, live.cert);
  const bad = await h.proxy.reload();
  t.equal(bad.ok, false, 'reload refused');
  t.equal(await presented(port, 'new.test'), serial(rotated.cert), 'the running certificates stay');
  writeConfig(file, config([site, rotated], backend.address));
  t.equal((await h.proxy.reload()).ok, true, 'a good file reloads again');
  await h.stop();
  await backend.close();
  await leaks.assertClean(t);
});
