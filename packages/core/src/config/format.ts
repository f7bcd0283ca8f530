/**
 * Diagnostics as text, compiler style: `file:line:column: severity: message` and an indented fix.
 *
 * @example
 * ```ts
 * const result = await loadConfig('pipeline.yaml', { adapter });
 * console.error(formatDiagnostics(result.diagnostics, { cwd: adapter.cwd() }));
 * // pipeline.yaml:12:5: error: actor "Processor": module "actors/proc.ts" not found (looked in /lab/actors/proc.ts)
 * //   fix: correct the path: relative packages start from the config file's folder, /lab
 * ```
 * @module
 */
import { formatPath } from './_report.ts';
import type { Diagnostic } from './types.ts';

/** Options of {@link formatDiagnostic}. */
export interface FormatDiagnosticOptions {
  /** Folder to show file paths relative to; files outside it stay absolute. */
  cwd?: string;
}

/**
 * One diagnostic as text. Its location is `file:line:column` (the file relative to `cwd` when it
 * lies inside it), or the config path (`actors.Processor.package`) for a config given as an object.
 */
export function formatDiagnostic(diagnostic: Diagnostic, options: FormatDiagnosticOptions = {}): string {
  let location = '';
  if (diagnostic.file !== undefined) {
    location = relativeTo(diagnostic.file, options.cwd);
    if (diagnostic.line !== undefined) location += `:${diagnostic.line}:${diagnostic.column ?? 1}`;
  } else if (diagnostic.path.length > 0) {
    location = formatPath(diagnostic.path);
  }
  // A loader's message can span lines (a code frame); indenting them keeps one diagnostic one block.
  const message = diagnostic.message.replaceAll('\n', '\n  ');
  const head = `${location ? `${location}: ` : ''}${diagnostic.severity}: ${message}`;
  if (diagnostic.fix === undefined) return head;
  // Continuation lines of a multi-line fix (YAML examples) line up under the fix's first character.
  return `${head}\n  fix: ${diagnostic.fix.replaceAll('\n', '\n       ')}`;
}

/** Every diagnostic, one after the other, separated by newlines. */
export function formatDiagnostics(diagnostics: readonly Diagnostic[], options: FormatDiagnosticOptions = {}): string {
  return diagnostics.map((diagnostic) => formatDiagnostic(diagnostic, options)).join('\n');
}

/** Plain prefix stripping: formatting needs no runtime adapter, and `../x` would be no clearer. */
function relativeTo(file: string, cwd: string | undefined): string {
  if (cwd === undefined || cwd === '') return file;
  const base = cwd.replace(/[\\/]+$/, '');
  if (file.length > base.length && file.startsWith(base) && (file[base.length] === '/' || file[base.length] === '\\')) {
    return file.slice(base.length + 1);
  }
  return file;
}
