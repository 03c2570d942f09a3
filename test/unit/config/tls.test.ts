import { execFile } from 'node:child_process';
import { copyFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { parseConfig } from '../../../src/config/load.js';
import { issuesOf, lines, row } from '../../helpers/config.js';

const run = promisify(execFile);

/** A self-signed certificate and its key, written as `<name>.crt` / `<name>.key` in `dir`. */
async function selfSigned(dir: string, name: string): Promise<void> {
  await run('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
  ]);
}

/** A config whose only listener uses `cert` and `key`; `tls:` is on line 5, cert at col 18. */
const withTls = (cert: string, key: string): string =>
  lines(
    'listeners:',
    '  - name: web',
    '    listen: 127.0.0.1:8443',
    '    pool: app',
    `    tls: { cert: ${cert}, key: ${key} }`,
    'pools:',
    '  app:',
    '    backends:',
    '      - { name: a, address: 127.0.0.1:3001 }',
  );
const keyCol = (cert: string): number => 18 + cert.length + 7;

t.test('TLS files', async (t) => {
  const dir = t.testdir({ certs: {}, 'garbage.pem': 'not a certificate\n' });
  const certs = join(dir, 'certs');
  await selfSigned(certs, 'web');
  await selfSigned(certs, 'other');
  await run('openssl', ['genpkey', '-algorithm', 'RSA', '-aes256', '-pass', 'pass:secret', '-out', join(certs, 'encrypted.key')]);
  const file = join(dir, 'proxy.yaml');
  const at = (cert: string, key: string) => ({ cert: `5:18 listeners[0].tls.cert: `, key: `5:${keyCol(cert)} listeners[0].tls.key: ` });

  t.test('a valid pair is read relative to the config file and kept as TlsMaterial', async (t) => {
    const config = await parseConfig(withTls('certs/web.crt', 'certs/web.key'), file, { env: {} });
    const tls = config.listeners[0]?.tls;
    t.equal(tls?.certFile, join(certs, 'web.crt'));
    t.equal(tls?.keyFile, join(certs, 'web.key'));
    t.match(tls?.cert, /^-----BEGIN CERTIFICATE-----/);
    t.match(tls?.key, /^-----BEGIN PRIVATE KEY-----/);
    t.ok(Object.isFrozen(tls));
  });

  t.test('absolute paths are used as they are', async (t) => {
    const config = await parseConfig(withTls(join(certs, 'web.crt'), join(certs, 'web.key')), 'elsewhere/proxy.yaml', { env: {} });
    t.equal(config.listeners[0]?.tls?.certFile, join(certs, 'web.crt'));
  });

  t.test('files that cannot be read', async (t) => {
    const issues = await issuesOf(withTls('certs/missing.crt', 'certs'), { file });
    const p = at('certs/missing.crt', 'certs');
    t.strictSame(issues.map(row), [
      `${p.cert}cannot read certificate file "certs/missing.crt" (${join(certs, 'missing.crt')}): ENOENT`,
      `${p.key}cannot read key file "certs" (${certs}): EISDIR`,
    ]);
  });

  t.test('a file that is not a certificate, a key that is not a key', async (t) => {
    const issues = await issuesOf(withTls('garbage.pem', 'certs/web.crt'), { file });
    const p = at('garbage.pem', 'certs/web.crt');
    t.strictSame(issues.map(row), [
      `${p.cert}invalid certificate in "garbage.pem" (${join(dir, 'garbage.pem')}): no PEM certificate found`,
      `${p.key}invalid private key in "certs/web.crt" (${join(certs, 'web.crt')}): no PEM private key found`,
    ]);
  });

  t.test('a key that does not belong to the certificate', async (t) => {
    const issues = await issuesOf(withTls('certs/web.crt', 'certs/other.key'), { file });
    const p = at('certs/web.crt', 'certs/other.key');
    t.strictSame(issues.map(row), [
      `${p.key}private key "certs/other.key" (${join(certs, 'other.key')}) does not match certificate "certs/web.crt" (${join(certs, 'web.crt')})`,
    ]);
  });

  t.test('an encrypted key', async (t) => {
    const issues = await issuesOf(withTls('certs/web.crt', 'certs/encrypted.key'), { file });
    t.equal(issues.length, 1);
    t.equal(issues[0]?.path, 'listeners[0].tls.key');
    t.match(issues[0]?.message, /the key is encrypted; passphrase-protected keys are not supported$/);
  });

  t.test('TLS problems are reported with the other errors of the file', async (t) => {
    const text = withTls('certs/nope.crt', 'certs/web.key').replace('pool: app', 'pool: nope');
    const issues = await issuesOf(text, { file });
    t.strictSame(issues.map((i) => i.path), ['listeners[0].pool', 'listeners[0].tls.cert']);
  });

  t.test('the files are re-read on every load', async (t) => {
    await copyFile(join(certs, 'web.crt'), join(certs, 'swap.crt'));
    await copyFile(join(certs, 'web.key'), join(certs, 'swap.key'));
    const first = await parseConfig(withTls('certs/swap.crt', 'certs/swap.key'), file, { env: {} });
    await copyFile(join(certs, 'other.crt'), join(certs, 'swap.crt'));
    await copyFile(join(certs, 'other.key'), join(certs, 'swap.key'));
    const second = await parseConfig(withTls('certs/swap.crt', 'certs/swap.key'), file, { env: {} });
    t.not(first.listeners[0]?.tls?.cert, second.listeners[0]?.tls?.cert);
    await writeFile(join(certs, 'swap.key'), '');
    const issues = await issuesOf(withTls('certs/swap.crt', 'certs/swap.key'), { file });
    t.equal(issues[0]?.path, 'listeners[0].tls.key');
  });
});
