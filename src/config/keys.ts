/**
 * Every documented config key, collected from the `.meta(doc(...))` annotations of schema.ts:
 * the one source of a key's type, default, reload effect and description. The generated
 * docs/configuration.md and the key classes of diff.ts (key-classes.ts) are generated from here.
 */
import type { z } from 'zod';
import { configSchema } from './schema.js';
import type { KeyDoc, ReloadEffect } from './key-doc.js';

export type { KeyDoc, ReloadEffect } from './key-doc.js';

export interface ConfigKey {
  /** Where the key sits: `''` for the top level, `listeners[]`, `pools.<name>.backends[]`… */
  readonly section: string;
  /** The key's own name within its section. */
  readonly name: string;
  /** `section.name`, or `name` at the top level. */
  readonly path: string;
  readonly type: string;
  /** As the docs show it: `` `2s` ``, `none`, `**required**`, `the pool's`. */
  readonly default: string;
  /** The key's own effect, or the nearest enclosing key's. */
  readonly reload: ReloadEffect;
  readonly description: string;
  readonly inline: boolean;
}

/** A schema's wrappers peeled off (optional, prefault, parse pipes), and the default they carry. */
function unwrap(schema: z.core.$ZodType): { inner: z.core.$ZodType; optional: boolean; defaultValue: unknown } {
  let inner = schema;
  let optional = false;
  let defaultValue: unknown;
  for (;;) {
    const def = inner._zod.def as unknown as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType; defaultValue?: unknown };
    if (def.type === 'optional' && def.innerType) {
      optional = true;
      inner = def.innerType;
    } else if ((def.type === 'prefault' || def.type === 'default') && def.innerType) {
      defaultValue = def.defaultValue;
      inner = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      inner = def.in;
    } else {
      return { inner, optional, defaultValue };
    }
  }
}

/** The mapping a key opens and how its section is named (`routes[]`, `pools.<name>`), if it opens one. */
function mappingOf(schema: z.core.$ZodType, path: string): { shape: Record<string, z.core.$ZodType>; section: string } | null {
  const def = schema._zod.def as unknown as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType };
  if (def.type === 'object' && def.shape) return { shape: def.shape, section: path };
  const item = def.type === 'array' ? def.element : def.type === 'record' ? def.valueType : undefined;
  if (item === undefined) return null;
  const inner = unwrap(item).inner;
  const itemDef = inner._zod.def as unknown as { type: string; shape?: Record<string, z.core.$ZodType> };
  if (itemDef.type !== 'object' || !itemDef.shape) return null;
  return { shape: itemDef.shape, section: def.type === 'array' ? `${path}[]` : `${path}.<name>` };
}

function showDefault(key: KeyDoc, optional: boolean, value: unknown): string {
  if (key.default !== undefined) return key.default;
  if (value !== undefined) return `\`${Array.isArray(value) ? `[${value.join(', ')}]` : String(value)}\``;
  return optional ? 'none' : '**required**';
}

function walk(shape: Record<string, z.core.$ZodType>, section: string, inherited: ReloadEffect, out: ConfigKey[]): void {
  const nested: [Record<string, z.core.$ZodType>, string, ReloadEffect][] = [];
  for (const [name, schema] of Object.entries(shape)) {
    const path = section === '' ? name : `${section}.${name}`;
    const meta = (schema as z.ZodType).meta() as { key?: KeyDoc } | undefined;
    const key = meta?.key;
    if (key === undefined) throw new Error(`config key ${path} has no doc() in schema.ts`);
    const reload = key.reload ?? inherited;
    const { inner, optional, defaultValue } = unwrap(schema);
    out.push({ section, name, path, type: key.type, default: showDefault(key, optional, defaultValue), reload, description: key.description, inline: key.inline === true });
    const mapping = key.inline === true ? null : mappingOf(inner, path);
    if (mapping !== null) nested.push([mapping.shape, mapping.section, reload]);
  }
  for (const [childShape, childSection, reload] of nested) walk(childShape, childSection, reload, out);
}

let cached: readonly ConfigKey[] | null = null;

/** Every documented key, section by section: a section's own keys, then the sections they open. */
export function configKeys(): readonly ConfigKey[] {
  if (cached === null) {
    const out: ConfigKey[] = [];
    // A top-level key without its own effect is applied by a reload.
    walk(configSchema.shape as unknown as Record<string, z.core.$ZodType>, '', 'live', out);
    cached = Object.freeze(out.map((k) => Object.freeze(k)));
  }
  return cached;
}

/** The names of the keys directly in `section` whose reload effect is `effect`. */
export function keysWith(section: string, effect: ReloadEffect): ReadonlySet<string> {
  return new Set(configKeys().filter((k) => k.section === section && k.reload === effect).map((k) => k.name));
}
