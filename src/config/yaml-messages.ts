/**
 * The yaml package's syntax errors in plain words, one per mistake: a slip often makes the
 * parser report two or three errors at the same line (or at the end of one line and the start of
 * the next); the one that names the fix is kept.
 */
import type { YAMLError } from 'yaml';

interface Wording {
  readonly match: RegExp;
  /** The plain sentence; a function gets the parser's match (to name the character at fault). */
  readonly say: string | ((match: RegExpExecArray) => string);
  /** Lower is preferred when several errors land on one line. */
  readonly rank: number;
  /**
   * For something left open (a quote, "[", "{"), noticed only where the file goes on: the
   * character that opened it, so the error points at the line to fix.
   */
  readonly opener?: '"' | "'" | '[' | '{';
}

const WORDINGS: readonly Wording[] = [
  { match: /^Tabs are not allowed/, say: 'a tab is used for indentation: indent with spaces only', rank: 0 },
  { match: /^Missing closing "quote/i, say: 'a quoted value is never closed: add the closing quote', rank: 0, opener: '"' },
  { match: /^Missing closing 'quote/i, say: 'a quoted value is never closed: add the closing quote', rank: 0, opener: "'" },
  { match: /^Flow sequence .*end with a \]/, say: 'a list opened with "[" is never closed: add "]" at its end', rank: 1, opener: '[' },
  { match: /^Flow map .*end with a \}/, say: 'a mapping opened with "{" is never closed: add "}" at its end', rank: 1, opener: '{' },
  { match: /^Implicit map keys need to be followed by map values/, say: 'a key without ":" after it: write "key: value"', rank: 1 },
  { match: /^Implicit keys need to be on a single line/, say: 'this line is neither "key: value" nor a list item "- …": is a ":" missing?', rank: 1 },
  { match: /^Nested mappings are not allowed in compact mappings/, say: 'a value on the same line as its key cannot be a mapping: put it on the next lines, indented', rank: 1 },
  { match: /^unexpected block-seq-ind on same line with key/i, say: 'a list item "- " cannot start on the same line as its key: put it on the next line, indented', rank: 1 },
  { match: /^A block sequence may not be used as an implicit map key/, say: 'a list where a key was expected: check the indentation of this line and the next', rank: 2 },
  { match: /^Missing space after : in flow/, say: 'a ":" inside "{ }" needs a space after it: write "key: value"', rank: 1 },
  { match: /^Missing , (or : )?between flow/, say: 'a "," is missing between two items inside "[ ]" or "{ }"', rank: 1 },
  { match: /^Unexpected , in flow/, say: 'a "," too many inside "[ ]" or "{ }"', rank: 1 },
  { match: /^Unexpected empty item in flow/, say: 'an empty item between two commas inside "[ ]"', rank: 1 },
  { match: /^Comments must be separated from other tokens/, say: 'a "#" comment needs a space before it (or quote a value that holds "#")', rank: 1 },
  { match: /^Plain value cannot start with (?:reserved character |block scalar indicator )?(.*)$/, say: (m) => `a value cannot start with ${m[1] ? `"${m[1]}"` : 'this character'}: put the value in quotes`, rank: 1 },
  { match: /^Invalid escape sequence (.*)$/, say: (m) => `an unknown escape "${m[1]}" in a double-quoted value: use single quotes, or write "\\\\" for a backslash`, rank: 1 },
  { match: /^Unexpected scalar at node end/, say: 'more text after the value on this line: quote the whole value, or move the rest to its own line', rank: 1 },
  { match: /^Sequence item without - indicator/, say: 'this line is indented unlike the lines around it: align it with its neighbours (or start a list item with "- ")', rank: 2 },
  { match: /^All mapping items must start at the same column/, say: 'this key is not aligned with the keys above it: indent it by the same number of spaces', rank: 2 },
  { match: /^All (collection|sequence) items must start at the same column/, say: 'this item is not aligned with the items above it: indent it by the same number of spaces', rank: 2 },
  { match: /^Unresolved alias/, say: 'an alias "*name" refers to no anchor "&name" defined before it', rank: 1 },
  { match: /^Source contains multiple documents/, say: 'more than one document ("---"): a config file holds one', rank: 1 },
];

function reword(message: string): { say: string; rank: number; opener?: Wording['opener'] } {
  const first = (message.split('\n')[0] ?? message).replace(/ at line \d+, column \d+:?$/, '');
  for (const wording of WORDINGS) {
    const match = wording.match.exec(first);
    if (match === null) continue;
    const say = typeof wording.say === 'string' ? wording.say : wording.say(match);
    return { say, rank: wording.rank, ...(wording.opener === undefined ? {} : { opener: wording.opener }) };
  }
  // Unknown to the table: yaml's own sentence, without its trailing period.
  return { say: (first.charAt(0).toLowerCase() + first.slice(1)).replace(/\.$/, ''), rank: 3 };
}

export interface PlainYamlError {
  readonly offset: number;
  readonly line: number;
  readonly message: string;
}

const CLOSER: Readonly<Record<string, string>> = { '"': '"', "'": "'", '[': ']', '{': '}' };

/**
 * The offset of the `open` character left open on the nearest line before `offset` (a line
 * with more openers than closers; for quotes an odd count), or `offset` itself if none is found.
 */
function openedAt(text: string, offset: number, open: string): number {
  const close = CLOSER[open] ?? open;
  let end = text.lastIndexOf('\n', Math.max(0, offset - 1));
  while (end > 0) {
    const start = text.lastIndexOf('\n', end - 1) + 1;
    const line = text.slice(start, end);
    const opens = line.split(open).length - 1;
    const closes = open === close ? 0 : line.split(close).length - 1;
    const unbalanced = open === close ? opens % 2 === 1 : opens > closes;
    if (unbalanced) return start + line.lastIndexOf(open);
    end = start - 1;
  }
  return offset;
}

/**
 * One plain message per line that has syntax errors (duplicate keys are reported elsewhere),
 * in the order of the file. `lineOf` maps a source offset to its 1-based line.
 */
export function plainYamlErrors(errors: readonly YAMLError[], text: string, lineOf: (offset: number) => number): PlainYamlError[] {
  const byLine = new Map<number, PlainYamlError & { rank: number }>();
  for (const error of errors) {
    if (error.code === 'DUPLICATE_KEY') continue;
    const { say, rank, opener } = reword(error.message);
    const offset = opener === undefined ? error.pos[0] : openedAt(text, error.pos[0], opener);
    const line = lineOf(offset);
    const seen = byLine.get(line);
    if (!seen || rank < seen.rank) byLine.set(line, { offset, line, message: say, rank });
  }
  // One slip seen twice, at the end of a line and at the start of the next (a tab-indented item
  // is also "a list where a key was expected"): errors with only white space between them are one.
  const merged: (PlainYamlError & { rank: number })[] = [];
  for (const error of [...byLine.values()].sort((a, b) => a.offset - b.offset)) {
    const previous = merged[merged.length - 1];
    if (previous !== undefined && /^\s*$/.test(text.slice(previous.offset, error.offset))) {
      if (error.rank < previous.rank) merged[merged.length - 1] = error;
      continue;
    }
    merged.push(error);
  }
  return merged.map(({ offset, line, message }) => ({ offset, line, message }));
}
