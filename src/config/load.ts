/**
 * proxy.yaml → YAML document → schema → cross-checks → TLS files → frozen {@link Config}.
 * Every problem of the file is collected and thrown at once as a {@link ConfigError}, each
 * positioned at its line and column; nothing else is ever thrown for bad input.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { crossCheck } from './checks.js';
import { ConfigError, type ConfigIssue } from '../errors.js';
import { echoesTypo, formatPath, type PathSegment, type PendingIssue } from './issues.js';
import { Locator } from './locate.js';
import { fromZodIssues, readableError } from './messages.js';
import { configSchema, implicitHealthCheck, type Config, type ListenerConfig, type PoolConfig, type RawConfig, type TlsMaterial } from './schema.js';
import { closestKey, knownKeys } from './suggest.js';
import { loadTlsFiles } from './tls-files.js';
import { plainYamlErrors } from './yaml-messages.js';

export { ConfigError, formatIssue, type ConfigIssue } from '../errors.js';

export interface LoadOptions {
  /** Where `admin.token_env` is looked up; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * How messages name the file; default: the path as given. A reload reads the absolute path but
   * names the file as the command line did, so its errors read exactly as `hotwarm check` prints them.
   */
  readonly name?: string;
}

/**
 * Reads and validates `file`, and the TLS files it names (relative to its folder).
 * Throws {@link ConfigError}, never anything else, when the file is unusable.
 */
export async function loadConfig(file: string, options: LoadOptions = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError([{ file: options.name ?? file, line: 1, col: 1, path: '(root)', message: unreadable(file, err) }]);
  }
  return parseConfig(text, file, options);
}

/** {@link loadConfig} from text already read; `path` names it in issues (unless `options.name` does) and anchors TLS paths. */
export async function parseConfig(text: string, path: string, options: LoadOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  const file = options.name ?? path;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, merge: true, prettyErrors: false });
  const locator = new Locator(doc, lineCounter);
  const issues: ConfigIssue[] = [];
  const place = (issue: PendingIssue): ConfigIssue => {
    const { line, col } = locator.locate(issue.path, issue.at);
    return { file, line, col, path: formatPath(issue.path), message: issue.message };
  };

  issues.push(...yamlErrors(doc, text, locator, file));
  // Past anything but duplicate keys the document's shape is a guess: report only the YAML errors.
  if (doc.errors.some((e) => e.code !== 'DUPLICATE_KEY')) throw new ConfigError(issues);
  const references = [...unresolvedAliases(doc, locator, file), ...badMerges(doc, locator, file)];
  if (references.length > 0) throw new ConfigError([...issues, ...references]);

  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // Alias expansion beyond yaml's limit (a "billion laughs" document).
    const message = /Excessive alias count/.test((err as Error).message)
      ? 'aliases expand to too many values (a "billion laughs" document?): write the repeated parts out, or use fewer aliases'
      : (err as Error).message;
    throw new ConfigError([...issues, { file, line: 1, col: 1, path: '(root)', message }]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError([{ file, line: 1, col: 1, path: '(root)', message: 'the file is empty: it needs at least "listeners" and "pools"' }]);
  }
  const parsed = configSchema.safeParse(raw, { error: readableError });
  const suggest = (path: readonly PathSegment[], key: string): string | undefined => closestKey(key, knownKeys(configSchema, path));
  const schemaIssues = parsed.success ? [] : fromZodIssues(parsed.error.issues, suggest);
  issues.push(...schemaIssues.map(place));
  // A cross-check at a key the schema already rejected is an echo of that error (an unknown
  // pool whose name is invalid anyway), and so is one that misses a key the user misspelt
  // ("needs "routes" or "pool"" beside `pol`): the schema's message is the one to fix.
  const rejected = new Set(issues.map(where));
  const crossIssues = crossCheck(raw, locator, env).filter((issue) => !echoesTypo(issue, schemaIssues));
  issues.push(...crossIssues.map(place).filter((issue) => !rejected.has(where(issue))));
  const absolute = resolve(path);
  const tls = await loadTlsFiles((raw as { listeners?: unknown }).listeners, dirname(absolute));
  issues.push(...tls.issues.map(place));

  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return deepFreeze(build(parsed.data, absolute, file, tls.material));
}

