/**
 * YAML text → plain value, with every syntax error and duplicate key reported, and a
 * {@link Locator} that maps config paths back to line:column.
 * @module
 */
import {
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  visit,
  type YAMLError,
} from 'yaml';
import { type ConfigPath, formatPath, type Locator, type Position, Reporter } from './_report.ts';

/** The result of reading YAML text. */
export interface ParsedYaml {
  /** The document as plain data (`undefined` when the file holds no document or has syntax errors). */
  value: unknown;
  /** The text has YAML syntax errors (the value is the parser's best guess). */
  hasSyntaxErrors: boolean;
  /** Holds the syntax errors and duplicate keys; its locator positions later diagnostics in this text. */
  reporter: Reporter;
}

/** Fixes for the yaml library's error codes that users actually meet. */
const syntaxFixes: Record<string, string> = {
  TAB_AS_INDENT: 'indent with spaces; YAML does not allow tabs for indentation',
  BAD_INDENT: 'line this up with its siblings (same number of spaces)',
  MISSING_CHAR: 'add the missing closing character',
  MULTIPLE_DOCS: 'keep one document in the file (remove the extra "---" line)',
  BLOCK_AS_IMPLICIT_KEY: 'put the nested mapping on its own, indented lines, or quote the value if it contains ": "',
  MULTILINE_IMPLICIT_KEY: 'keep each key on one line, or quote the value',
  UNEXPECTED_TOKEN: 'check the line for a stray character or missing quote',
  BAD_ALIAS: 'define the anchor (&name) before the alias (*name) uses it',
  DUPLICATE_KEY: 'remove one of them; keys must be unique',
};

/**
 * Parses `text` (one YAML 1.2 document; merge keys `<<` allowed, as PyYAML reads improv's files).
 * Duplicate keys are reported at the second occurrence, naming the key, and the later pair is
 * dropped so the value and the positions agree (the first one wins).
 */
export function readYaml(text: string, file: string | undefined): ParsedYaml {
  const lineCounter = new LineCounter();
  const unprintable = firstUnprintable(text);
  if (unprintable !== undefined) {
    const reporter = new Reporter(file, () => undefined);
    reporter.error([], unprintable.message, unprintable.fix, { position: unprintable.position });
    return { value: undefined, hasSyntaxErrors: true, reporter };
  }
  const document = parseOrOverflow(text, lineCounter);
  if (document === undefined) {
    const reporter = new Reporter(file, () => undefined);
    reporter.error([], tooDeep.message, tooDeep.fix, { position: { line: 1, column: 1 } });
    return { value: undefined, hasSyntaxErrors: true, reporter };
  }
  const positionOf = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const keyIndex = new KeyIndex();
  const locate: Locator = (path, part) => {
    const node = findNode(document, path, part, keyIndex);
    const offset = node?.range?.[0];
    return offset === undefined ? positionOf(document.contents?.range[0] ?? 0) : positionOf(offset);
  };
  const reporter = new Reporter(file, locate);
  for (const error of document.errors) addYamlError(reporter, error, 'error', positionOf);
  for (const warning of document.warnings) addYamlError(reporter, warning, 'warning', positionOf);
  let hasSyntaxErrors = document.errors.length > 0;
  let value: unknown;
  if (document.contents && !hasSyntaxErrors) {
    const deep = firstTooDeep(document.contents);
    if (deep !== undefined) {
      reporter.error([], tooDeep.message, tooDeep.fix, { position: positionOf(deep.range?.[0] ?? 0) });
      return { value, hasSyntaxErrors: true, reporter };
    }
    removeDuplicateKeys(document.contents, [], reporter, positionOf, document);
    try {
      value = document.toJS({ maxAliasCount: 1000 });
    } catch (error) {
      // Alias bombs (too many aliases) and merge keys that name no mapping fail only here, and so
      // does nesting that only aliases make deep.
      hasSyntaxErrors = true;
      const position = positionOf(document.contents.range[0]);
      if (error instanceof RangeError) reporter.error([], tooDeep.message, tooDeep.fix, { position });
      else {
        const culprit = aliasOrMergeError(document);
        reporter.error(
          [],
          culprit?.message ?? `invalid YAML: ${(error as Error).message}`,
          culprit?.fix ?? 'check the anchors (&name), aliases (*name) and merge keys (<<)',
          { position: culprit?.node.range ? positionOf(culprit.node.range[0]) : position },
        );
      }
    }
  }
  return { value, hasSyntaxErrors, reporter };
}

