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
  parseDocument,
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
  // uniqueKeys off: the library's duplicate-key message does not say which key; we check ourselves.
  const document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: true });
  const positionOf = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const locate: Locator = (path, part) => {
    const node = findNode(document, path, part);
    const offset = node?.range?.[0];
    return offset === undefined ? positionOf(document.contents?.range[0] ?? 0) : positionOf(offset);
  };
  const reporter = new Reporter(file, locate);
  for (const error of document.errors) addYamlError(reporter, error, 'error', positionOf);
  for (const warning of document.warnings) addYamlError(reporter, warning, 'warning', positionOf);
  let hasSyntaxErrors = document.errors.length > 0;
  let value: unknown;
  if (document.contents && !hasSyntaxErrors) {
    removeDuplicateKeys(document.contents, [], reporter, positionOf);
    try {
      value = document.toJS({ maxAliasCount: 1000 });
    } catch (error) {
      // Alias bombs (too many aliases) and merge keys that name no mapping fail only here.
      hasSyntaxErrors = true;
      reporter.error(
        [],
        `invalid YAML: ${(error as Error).message}`,
        'check the anchors (&name), aliases (*name) and merge keys (<<)',
        {
          position: positionOf(document.contents.range[0]),
        },
      );
    }
  }
  return { value, hasSyntaxErrors, reporter };
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
  const prefix = severity === 'error' ? 'invalid YAML' : 'YAML';
  reporter.add(severity, [], `${prefix}: ${error.message}`, fix, { position: positionOf(error.pos[0]) });
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return key.value === null || key.value === undefined ? '' : String(key.value);
  return undefined;
}

function removeDuplicateKeys(
  node: unknown,
  path: ConfigPath,
  reporter: Reporter,
  positionOf: (offset: number) => Position,
): void {
  if (isMap(node)) {
    const seen = new Map<string, Node>();
    node.items = node.items.filter((pair) => {
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
        `duplicate key "${key}" ${where} (first at line ${firstAt.line}:${firstAt.column})`,
        syntaxFixes.DUPLICATE_KEY,
        { position: positionOf((pair.key as Node).range?.[0] ?? 0) },
      );
      return false;
    });
    for (const pair of node.items) {
      const key = keyText(pair.key);
      if (key !== undefined) removeDuplicateKeys(pair.value, [...path, key], reporter, positionOf);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => {
      removeDuplicateKeys(item, [...path, index], reporter, positionOf);
    });
  }
}

/**
 * The node at `path`: the value, or the key when `part` is `key`. An empty value (`Processor:` with
 * nothing after it) points at its key. When the path runs out (a missing key), the deepest node
 * found stands in, so a diagnostic still points near its cause.
 */
function findNode(document: Document, path: ConfigPath, part: 'key' | 'value'): Node | undefined {
  let node: unknown = document.contents;
  let key: Node | undefined;
  for (const segment of path) {
    const container = isAlias(node) ? node.resolve(document) : node;
    if (isMap(container)) {
      const pair = container.items.find((item) => isPair(item) && keyText(item.key) === String(segment));
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
