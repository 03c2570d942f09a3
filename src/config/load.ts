/**
 * proxy.yaml → YAML document → schema → cross-checks → TLS files → frozen {@link Config}.
 * Every problem of the file is collected and thrown at once as a {@link ConfigError}, each
 * positioned at its line and column; nothing else is ever thrown for bad input.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { crossCheck } from './checks.js';
import { ConfigError, formatPath, type ConfigIssue, type PendingIssue } from './issues.js';
import { Locator } from './locate.js';
import { fromZodIssues, readableError } from './messages.js';
import { configSchema, implicitHealthCheck, type Config, type ListenerConfig, type PoolConfig, type RawConfig, type TlsMaterial } from './schema.js';
import { loadTlsFiles } from './tls-files.js';

export { ConfigError, formatIssue, type ConfigIssue } from './issues.js';

export interface LoadOptions {
  /** Where `admin.token_env` is looked up; default `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>;
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
    const code = (err as { code?: unknown }).code;
    const reason = typeof code === 'string' ? code : (err as Error).message;
    throw new ConfigError([{ file, line: 1, col: 1, path: '(root)', message: `cannot read file: ${reason}` }]);
  }
  return parseConfig(text, file, options);
}

/** {@link loadConfig} from text already read; `file` names it in issues and anchors TLS paths. */
export async function parseConfig(text: string, file: string, options: LoadOptions = {}): Promise<Config> {
  const env = options.env ?? process.env;
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, merge: true, prettyErrors: false });
  const locator = new Locator(doc, lineCounter);
  const issues: ConfigIssue[] = [];
  const place = (issue: PendingIssue): ConfigIssue => {
    const { line, col } = locator.locate(issue.path, issue.at);
    return { file, line, col, path: formatPath(issue.path), message: issue.message };
  };

  issues.push(...yamlErrors(doc, locator, file));
  // Past anything but duplicate keys the document's shape is a guess: report only the YAML errors.
  if (doc.errors.some((e) => e.code !== 'DUPLICATE_KEY')) throw new ConfigError(issues);
  const merges = badMerges(doc, locator, file);
  if (merges.length > 0) throw new ConfigError([...issues, ...merges]);

  let raw: unknown;
  try {
    raw = doc.toJS();
  } catch (err) {
    // Alias expansion beyond yaml's limit (a "billion laughs" document).
    throw new ConfigError([...issues, { file, line: 1, col: 1, path: '(root)', message: (err as Error).message }]);
  }
  if (raw === null || raw === undefined) {
    throw new ConfigError([{ file, line: 1, col: 1, path: '(root)', message: 'the file is empty: it needs at least "listeners" and "pools"' }]);
  }
  const parsed = configSchema.safeParse(raw, { error: readableError });
  if (!parsed.success) issues.push(...fromZodIssues(parsed.error.issues).map(place));
  // A cross-check at a key the schema already rejected is an echo of that error (an unknown
  // pool whose name is invalid anyway): the schema's message is the one to fix.
  const rejected = new Set(issues.map(where));
  issues.push(...crossCheck(raw, locator, env).map(place).filter((issue) => !rejected.has(where(issue))));
  const absolute = resolve(file);
  const tls = await loadTlsFiles((raw as { listeners?: unknown }).listeners, dirname(absolute));
  issues.push(...tls.issues.map(place));

  if (issues.length > 0 || !parsed.success) throw new ConfigError(issues);
  return deepFreeze(build(parsed.data, absolute, tls.material));
}

/** `ok: 2 listeners, 3 pools, 7 backends`, as `hotwarm check` prints it. */
export function describeConfig(config: Config): string {
  const pools = Object.values(config.pools);
  const backends = pools.reduce((sum, pool) => sum + pool.backends.length, 0);
  return `ok: ${config.listeners.length} listeners, ${pools.length} pools, ${backends} backends`;
}

/** YAML errors (syntax, duplicate keys) at their own positions. */
function yamlErrors(doc: Document, locator: Locator, file: string): ConfigIssue[] {
  return doc.errors.map((error) => {
    const { line, col } = locator.position(error.pos[0]);
    if (error.code !== 'DUPLICATE_KEY') {
      // Where the parser noticed a syntax error is often past the key it belongs to: no path.
      return { file, line, col, path: '(yaml)', message: yamlMessage(error.message) };
    }
    const path = locator.pathAt(error.pos[0]);
    const first = locator.keyPositions(path)[0];
    const message = first && first.line !== line ? `duplicate key (first at line ${first.line})` : 'duplicate key';
    return { file, line, col, path: formatPath(path), message };
  });
}

/** `<<` merges of something other than a mapping, which yaml only rejects (throws) in toJS(). */
function badMerges(doc: Document, locator: Locator, file: string): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key) || typeof pair.key.value !== 'symbol') return;
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
      for (const source of sources) {
        if (isMap(isAlias(source) ? source.resolve(doc) : source)) continue;
        const offset = (source as { range?: readonly number[] } | null)?.range?.[0] ?? 0;
        const { line, col } = locator.position(offset);
        issues.push({ file, line, col, path: formatPath(locator.pathAt(offset)), message: 'can only merge a mapping or a list of mappings' });
      }
    },
  });
  return issues;
}

/** The yaml package's message without a trailing position or excerpt (given separately). */
function yamlMessage(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
}

/** Identifies where an issue points: position and path. */
function where(issue: ConfigIssue): string {
  return `${issue.line}:${issue.col}:${issue.path}`;
}

function build(data: RawConfig, file: string, tls: ReadonlyMap<number, TlsMaterial>): Config {
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
  return { ...data, log, file, listeners, pools };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