/**
 * The first alias that names no anchor, or merge value (`<<: x`) that is not a mapping, in document
 * order: `toJS` throws on them without a position, so the node is found here to point at it.
 */
function aliasOrMergeError(document: Document): { node: Node; message: string; fix: string } | undefined {
  let found: { node: Node; message: string; fix: string } | undefined;
  visit(document, {
    Alias(_, alias) {
      if (alias.resolve(document) !== undefined) return undefined;
      found = {
        node: alias,
        message: `invalid YAML: the alias *${alias.source} names no anchor`,
        fix: `define the anchor (&${alias.source}) on a node above this alias, or correct the alias's name`,
      };
      return visit.BREAK;
    },
    Pair(_, pair) {
      if (!isScalar(pair.key) || pair.key.source !== '<<' || pair.key.type !== 'PLAIN') return undefined;
      const sources = isSeq(pair.value) ? pair.value.items : [pair.value];
      for (const source of sources) {
        const target = isAlias(source) ? source.resolve(document) : source;
        // An unresolved alias is the Alias visitor's, which sees it next (toJS throws on it first too).
        if (isAlias(source) && target === undefined) return undefined;
        if (isMap(target)) continue;
        const alias = isAlias(source) ? ` (*${source.source} is ${describeNode(target)})` : '';
        found = {
          node: (source as Node | null) ?? (pair.key as Node),
          message: `invalid YAML: a merge key (<<) takes a mapping or a list of mappings${alias}`,
          fix: 'merge only mappings: anchor a mapping (base: &base { key: value }) and write <<: *base or <<: [*a, *b]',
        };
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

function describeNode(node: unknown): string {
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) return node.value === null ? 'empty' : `the scalar ${JSON.stringify(node.source ?? node.value)}`;
  return 'not a mapping';
}

/**
 * How deep a config may nest. A pipeline needs a handful of levels (actor options included); the
 * limit keeps every recursive walk after parsing (duplicate keys, toJS, validation, the structured
 * clone to a worker) far from the stack's end.
 */
const MAX_DEPTH = 64;

const tooDeep = {
  message: `invalid YAML: nested more than ${MAX_DEPTH} levels deep`,
  fix: `flatten the structure: a pipeline config, actor options included, may nest at most ${MAX_DEPTH} levels`,
};

/** The first node nested deeper than {@link MAX_DEPTH}, found without recursion. */
function firstTooDeep(root: unknown): Node | undefined {
  const stack: { node: unknown; depth: number }[] = [{ node: root, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (!isMap(node) && !isSeq(node)) continue;
    if (depth > MAX_DEPTH) return node;
    for (const item of node.items) {
      if (isPair(item)) {
        stack.push({ node: item.key, depth: depth + 1 }, { node: item.value, depth: depth + 1 });
      } else stack.push({ node: item, depth: depth + 1 });
    }
  }
  return undefined;
}

/**
 * YAML allows no control characters but tab, line feed and carriage return. The parser would take a
 * NUL into a string (a path `x\0.ts` that no file system can open), so the first one is an error; a
 * file full of NULs is usually UTF-16, which the fix says.
 */
function firstUnprintable(text: string): { message: string; fix: string; position: Position } | undefined {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  const match = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/.exec(text);
  if (match === null) return undefined;
  const before = text.slice(0, match.index);
  const line = before.split('\n').length;
  const column = match.index - before.lastIndexOf('\n');
  const code = match[0].charCodeAt(0);
  const name =
    code === 0 ? 'a NUL byte' : `the control character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const nuls = code === 0 && text.split('\u0000').length - 1 > text.length / 4;
  return {
    message: `invalid YAML: ${name} is not allowed in a YAML file`,
    fix: nuls
      ? 'the file looks like UTF-16: save it as UTF-8'
      : 'remove it (the file may have been corrupted, or edited as binary); YAML text allows tab, line feed and carriage return only',
    position: { line, column },
  };
}

/** The document, or `undefined` when the parser ran out of stack. */
function parseOrOverflow(text: string, lineCounter: LineCounter) {
  try {
    // uniqueKeys off: the library's duplicate-key message does not say which key; we check ourselves.
    return parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: true });
  } catch (error) {
    // The parser recurses per level; on a runtime with a smaller stack it may overflow before it
    // would report the nesting itself.
    if (error instanceof RangeError) return undefined;
    throw error;
  }
}

function addYamlError(
  reporter: Reporter,
  error: YAMLError,
  severity: 'error' | 'warning',
  positionOf: (offset: number) => Position,
): void {
  // The library reports an unclosed [ or { where it gave up, often lines below the opening bracket.
  const unclosed = /^Flow (sequence|mapping)/.test(error.message);
  const fix = unclosed
    ? `close the ${error.message.startsWith('Flow sequence') ? '[ with ]' : '{ with }'} it opened above, or indent its continuation lines further`
    : (syntaxFixes[error.code] ?? (severity === 'error' ? 'fix the YAML syntax at this position' : undefined));
  if (/Maximum call stack size exceeded|too much recursion/i.test(error.message)) {
    reporter.add(severity, [], tooDeep.message, tooDeep.fix, { position: positionOf(error.pos[0]) });
    return;
  }
  const prefix = severity === 'error' ? 'invalid YAML' : 'YAML';
  reporter.add(severity, [], `${prefix}: ${error.message}`, fix, { position: positionOf(error.pos[0]) });
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return key.value === null || key.value === undefined ? '' : String(key.value);
  return undefined;
}

/**
 * A key written as an alias (`*name: value`) becomes a copy of the scalar it names, placed where the
 * alias is: duplicate checks and positions then see the key the value will have.
 */
function resolveAliasKey(pair: Pair, document: Document): boolean {
  if (!isAlias(pair.key)) return false;
  const source = pair.key.resolve(document);
  if (!isScalar(source)) return false;
  const copy = source.clone();
  copy.range = pair.key.range ?? null;
  pair.key = copy;
  return true;
}

function removeDuplicateKeys(
  node: unknown,
  path: ConfigPath,
  reporter: Reporter,
  positionOf: (offset: number) => Position,
  document: Document,
): void {
  if (isMap(node)) {
    const seen = new Map<string, Node>();
    node.items = node.items.filter((pair) => {
      const throughAlias = resolveAliasKey(pair, document);
      const key = keyText(pair.key);
      if (key === undefined) return true;
      const first = seen.get(key);
      if (first === undefined) {
        seen.set(key, pair.key as Node);
        return true;
      }
      const firstAt = positionOf(first.range?.[0] ?? 0);
      const where = path.length === 0 ? 'at the top level' : `in ${formatPath(path)}`;
      reporter.error(
        [...path, key],
        `duplicate key "${key}"${throughAlias ? ' (written as an alias)' : ''} ${where} (first at line ${firstAt.line}:${firstAt.column})`,
        syntaxFixes.DUPLICATE_KEY,
        { position: positionOf((pair.key as Node).range?.[0] ?? 0) },
      );
      return false;
    });
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (key !== undefined) removeDuplicateKeys(pair.value, [...path, key], reporter, positionOf, document);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      removeDuplicateKeys(item, [...path, index], reporter, positionOf, document);
    });
  }
}

/**
 * Each mapping's pairs by key text, built the first time a diagnostic looks into that mapping: a file
 * with 200,000 bad connections gets its positions in linear time, not by a scan per diagnostic.
 */
class KeyIndex {
  readonly #maps = new WeakMap<object, Map<string, Pair>>();

  pair(map: { items: unknown[] }, key: string): Pair | undefined {
    let pairs = this.#maps.get(map);
    if (pairs === undefined) {
      pairs = new Map();
      for (const item of map.items) {
        const text = isPair(item) ? keyText(item.key) : undefined;
        // The first pair of a key wins, as duplicates are reported and dropped.
        if (text !== undefined && !pairs.has(text)) pairs.set(text, item as Pair);
      }
      this.#maps.set(map, pairs);
    }
    return pairs.get(key);
  }
}

/**
 * The node at `path`: the value, or the key when `part` is `key`. An empty value (`Processor:` with
 * nothing after it) points at its key. When the path runs out (a missing key), the deepest node
 * found stands in, so a diagnostic still points near its cause.
 */
function findNode(document: Document, path: ConfigPath, part: 'key' | 'value', index: KeyIndex): Node | undefined {
  let node: unknown = document.contents;
  let key: Node | undefined;
  for (const segment of path) {
    const container = isAlias(node) ? node.resolve(document) : node;
    if (isMap(container)) {
      const pair = index.pair(container, String(segment));
      if (!pair) return (node as Node | null) ?? undefined;
      key = pair.key as Node;
      node = pair.value;
    } else if (isSeq(container) && typeof segment === 'number' && container.items[segment] !== undefined) {
      key = undefined;
      node = container.items[segment];
    } else {
      return (node as Node | null) ?? key;
    }
  }
  if (part === 'key' && key) return key;
  const empty = node === null || (isScalar(node) && node.value === null && node.range?.[0] === node.range?.[1]);
  return empty ? key : (node as Node);
}
