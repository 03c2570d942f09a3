/**
 * Config errors as operators read them: `FILE:LINE:COL: path.to.key: message`, every error of
 * a file reported at once, sorted by position.
 */

/** One step of a path into the config: a mapping key or a sequence index. */
export type PathSegment = string | number;

/** One problem in a config file, positioned (1-based line and column). */
export interface ConfigIssue {
  /** The file as the caller named it (what the operator typed after `-c`). */
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** `pools.app.backends[1].weight`; `(root)` for the document itself, `(yaml)` for a YAML syntax error. */
  readonly path: string;
  readonly message: string;
}

/** An issue found by validation, before it is given a position in the file. */
export interface PendingIssue {
  readonly path: readonly PathSegment[];
  readonly message: string;
  /** Point at the value (default) or at the last key of the path (unknown or invalid keys). */
  readonly at?: 'value' | 'key';
}

/** `${file}:${line}:${col}: ${path}: ${message}` */
export function formatIssue(issue: ConfigIssue): string {
  return `${issue.file}:${issue.line}:${issue.col}: ${issue.path}: ${issue.message}`;
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

/** Sorts by line, then column; issues at the same place keep their order. */
export function sortIssues(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => a.issue.line - b.issue.line || a.issue.col - b.issue.col || a.index - b.index)
    .map(({ issue }) => issue);
}

/**
 * An invalid config file. `issues` holds every problem found, sorted by position; `message`
 * is their formatted lines joined by newlines, ready for stderr.
 */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const sorted = Object.freeze(sortIssues(issues).map((issue) => Object.freeze({ ...issue })));
    super(sorted.map(formatIssue).join('\n'));
    this.name = 'ConfigError';
    this.issues = sorted;
  }
}
