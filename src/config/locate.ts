/**
 * Maps paths in the parsed config back to line and column in the YAML source, by walking the
 * document's AST. Follows aliases and `<<` merge keys, so a value that came from an anchor is
 * reported where the anchor's text is.
 */
import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Pair, type YAMLMap } from 'yaml';
import type { PathSegment } from './issues.js';

export interface Position {
  readonly line: number;
  readonly col: number;
  /** Character offset in the source, for ordering. */
  readonly offset: number;
}

interface Ranged {
  range?: readonly [number, number, number] | null;
}

const MERGE_KEY = '<<';

/** The string a mapping key becomes in the plain JS value (as yaml's `toJS` makes it). */
function keyOf(pair: Pair): string | undefined {
  const key = pair.key;
  if (!isScalar(key)) return undefined;
  const value = key.value;
  if (typeof value === 'symbol') return value.description;
  return String(value);
}

function isMergePair(pair: Pair): boolean {
  return isScalar(pair.key) && (pair.key.value === MERGE_KEY || (typeof pair.key.value === 'symbol' && pair.key.value.description === MERGE_KEY));
}

/** A value that was left empty (`key:` with nothing after it) has no text of its own. */
function isEmpty(node: unknown): boolean {
  if (node === null || node === undefined) return true;
  if (!isScalar(node) || node.value !== null) return false;
  const range = (node as Ranged).range;
  return !range || range[0] === range[1];
}

export class Locator {
  readonly #doc: Document;
  readonly #lines: LineCounter;

  constructor(doc: Document, lines: LineCounter) {
    this.#doc = doc;
    this.#lines = lines;
  }

  /** 1-based line and column of a character offset. */
  position(offset: number): Position {
    const { line, col } = this.#lines.linePos(offset);
    return { line, col, offset };
  }

  /**
   * Where `path` is written. With `at: 'key'`, the position of the last key rather than its
   * value. A path that leaves the document (a missing key) resolves to the deepest node that
   * exists: the mapping the key is missing from.
   */
  locate(path: readonly PathSegment[], at: 'value' | 'key' = 'value'): Position {
    let node: unknown = this.#doc.contents;
    let position = this.#nodePosition(node) ?? this.position(0);
    for (let i = 0; i < path.length; i++) {
      const segment = path[i] as PathSegment;
      const last = i === path.length - 1;
      node = this.#resolve(node);
      if (isMap(node)) {
        const pair = this.#findPair(node, String(segment), 0);
        if (!pair) return position;
        const keyPosition = this.#nodePosition(pair.key) ?? position;
        if (last && at === 'key') return keyPosition;
        if (isEmpty(pair.value)) return keyPosition;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        if (segment >= node.items.length) return position;
        node = node.items[segment];
      } else {
        return position;
      }
      position = this.#nodePosition(node) ?? position;
    }
    return position;
  }

  /** Positions of every key written for the last segment of `path` in its mapping (duplicates included). */
  keyPositions(path: readonly PathSegment[]): Position[] {
    const key = path[path.length - 1];
    if (key === undefined) return [];
    let node: unknown = this.#doc.contents;
    for (const segment of path.slice(0, -1)) {
      node = this.#resolve(node);
      if (isMap(node)) node = this.#findPair(node, String(segment), 0)?.value;
      else if (isSeq(node) && typeof segment === 'number') node = node.items[segment];
      else return [];
    }
    node = this.#resolve(node);
    if (!isMap(node)) return [];
    return node.items
      .filter((pair) => !isMergePair(pair) && keyOf(pair) === String(key))
      .flatMap((pair) => this.#nodePosition(pair.key) ?? []);
  }

  /** The path of the innermost key or item whose text contains `offset`. */
  pathAt(offset: number): PathSegment[] {
    const path: PathSegment[] = [];
    let node: unknown = this.#doc.contents;
    for (;;) {
      if (isMap(node)) {
        let next: unknown;
        for (const pair of node.items) {
          const key = keyOf(pair);
          if (key === undefined) continue;
          if (contains(pair.key, offset)) return [...path, key];
          if (contains(pair.value, offset)) {
            path.push(key);
            next = pair.value;
            break;
          }
        }
        if (next === undefined) return path;
        node = next;
      } else if (isSeq(node)) {
        const index = node.items.findIndex((item) => contains(item, offset));
        if (index < 0) return path;
        path.push(index);
        node = node.items[index];
      } else {
        return path;
      }
    }
  }

  #resolve(node: unknown): unknown {
    // Aliases can point at aliases only through anchors defined earlier; a bound keeps it finite.
    for (let hops = 0; isAlias(node) && hops < 100; hops++) node = node.resolve(this.#doc);
    return node;
  }

  /** The last pair with this key (the one whose value wins), else one merged in through `<<`. */
  #findPair(map: YAMLMap, key: string, depth: number): Pair | undefined {
    let found: Pair | undefined;
    for (const pair of map.items) {
      if (!isMergePair(pair) && keyOf(pair) === key) found = pair;
    }
    if (found || depth > 20) return found;
    for (const pair of map.items) {
      if (!isMergePair(pair)) continue;
      const source = this.#resolve(pair.value);
      const sources = isSeq(source) ? source.items.map((item) => this.#resolve(item)) : [source];
      for (const candidate of sources) {
        const merged = isMap(candidate) ? this.#findPair(candidate, key, depth + 1) : undefined;
        if (merged) return merged;
      }
    }
    return undefined;
  }

  #nodePosition(node: unknown): Position | undefined {
    const range = (node as Ranged | null | undefined)?.range;
    return range ? this.position(range[0]) : undefined;
  }
}

function contains(node: unknown, offset: number): boolean {
  const range = (node as Ranged | null | undefined)?.range;
  return !!range && range[0] <= offset && offset < Math.max(range[2], range[0] + 1);
}
