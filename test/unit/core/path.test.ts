/**
 * The routing path (SPEC §5: routing cannot be bypassed by spelling): RFC 3986 §5.2.4 dot-segment
 * removal with its examples, unreserved escapes decoded and the rest kept, slashes merged, and a
 * seeded fuzz that spells protected prefixes every way a backend would still resolve to them and
 * checks that the router answers as for the canonical path.
 */
import t from 'tap';
import { isNormalPath, normalizePath, routingPath } from '../../../src/core/path.js';
import { RouteTable } from '../../../src/core/router.js';

t.test('RFC 3986 §5.2.4: remove_dot_segments examples', async (t) => {
  // The section's two worked examples (the second one made absolute: we only see absolute paths).
  t.equal(normalizePath('/a/b/c/./../../g'), '/a/g');
  t.equal(normalizePath('/mid/content=5/../6'), '/mid/6');
});

t.test('RFC 3986 §5.4: the merged paths of the normal and abnormal examples', async (t) => {
  // Base "/b/c/d;p": each reference merged with the base path, before dot-segment removal.
  const cases: [string, string][] = [
    ['/b/c/g', '/b/c/g'], // "g"
    ['/b/c/./g', '/b/c/g'], // "./g"
    ['/b/c/g/', '/b/c/g/'], // "g/"
    ['/b/c/.', '/b/c/'], // "."
    ['/b/c/./', '/b/c/'], // "./"
    ['/b/c/..', '/b/'], // ".."
    ['/b/c/../', '/b/'], // "../"
    ['/b/c/../g', '/b/g'], // "../g"
    ['/b/c/../..', '/'], // "../.."
    ['/b/c/../../', '/'], // "../../"
    ['/b/c/../../g', '/g'], // "../../g"
    ['/b/c/../../../g', '/g'], // abnormal: "../../../g" never climbs above "/"
    ['/b/c/../../../../g', '/g'], // "../../../../g"
    ['/./g', '/g'], // "/./g"
    ['/../g', '/g'], // "/../g"
    ['/b/c/g.', '/b/c/g.'], // "g."
    ['/b/c/.g', '/b/c/.g'], // ".g"
    ['/b/c/g..', '/b/c/g..'], // "g.."
    ['/b/c/..g', '/b/c/..g'], // "..g"
    ['/b/c/./../g', '/b/g'], // "./../g"
    ['/b/c/./g/.', '/b/c/g/'], // "./g/."
    ['/b/c/g/./h', '/b/c/g/h'], // "g/./h"
    ['/b/c/g/../h', '/b/c/h'], // "g/../h"
    ['/b/c/g;x=1/./y', '/b/c/g;x=1/y'], // "g;x=1/./y"
    ['/b/c/g;x=1/../y', '/b/c/y'], // "g;x=1/../y"
  ];
  for (const [merged, want] of cases) t.equal(normalizePath(merged), want, `${merged} → ${want}`);
});

t.test('percent-encoded unreserved characters are decoded, everything else is kept', async (t) => {
  const cases: [string, string][] = [
    ['/%61dmin/', '/admin/'],
    ['/%61%64%6D%69%6e/', '/admin/'], // hex case-insensitive
    ['/%41', '/A'], // case of the decoded letter kept: matching is case-sensitive
    ['/a%2Db%2E%5Fc%7E', '/a-b._c~'],
    ['/a%2Fb', '/a%2Fb'], // encoded slash stays encoded
    ['/a%2fb', '/a%2Fb'], // its hex upper-cased (RFC 3986 §6.2.2.1)
    ['/a%5Cb', '/a%5Cb'], // encoded backslash stays
    ['/a\\b', '/a\\b'], // backslash stays a backslash
    ['/a%20b', '/a%20b'], // reserved / other characters stay encoded
    ['/%2561', '/%2561'], // no double decoding: %25 is "%"
    ['/%zz/%4', '/%zz/%4'], // invalid escapes stay as they are
    ['/x%', '/x%'],
    ['/%%61a', '/%%61a'], // decoding would make "%aa" out of an invalid "%": kept encoded
    ['/%a%62', '/%a%62'],
    ['/%%65x', '/%%65x'],
    ['/%%30', '/%%30'],
    ['/%%67', '/%g'], // "g" is not a hex digit: no escape can form
    ['/%%6e', '/%n'],
    ['/%2e%2E/admin', '/admin'], // encoded dots are dots: then dot segments go
    ['/x/.%2e/admin/', '/admin/'],
    ['/x/%2e/admin', '/x/admin'],
    ['/%2e%2e%2fadmin', '/..%2Fadmin'], // ".." + encoded slash is one segment, not a dot segment
  ];
  for (const [path, want] of cases) t.equal(normalizePath(path), want, `${path} → ${want}`);
});

t.test('runs of slashes are merged, before dot segments are removed', async (t) => {
  t.equal(normalizePath('//admin//x///'), '/admin/x/');
  t.equal(normalizePath('/a//../b'), '/b', 'as NGINX and a file system resolve it');
  t.equal(normalizePath('/a/..//b'), '/b');
  t.equal(normalizePath('///'), '/');
});

t.test('routingPath: the query is not normalised; already-normal targets are returned as they are', async (t) => {
  t.equal(routingPath('/a/../b?x=/admin/../..'), '/b');
  t.equal(routingPath('/a/b?x=/../%61'), '/a/b?x=/../%61', 'a normal path keeps its query (prefixes hold no "?")');
  const normal = '/api/v1/users/42;v=1/a%20b%2F.well-known/.x/..y';
  t.equal(routingPath(normal), normal);
  t.ok(isNormalPath(normal));
  t.equal(routingPath('*'), '*');
  for (const path of ['/a//b', '/a/./b', '/a/../b', '/a/.', '/a/..', '/%61', '/%2f']) t.notOk(isNormalPath(path), path);
});

