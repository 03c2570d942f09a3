/** The readable zod messages, for issue kinds the hotwarm schema does not word itself. */
import t from 'tap';
import { z } from 'zod';
import { describeValue, fromZodIssues, readableError } from '../../../src/config/messages.js';

function messageOf(schema: z.ZodType, input: unknown): string[] {
  const result = schema.safeParse(input, { error: readableError });
  return result.success ? [] : result.error.issues.map((issue) => issue.message);
}

t.test('readableError', async (t) => {
  const cases: [string, z.ZodType, unknown, string[]][] = [
    ['missing key', z.object({ a: z.string() }), {}, ['missing required key']],
    ['wrong type', z.number(), 'x', ['expected a number, got "x"']],
    ['an unnamed type', z.date(), 5, ['expected date, got 5']],
    ['enum', z.enum(['a', 'b']), 'c', ['must be one of: a, b']],
    ['inclusive bounds', z.number().min(2).max(5), 1, ['must be at least 2']],
    ['inclusive upper bound', z.number().max(5), 6, ['must be at most 5']],
    ['exclusive bounds', z.number().gt(0), 0, ['must be greater than 0']],
    ['exclusive upper bound', z.number().lt(10), 10, ['must be less than 10']],
    ['empty list', z.array(z.number()).min(1), [], ['must not be empty']],
    ['short list', z.array(z.number()).min(2), [1], ['must have at least 2 items']],
    ['long list', z.array(z.number()).max(1), [1, 2], ['must have at most 1 item']],
    ['empty string', z.string().min(1), '', ['must not be empty']],
    ['short string', z.string().min(3), 'ab', ['must be at least 3 characters long']],
    ['long string', z.string().max(2), 'abc', ['must be at most 2 characters long']],
    ['prefix', z.string().startsWith('/'), 'x', ['must start with "/"']],
    ['pattern', z.string().regex(/^a+$/), 'b', ['must match /^a+$/']],
    ['a format', z.email(), 'b', ['invalid email']],
    ['multiple', z.number().multipleOf(5), 7, ['must be a multiple of 5']],
    ['unknown keys', z.strictObject({}), { x: 1 }, ['unknown key']],
    ['record key', z.record(z.string().regex(/^a$/, 'only a'), z.number()), { b: 1 }, ['invalid name: only a']],
    ['union', z.union([z.string(), z.number()]), true, ['invalid value']],
  ];
  for (const [name, schema, input, expected] of cases) t.strictSame(messageOf(schema, input), expected, name);
});

t.test('messages written in the schema win', async (t) => {
  t.strictSame(messageOf(z.string().min(2, 'too short, really'), 'a'), ['too short, really']);
});

t.test('describeValue', async (t) => {
  t.equal(describeValue(undefined), 'an empty value');
  t.equal(describeValue(null), 'an empty value');
  t.equal(describeValue([]), 'a list');
  t.equal(describeValue({}), 'a mapping');
  t.equal(describeValue(false), 'false');
  t.equal(describeValue(2.5), '2.5');
  t.equal(describeValue('x'.repeat(50)), `"${'x'.repeat(37)}..."`);
  t.equal(describeValue(10n), 'bigint');
});

t.test('fromZodIssues: one issue per unknown key, at the key', async (t) => {
  const result = z.strictObject({ a: z.object({}).strict() }).safeParse({ a: { x: 1, y: 2 } }, { error: readableError });
  t.notOk(result.success);
  if (result.success) return;
  t.strictSame(fromZodIssues(result.error.issues), [
    { path: ['a', 'x'], message: 'unknown key', at: 'key' },
    { path: ['a', 'y'], message: 'unknown key', at: 'key' },
  ]);
});
