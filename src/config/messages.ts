/**
 * Turns zod's issues into messages an operator understands ("must be one of: hot, warm",
 * "missing required key") and into {@link PendingIssue}s that point at the right YAML node.
 * Messages written in the schema itself take precedence over {@link readableError}.
 */
import type { z } from 'zod';
import { echoesTypo, type PathSegment, type PendingIssue } from './issues.js';

/** A short rendering of a YAML value for "got …" in messages. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

const EXPECTED: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

type RawIssue = z.core.$ZodRawIssue;

function bound(value: number | bigint, inclusive: boolean | undefined, atLeast: boolean): string {
  if (inclusive === false) return `${atLeast ? 'greater' : 'less'} than ${value}`;
  return `${atLeast ? 'at least' : 'at most'} ${value}`;
}

function sizeMessage(origin: string, limit: number | bigint, inclusive: boolean | undefined, atLeast: boolean): string {
  if (origin === 'array') {
    if (atLeast && Number(limit) === 1) return 'must not be empty';
    return `must have ${atLeast ? 'at least' : 'at most'} ${limit} item${Number(limit) === 1 ? '' : 's'}`;
  }
  if (origin === 'string') {
    if (atLeast && Number(limit) === 1) return 'must not be empty';
    return `must be ${atLeast ? 'at least' : 'at most'} ${limit} characters long`;
  }
  return `must be ${bound(limit, inclusive, atLeast)}`;
}

/** Per-parse zod error map: readable text for every issue the schema did not word itself. */
export function readableError(issue: RawIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'missing required key';
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      return `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'invalid_value':
      return `must be one of: ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      return sizeMessage(issue.origin, issue.minimum, issue.inclusive, true);
    case 'too_big':
      return sizeMessage(issue.origin, issue.maximum, issue.inclusive, false);
    case 'invalid_format':
      if (issue.format === 'starts_with' && typeof issue['prefix'] === 'string') {
        return `must start with ${JSON.stringify(issue['prefix'])}`;
      }
      return issue.format === 'regex' && issue.pattern ? `must match ${issue.pattern}` : `invalid ${issue.format}`;
    case 'unrecognized_keys':
      return 'unknown key';
    case 'invalid_key':
      return `invalid name: ${issue.issues[0]?.message ?? 'not allowed here'}`;
    case 'not_multiple_of':
      return `must be a multiple of ${issue.divisor}`;
    default:
      return 'invalid value';
  }
}

/**
 * zod issues → pending issues; an `unrecognized_keys` issue becomes one issue per key, at the
 * key, with "did you mean …?" when `suggest` knows a key close to it.
 */
export function fromZodIssues(
  issues: readonly z.core.$ZodIssue[],
  suggest: (path: readonly PathSegment[], key: string) => string | undefined = () => undefined,
): PendingIssue[] {
  const out: PendingIssue[] = [];
  for (const issue of issues) {
    const path: PathSegment[] = issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment.description) : segment));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const near = suggest(path, key);
        const message = near === undefined ? 'unknown key' : `unknown key; did you mean "${near}"?`;
        out.push({ path: [...path, key], message, at: 'key', ...(near === undefined ? {} : { suggestion: near }) });
      }
    } else if (issue.code === 'invalid_key') {
      out.push({ path, message: issue.message, at: 'key' });
    } else {
      out.push({ path, message: issue.message });
    }
  }
  // One line per mistake: `adress` is reported with its "did you mean", not also as a missing `address`.
  return out.filter((issue) => !echoesTypo(issue, out));
}
