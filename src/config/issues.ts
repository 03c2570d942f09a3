/**
 * Config errors as operators read them: `FILE:LINE:COL: path.to.key: message`, every error of
 * a file reported at once, sorted by position. The positioned issue (`ConfigIssue`), its line
 * format and `ConfigError` live in errors.ts with every other error; this file finds paths.
 */

/** One step of a path into the config: a mapping key or a sequence index. */
export type PathSegment = string | number;

/** An issue found by validation, before it is given a position in the file. */
export interface PendingIssue {
  readonly path: readonly PathSegment[];
  readonly message: string;
  /** Point at the value (default) or at the last key of the path (unknown or invalid keys). */
  readonly at?: 'value' | 'key';
  /** An unknown key's likely meaning ("did you mean …?"): the key the user wanted. */
  readonly suggestion?: string;
}

/**
 * Whether `issue` is an echo of a misspelt key: a key "missing" or named by a cross-check in the
 * mapping where an unknown key was taken to mean it (`adress` → "address: missing required
 * key"). The unknown key's "did you mean" is the one line to fix.
 */
export function echoesTypo(issue: PendingIssue, typos: readonly PendingIssue[]): boolean {
  return typos.some((typo) => {
    const near = typo.suggestion;
    if (near === undefined) return false;
    const mapping = typo.path.slice(0, -1);
    const same = (path: readonly PathSegment[]): boolean => path.length === mapping.length && mapping.every((s, i) => s === path[i]);
    if (issue.message === 'missing required key') return issue.path.length === mapping.length + 1 && issue.path[mapping.length] === near && same(issue.path.slice(0, -1));
    return same(issue.path) && issue.message.includes(`"${near}"`);
  });
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/** `['pools', 'app', 'backends', 1, 'weight']` → `pools.app.backends[1].weight`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (PLAIN_KEY.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out === '' ? '(root)' : out;
}
