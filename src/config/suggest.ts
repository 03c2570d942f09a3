/**
 * "did you mean …?" for unknown keys: the keys the schema knows at a path, and the closest of
 * them to a misspelling (at most two edits away, a swap of neighbours counting as one).
 */
import type { z } from 'zod';
import type { PathSegment } from './issues.js';

/** The internals of a zod 4 schema that lead to the schemas inside it. */
interface Def {
  readonly shape?: Readonly<Record<string, z.ZodType>>;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly left?: z.ZodType;
  readonly right?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { _zod: { def: Def } })._zod.def;
}

/** The object schemas `schema` may be once wrappers (optional, default, pipe, union…) are seen through. */
function objects(schema: z.ZodType, depth = 0): z.ZodType[] {
  if (depth > 20) return [];
  const def = defOf(schema);
  if (def.shape) return [schema];
  const inner = [def.innerType, def.in, def.left, def.right, ...(def.options ?? [])].filter((s): s is z.ZodType => s !== undefined);
  return inner.flatMap((s) => objects(s, depth + 1));
}

/** The schemas that describe the value at `segment` inside a value described by `schema`. */
function childSchemas(schema: z.ZodType, segment: PathSegment, depth = 0): z.ZodType[] {
  if (depth > 20) return [];
  const def = defOf(schema);
  if (def.shape) {
    const child = typeof segment === 'string' ? def.shape[segment] : undefined;
    return child ? [child] : [];
  }
  if (def.element && typeof segment === 'number') return [def.element];
  if (def.valueType && typeof segment === 'string') return [def.valueType];
  const inner = [def.innerType, def.in, def.left, def.right, ...(def.options ?? [])].filter((s): s is z.ZodType => s !== undefined);
  return inner.flatMap((s) => childSchemas(s, segment, depth + 1));
}

/** Every key the schema allows in the mapping at `path` (empty when it cannot tell). */
export function knownKeys(schema: z.ZodType, path: readonly PathSegment[]): string[] {
  let current: z.ZodType[] = [schema];
  for (const segment of path) current = current.flatMap((s) => childSchemas(s, segment));
  const keys = new Set<string>();
  for (const object of current.flatMap((s) => objects(s))) {
    for (const key of Object.keys(defOf(object).shape ?? {})) keys.add(key);
  }
  return [...keys];
}

/** Edit distance where an insertion, deletion, substitution or swap of neighbours costs one. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const prev = rows[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min((prev[j] as number) + 1, (row[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      }
      row.push(best);
    }
    rows.push(row);
  }
  return (rows[a.length] as number[])[b.length] as number;
}

/** The known key closest to `key`, if one is at most two edits away (one for keys up to 3 letters). */
export function closestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  // On a short key two edits can turn it into almost anything: one is the limit there.
  let bestDistance = key.length <= 3 ? 2 : 3;
  for (const candidate of known) {
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance && candidate !== key) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
