/** Pure pieces of the web rules: prefix stripping, header rules, redirect locations. */
import t from 'tap';
import { applyRequestRules, applyResponseRules, backendTarget, compileHeaderRules, NO_RULES } from '../../../src/forward/route-rules.js';
import { httpsLocation, routeLocation } from '../../../src/forward/redirect.js';

const strip = (prefix: string) => ({ ...NO_RULES, stripPrefix: prefix });

t.test('backendTarget strips the prefix from the normalised path and keeps the query as sent', async (t) => {
  const cases: [string, string, string][] = [
    ['/api/', '/api/users?q=%2F&x', '/users?q=%2F&x'],
    ['/api/', '/api/', '/'],
    ['/api/', '/api/?a=1', '/?a=1'],
    ['/api/', '/%61pi//v1/../users', '/users'],
    ['/api', '/api/users', '/users'],
    ['/api', '/api', '/'],
    ['/api', '/apix', '/x'],
    ['/', '/anything?x', '/anything?x'],
  ];
  for (const [prefix, target, expected] of cases) t.equal(backendTarget(target, strip(prefix)), expected, `${prefix} ${target}`);
  t.equal(backendTarget('/a//b/../c?x', NO_RULES), '/a//b/../c?x', 'no strip: byte for byte');
});

t.test('header rules: set replaces, remove drops, case-insensitively', async (t) => {
  const rules = compileHeaderRules({ set: { 'X-Env': 'prod' }, remove: ['Server'] });
  const headers: Record<string, string | string[] | undefined> = { 'x-env': 'dev', server: 'x', other: 'o' };
  applyRequestRules(headers, rules);
  t.same(headers, { other: 'o', 'x-env': 'prod' });
  t.same(applyResponseRules(['Server', 'a', 'X-ENV', 'b', 'Set-Cookie', 'c', 'Set-Cookie', 'd'], rules), ['Set-Cookie', 'c', 'Set-Cookie', 'd', 'x-env', 'prod']);
  t.equal(compileHeaderRules({}), null, 'empty rules compile to nothing');
  const raw = ['a', 'b'];
  t.equal(applyResponseRules(raw, null), raw, 'no rules: the same array');
});

t.test('redirect locations', async (t) => {
  t.equal(httpsLocation('example.com:8080', '/a?b'), 'https://example.com/a?b');
  t.equal(httpsLocation('example.com', '*'), 'https://example.com/');
  t.equal(httpsLocation('[::1]:80', '/'), 'https://[::1]/');
  t.equal(httpsLocation(undefined, '/'), null);
  t.equal(httpsLocation('evil.com/x', '/'), null, 'a Host with a path is refused');
  t.equal(httpsLocation('a b', '/'), null);
  t.equal(routeLocation({ base: 'https://example.com/new', code: 308 }, '/x?y'), 'https://example.com/new/x?y');
  t.equal(routeLocation({ base: 'https://example.com', code: 301 }, '/'), 'https://example.com/');
});
