/**
 * What the documentation and the reload diff need to know about one config key, written once
 * next to its zod definition in schema.ts (`.meta(doc({...}))`). keys.ts walks the schema and
 * collects them; `npm run docs` generates docs/configuration.md and the key classes config/diff.ts
 * reads (key-classes.ts) from them.
 */

/**
 * What a reload does with a changed value:
 * - `live`: applied by the reload, the running proxy keeps going;
 * - `restart`: read at startup only; a reload lists the change "(applies at the next start)";
 * - `rebind`: the listener is bound anew on its (new) address, its old socket drains;
 * - `replace`: the backend becomes a new backend under the same name, the old one drains;
 * - `name`: the name that matches the old listener or backend with the new one.
 */
export type ReloadEffect = 'live' | 'restart' | 'rebind' | 'replace' | 'name';

export interface KeyDoc {
  /** The type as the docs show it (`duration > 0s`, `` `http` \| `tcp` ``). A type starting with `duration` or `size` is shown that way in reload summaries. */
  readonly type: string;
  /** The default as the docs show it, when it is not the schema's own default value (`the pool's`, `none (stdout)`). */
  readonly default?: string;
  /** Inherited from the enclosing key when left out (`live` at the top level). */
  readonly reload?: ReloadEffect;
  /** Markdown, with links relative to docs/. */
  readonly description: string;
  /** The keys inside this mapping are described in `description`, not listed one by one. */
  readonly inline?: boolean;
}

/** The metadata object for `.meta()`: `{ key: KeyDoc }`. */
export function doc(key: KeyDoc): { readonly key: KeyDoc } {
  return { key };
}