/** `ok: 1 listener, 3 pools, 7 backends`, as `hotwarm check` prints it. */
export function describeConfig(config: Config): string {
  const pools = Object.values(config.pools);
  const backends = pools.reduce((sum, pool) => sum + pool.backends.length, 0);
  return `ok: ${count(config.listeners.length, 'listener')}, ${count(pools.length, 'pool')}, ${count(backends, 'backend')}`;
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/** Why the file could not be read, in words that say what to do (no bare ENOENT). */
function unreadable(file: string, err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const absolute = resolve(file);
  switch (code) {
    case 'ENOENT':
      return `no config file at ${absolute}: create it, or name another with -c FILE`;
    case 'EISDIR':
      return `${absolute} is a folder, not a config file: name the file with -c FILE`;
    case 'EACCES':
    case 'EPERM':
      return `no permission to read ${absolute}`;
    default:
      return `cannot read ${absolute}: ${typeof code === 'string' ? code : (err as Error).message}`;
  }
}

/** YAML errors at their own positions: syntax errors one per line in plain words, then duplicate keys. */
function yamlErrors(doc: Document, text: string, locator: Locator, file: string): ConfigIssue[] {
  // Where the parser noticed a syntax error is often past the key it belongs to: no path.
  const syntax = plainYamlErrors(doc.errors, text, (offset) => locator.position(offset).line).map(({ offset, message }): ConfigIssue => {
    const { line, col } = locator.position(offset);
    return { file, line, col, path: '(yaml)', message };
  });
  return [...syntax, ...doc.errors.filter((e) => e.code === 'DUPLICATE_KEY').map((error) => {
    const { line, col } = locator.position(error.pos[0]);
    const path = locator.pathAt(error.pos[0]);
    const first = locator.keyPositions(path)[0];
    const message = first && first.line !== line ? `duplicate key (first at line ${first.line})` : 'duplicate key';
    return { file, line, col, path: formatPath(path), message };
  })];
}

/** Aliases with no anchor before them, which yaml only rejects (throws, without a position) in toJS(). */
function unresolvedAliases(doc: Document, locator: Locator, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  visit(doc, {
    Alias(_, alias) {
      if (alias.resolve(doc) !== undefined) return;
      const { line, col } = locator.position(alias.range?.[0] ?? 0);
      issues.push({ file, line, col, path: '(yaml)', message: `the alias "*${alias.source}" refers to no anchor "&${alias.source}" defined before it` });
    },
  });
  return issues;
}

/** `<<` merges of something other than a mapping, which yaml only rejects (throws) in toJS(). */
function badMerges(doc: Document, locator: Locator, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key) || typeof pair.key.value !== 'symbol') return;
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
      for (const source of sources) {
        const resolved = isAlias(source) ? source.resolve(doc) : source;
        // An alias to nothing is reported by unresolvedAliases.
        if (isMap(resolved) || (isAlias(source) && resolved === undefined)) continue;
        const offset = (source as { range?: readonly number[] } | null)?.range?.[0] ?? 0;
        const { line, col } = locator.position(offset);
        issues.push({ file, line, col, path: formatPath(locator.pathAt(offset)), message: 'can only merge a mapping or a list of mappings' });
      }
    },
  });
  return issues;
}

/** Identifies where an issue points: position and path. */
function where(issue: ConfigIssue): string {
  return `${issue.line}:${issue.col}:${issue.path}`;
}

function build(data: RawConfig, file: string, source: string, tls: ReadonlyMap<number, TlsMaterial>): Config {
  const listeners: ListenerConfig[] = data.listeners.map((listener, index) => {
    const { tls: _paths, ...rest } = listener;
    const material = tls.get(index);
    return material ? { ...rest, tls: material } : rest;
  });
  const pools: Record<string, PoolConfig> = {};
  for (const [name, pool] of Object.entries(data.pools)) {
    pools[name] = { ...pool, health_check: pool.health_check ?? implicitHealthCheck() };
  }
  // The log file, like TLS files, is found relative to the config file's folder.
  const log = data.log.file === undefined ? data.log : { ...data.log, file: resolve(dirname(file), data.log.file) };
  return { ...data, log, file, source, listeners, pools };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
