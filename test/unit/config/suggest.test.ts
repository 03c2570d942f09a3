import t from 'tap';
import { configSchema } from '../../../src/config/schema.js';
import { closestKey, editDistance, knownKeys } from '../../../src/config/suggest.js';

t.test('editDistance counts a swap of neighbours as one edit', async (t) => {
  t.equal(editDistance('weight', 'weight'), 0);
  t.equal(editDistance('wieght', 'weight'), 1);
  t.equal(editDistance('weigt', 'weight'), 1);
  t.equal(editDistance('intervall', 'interval'), 1);
  t.equal(editDistance('abc', 'xyz'), 3);
  t.equal(editDistance('', 'ab'), 2);
});

t.test('closestKey: at most two edits away, one for short keys', async (t) => {
  t.equal(closestKey('wieght', ['name', 'address', 'weight', 'role']), 'weight');
  t.equal(closestKey('adress', ['name', 'address', 'weight']), 'address');
  t.equal(closestKey('colour', ['name', 'address', 'weight']), undefined);
  t.equal(closestKey('tsl', ['tls', 'ttl']), 'tls', 'a swap in a short key');
  t.equal(closestKey('ab', ['tls']), undefined, 'two edits on a short key is too far');
});

t.test('knownKeys follows the schema through lists, records and wrappers', async (t) => {
  t.ok(knownKeys(configSchema, []).includes('listeners'));
  t.ok(knownKeys(configSchema, ['pools', 'app', 'backends', 0]).includes('weight'));
  t.ok(knownKeys(configSchema, ['pools', 'app', 'health_check']).includes('interval'));
  t.ok(knownKeys(configSchema, ['listeners', 0]).includes('listen'));
  t.strictSame(knownKeys(configSchema, ['nowhere', 'at', 'all']), []);
});