/** mulberry32: a small seeded generator, so that a failing case can be replayed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let r = Math.imul(a ^ (a >>> 15), 1 | a);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

const UNRESERVED = /[A-Za-z0-9._~-]/;

/** A spelling of one character: itself, or its escape in upper or lower hex when unreserved. */
function spellChar(c: string, random: () => number): string {
  if (!UNRESERVED.test(c) || random() < 0.6) return c;
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${random() < 0.5 ? hex.toUpperCase() : hex.toLowerCase()}`;
}

function spellSegment(segment: string, random: () => number): string {
  return [...segment].map((c) => spellChar(c, random)).join('');
}

function slashes(random: () => number): string {
  return '/'.repeat(random() < 0.7 ? 1 : 2 + Math.floor(random() * 3));
}

/**
 * Another spelling of a canonical path (`/a/b/c`): characters escaped, slashes doubled, `.`
 * segments inserted, detours `x/..` inserted (with their own spellings), `..` at the root.
 */
function respell(canonical: string, random: () => number): string {
  const segments = canonical.split('/').slice(1);
  const trailing = canonical.endsWith('/');
  if (trailing) segments.pop();
  let out = '';
  const noise = (): void => {
    const roll = random();
    if (roll < 0.15) out += slashes(random) + spellSegment('.', random);
    else if (roll < 0.3) out += slashes(random) + spellSegment(`d${Math.floor(random() * 99)}`, random) + slashes(random) + spellSegment('..', random);
    else if (roll < 0.36 && out === '') out += slashes(random) + spellSegment('..', random);
  };
  for (const segment of segments) {
    noise();
    out += slashes(random) + spellSegment(segment, random);
  }
  // A dot segment at the very end leaves a trailing slash (RFC 3986): only where there is one.
  if (trailing) {
    noise();
    out += slashes(random);
  }
  return out === '' ? '/' : out;
}

t.test('fuzz: every spelling of a path is routed as the path itself', async (t) => {
  const table = new RouteTable([
    { pathPrefix: '/admin/', target: 'admin' },
    { pathPrefix: '/api/v1/internal', target: 'internal' },
    { pathPrefix: '/static/', target: 'static' },
    { target: 'app' },
  ]);
  const canonical = [
    '/admin/', '/admin/users', '/admin/users/42/delete', '/api/v1/internal', '/api/v1/internal/x',
    '/api/v1/internals', '/static/app.js', '/public/index.html', '/', '/adm', '/api/v1/', '/Admin/',
  ];
  const seed = Number(process.env.FUZZ_SEED ?? 12);
  const random = seeded(seed);
  let checked = 0;
  let differing = 0;
  const failures: string[] = [];
  for (let round = 0; round < 400; round++) {
    for (const path of canonical) {
      const spelling = respell(path, random);
      const query = random() < 0.3 ? '?next=/admin/' : '';
      checked++;
      if (spelling !== path) differing++;
      const want = table.match('h', path);
      const got = table.match('h', spelling + query);
      if (got !== want) failures.push(`${spelling}${query}: ${String(got)} (want ${String(want)} as ${path})`);
      if (normalizePath(spelling) !== path) failures.push(`${spelling} normalises to ${normalizePath(spelling)}, not ${path}`);
    }
  }
  t.strictSame(failures.slice(0, 10), [], `seed ${seed}: every spelling routed as its canonical path`);
  t.ok(differing > checked * 0.8, `${differing} of ${checked} spellings differ from the canonical path`);
});

t.test('case stays significant and %2F is not a slash', async (t) => {
  const table = new RouteTable([{ pathPrefix: '/admin/', target: 'admin' }, { target: 'app' }]);
  t.equal(table.match('h', '/ADMIN/'), 'app');
  t.equal(table.match('h', '/%41dmin/'), 'app', '%41 is A, not a');
  t.equal(table.match('h', '/admin%2Fx'), 'app');
  t.equal(table.match('h', '/admin\\x'), 'app');
  t.equal(table.match('h', '/x/..%2Fadmin/'), 'app', '..%2F is not a dot segment');
  t.equal(table.match('h', '/admin'), 'app', 'the prefix /admin/ needs its slash');
  t.equal(table.match('h', '/admin?/'), 'app', 'a prefix is not matched into the query');
  t.equal(table.match('h', '/a/../admin?/'), 'app', 'nor after normalising');
  t.equal(table.match('h', '/admin/?q=1'), 'admin');
});

t.test('fuzz: the normal form is normal, stable, and never longer than the path', async (t) => {
  const random = seeded(Number(process.env.FUZZ_SEED ?? 12) + 1);
  const pieces = ['/', '//', '.', '..', 'a', 'Z', '%2e', '%2E', '%2f', '%2F', '%5c', '\\', '%25', '%61', '%zz', '%', ';p=1', '-', '~', '%7e', '%20'];
  const failures: string[] = [];
  for (let i = 0; i < 5_000; i++) {
    let path = '/';
    const length = 1 + Math.floor(random() * 10);
    for (let j = 0; j < length; j++) path += pieces[Math.floor(random() * pieces.length)];
    const once = normalizePath(path);
    if (!isNormalPath(once)) failures.push(`${path} → ${once} is not normal`);
    if (normalizePath(once) !== once) failures.push(`${path} → ${once} → ${normalizePath(once)}`);
    if (once.length > path.length) failures.push(`${path} → ${once} grew`);
    if (!once.startsWith('/') || once.includes('//')) failures.push(`${path} → ${once}`);
  }
  t.strictSame(failures.slice(0, 10), []);
});
