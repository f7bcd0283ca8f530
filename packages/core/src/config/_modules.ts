/**
 * Resolving an actor's `package` to a module and checking that its `class` is an Actor, reporting
 * what went wrong with the paths that were tried.
 * @module
 */
import type { RuntimeAdapter } from '../runtime/adapter.ts';
import { permissionFix } from '../runtime/permissions.ts';
import type { ExportShape } from './_probe-worker.ts';
import type { ImportOutcome, ModuleProber } from './_prober.ts';
import { resolvePythonActor } from './_python.ts';
import { describeValue, isMapping, type Reporter } from './_report.ts';
import { closest, didYouMean } from './_suggest.ts';
import type { DraftActor } from './_validate.ts';

/** What every actor of one config shares while its modules are checked. */
export interface ModuleContext {
  adapter: RuntimeAdapter;
  /** Absolute folder relative packages resolve from. */
  baseDir: string;
  checkModules: boolean;
  /** Imports modules in a worker, once per URL or specifier, each within a time limit. */
  prober: ModuleProber;
  /** `settings.python`: the interpreter Python actors are checked with. */
  python?: string;
  /** `settings.import_timeout`. */
  importTimeoutMs: number;
}

/** Where `specifier` (an actor's `package`) may be: improv's dotted form or a path, and the files to try. */
export function moduleCandidates(
  specifier: string,
  baseDir: string,
  adapter: Pick<RuntimeAdapter, 'path'>,
): { dotted: boolean; absolute: string; candidates: string[] } {
  const dotted = !explicitExtension.test(specifier) && dottedModule.test(specifier);
  const base = dotted ? specifier.replaceAll('.', '/') : specifier;
  const absolute = adapter.path.isAbsolute(base) ? base : adapter.path.resolve(baseDir, base);
  const candidates = explicitExtension.test(specifier)
    ? [absolute]
    : [...extensions.map((extension) => absolute + extension), adapter.path.join(absolute, 'index.ts')];
  return { dotted, absolute, candidates };
}

const extensions = ['.ts', '.mts', '.js', '.mjs'];
const explicitExtension = /\.(?:ts|js|mjs|mts|cjs|cts|py)$/;
/** Files Node always loads as CommonJS. */
const commonJsExtension = /\.c[jt]s$/;
/** improv's `actors.sample_generator`: Python module path, one identifier per folder. */
const dottedModule = /^[A-Za-z_]\w*(?:\.\w+)+$/;

/**
 * Resolves `actor.package` and, with `checkModules`, imports it and checks `actor.className`.
 * Returns the module URL, or `undefined` after reporting why there is none.
 */
export async function resolveActorModule(
  actor: DraftActor,
  context: ModuleContext,
  reporter: Reporter,
): Promise<string | undefined> {
  const specifier = actor.package;
  if (specifier === undefined) return undefined;
  const { adapter, baseDir } = context;
  if (actor.process?.runtime === 'python')
    return resolvePythonActor({ ...actor, package: specifier }, context, reporter);
  const packagePath = ['actors', actor.name, 'package'];
  const { dotted, candidates } = moduleCandidates(specifier, baseDir, adapter);

  for (const candidate of candidates) {
    const found = await adapter.isFile(candidate).catch((error: unknown) => {
      reportNoAccess(actor, candidate, error, reporter);
      return undefined;
    });
    if (found === undefined) return undefined;
    if (!found) continue;
    const url = adapter.path.toFileUrl(candidate);
    if (commonJsExtension.test(candidate)) {
      reportCommonJs(actor, candidate, reporter);
      return undefined;
    }
    if (context.checkModules) {
      const outcome = await context.prober.import(url);
      if (!outcome.ok) {
        if (await looksLikeCommonJs(candidate, adapter)) reportCommonJs(actor, candidate, reporter);
        else reportImportError(actor, candidate, outcome.error, reporter);
        return undefined;
      }
      checkExport(actor, outcome.exports, reporter);
    }
    return url;
  }

  if (!context.checkModules) {
    // Only the YAML is checked: an improv config can be checked before its actors are ported.
    return looksLikePackageName(specifier) && !dotted ? specifier : adapter.path.toFileUrl(candidates[0]!);
  }
  // The dotted form names a Python file as well (resolved before this, when it is there).
  const tried = [...(dotted ? [`${candidates[0]!.slice(0, -'.ts'.length)}.py`] : []), ...candidates].join(', ');
  if (looksLikePackageName(specifier)) {
    const outcome = await context.prober.import(specifier);
    if (outcome.ok) {
      checkExport(actor, outcome.exports, reporter);
      return specifier;
    }
    if (!isNotFound(outcome.error, specifier)) {
      reportImportError(actor, specifier, outcome.error, reporter);
      return undefined;
    }
    reporter.error(
      packagePath,
      `actor "${actor.name}": module "${specifier}" not found (looked in ${tried}, and for an installed package "${specifier}")`,
      `${await notFoundFix(specifier, dotted, context)}; or, if it is a package, npm install ${specifier} (in the project of ${context.baseDir})`,
    );
    return undefined;
  }
  reporter.error(
    packagePath,
    `actor "${actor.name}": module "${specifier}" not found (looked in ${tried})`,
    await notFoundFix(specifier, dotted, context),
  );
  return undefined;
}

async function notFoundFix(specifier: string, dotted: boolean, context: ModuleContext) {
  if (dotted) {
    const file = specifier.replaceAll('.', '/');
    return `improv's dotted form "${specifier}" is read as the file ${file}.py (a Python actor) or ${file}.ts (or .mts, .js, .mjs) in ${context.baseDir}, the config file's folder; create it or correct the package`;
  }
  return `correct the path: relative packages start from the config file's folder, ${context.baseDir}`;
}

/** A module path the runtime would not let us look at: say so, not "not found". */
function reportNoAccess(actor: DraftActor, candidate: string, error: unknown, reporter: Reporter): void {
  const message = error instanceof Error ? error.message : String(error);
  reporter.error(
    ['actors', actor.name, 'package'],
    `actor "${actor.name}": cannot look for its module at ${candidate}: ${message}`,
    permissionFix(error, candidate) ?? 'check that the path can be read',
  );
}

/**
 * A bare specifier such as `lab-actors` or `@lab/actors/camera`: not a relative or absolute path,
 * and without a file extension (`actors/proc.ts` is a file the user forgot to create).
 */
function looksLikePackageName(specifier: string): boolean {
  return !explicitExtension.test(specifier) && /^(?:@[\w.-]+\/)?\w[\w.-]*(?:\/[\w.@-]+)*$/.test(specifier);
}

type ImportError = Extract<ImportOutcome, { ok: false }>['error'];

/** True when `error` says that `specifier` itself (not one of its imports) could not be found. */
function isNotFound(error: ImportError, specifier: string): boolean {
  const { code, message } = error;
  // Node names the package (`'@lab/actors'`) or the whole specifier; either, quoted, is this module.
  const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
  const namesIt = [specifier, name].some((text) => message.includes(`'${text}'`) || message.includes(`"${text}"`));
  return (
    namesIt &&
    (code === 'ERR_MODULE_NOT_FOUND' || /cannot find (package|module)|failed to (load|resolve)/i.test(message))
  );
}

function reportImportError(actor: DraftActor, where: string, error: ImportError, reporter: Reporter): void {
  const { code, message } = error;
  if (code === 'IMPROV_MODULE_TIMEOUT' || code === 'IMPROV_MODULE_EXITED') {
    reporter.error(
      ['actors', actor.name, 'package'],
      `actor "${actor.name}": importing ${where} failed: ${message}`,
      code === 'IMPROV_MODULE_TIMEOUT'
        ? `move long work out of the module's top level (into setup()), and make sure every top-level await settles`
        : 'remove the exit from the top level of the module; an actor ends when the pipeline quits',
    );
    return;
  }
  const missing = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1];
  reporter.error(
    ['actors', actor.name, 'package'],
    `actor "${actor.name}": importing ${where} failed: ${firstLines(message)}`,
    code === 'ERR_MODULE_NOT_FOUND' && missing
      ? `npm install ${missing} (in the project ${where} belongs to), or correct that import`
      : loadedAsCommonJs(code, message)
        ? `${where} was loaded as CommonJS because the package.json nearest to it does not say "type": "module" (or there is none); add "type": "module" to that package.json (or create one next to your pipeline with {"type": "module"}), or name the file .mts (.mjs for JavaScript)`
        : `fix the error in ${where} (importing it on its own shows the full stack)`,
  );
}

/**
 * Actors are ES modules: a worker imports the module and takes the class from its named exports,
 * and `require('@improv/core')` cannot load improv's ES-module source. Left to the import, the user
 * sees a syntax error inside improv's own code.
 */
function reportCommonJs(actor: DraftActor, file: string, reporter: Reporter): void {
  reporter.error(
    ['actors', actor.name, 'package'],
    `actor "${actor.name}": ${file} is a CommonJS module (require, exports); actors must be ES modules`,
    `write it with import and export:  import { Actor } from '@improv/core';  export class ${actor.className || 'MyActor'} extends Actor { … }  in a .ts or .mts file (or .js/.mjs; a .ts or .js file needs "type": "module" in the nearest package.json)`,
  );
}

/** A file that failed to import and uses require()/exports with no import or export statement. */
async function looksLikeCommonJs(file: string, adapter: RuntimeAdapter): Promise<boolean> {
  const text = await adapter.readTextFile(file).catch(() => '');
  const commonJs = /\brequire\s*\(\s*['"`]|\bmodule\.exports\b|\bexports\.[\w$]+\s*=/.test(text);
  return commonJs && !/^\s*(?:import|export)\b/m.test(text);
}

/**
 * A `.ts`/`.js` actor file outside a `"type": "module"` package is loaded as CommonJS, and its
 * `import { Actor } from '@improv/core'` becomes a require() of an ES module, which fails with one of
 * these (the message alone is cryptic, so the fix names the cause).
 */
function loadedAsCommonJs(code: unknown, message: string): boolean {
  return (
    code === 'ERR_REQUIRE_ESM' ||
    code === 'ERR_REQUIRE_CYCLE_MODULE' ||
    code === 'ERR_REQUIRE_ASYNC_MODULE' ||
    /require\(\)(?: of)? ES Module|Cannot use import statement outside a module/i.test(message)
  );
}

/** Bundler and loader errors can carry long code frames; the first lines say what is wrong. */
function firstLines(message: string): string {
  const lines = message.trim().split('\n');
  return lines.length <= 4 ? lines.join('\n') : `${lines.slice(0, 4).join('\n')}\n...`;
}

function checkExport(actor: DraftActor, exports: Record<string, ExportShape>, reporter: Reporter): void {
  const className = actor.className;
  if (className === undefined) return;
  const classPath = ['actors', actor.name, 'class'];
  const actorClasses = Object.keys(exports).filter((name) => exports[name]!.actor);
  const listed =
    actorClasses.length > 0 ? `its actor classes: ${actorClasses.join(', ')}` : 'it exports no actor class';
  if (!(className in exports)) {
    const suggestion = closest(className, actorClasses) ?? closest(className, Object.keys(exports));
    reporter.error(
      classPath,
      `actor "${actor.name}": module "${actor.package}" has no export "${className}" (${listed})`,
      suggestion
        ? `did you mean "${suggestion}"?`
        : actorClasses.length > 0
          ? `set class to one of ${actorClasses.join(', ')}`
          : `export the class from ${actor.package}:  export class ${className} extends Actor { ... }`,
    );
    return;
  }
  const shape = exports[className]!;
  if (shape.actor) {
    // The worker calls runStep() on an instance; a class without it would fail only at load.
    if (shape.runStep) {
      if (shape.optionTypes) checkOptions(actor, className, shape.optionTypes, reporter);
      return;
    }
    const pythonic = shape.run_step;
    reporter.error(
      classPath,
      `actor "${actor.name}": class "${className}" of "${actor.package}" has no runStep() method${pythonic ? ' (it has run_step)' : ''}`,
      pythonic
        ? 'did you mean runStep? improv ≥ 0.3 calls it run_step; here it is runStep(): rename the method'
        : `add one:  async runStep() { const message = await this.q_in.get(); ... }`,
    );
    return;
  }
  const what =
    shape.kind === 'function' ? 'a function or class that does not extend Actor' : describeExport(shape.kind);
  reporter.error(
    classPath,
    `actor "${actor.name}": export "${className}" of "${actor.package}" is not an Actor class (it is ${what})`,
    `declare it as  export class ${className} extends Actor { runStep() { ... } }  with  import { Actor } from '@improv/core'` +
      (actorClasses.length > 0 ? `, or set class to one of ${actorClasses.join(', ')}` : ''),
  );
}

const typeWords: Record<string, string> = {
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  list: 'a list',
  mapping: 'a mapping',
};

/** The YAML options of `actor` against what its class declares it takes. */
function checkOptions(actor: DraftActor, className: string, types: Record<string, string>, reporter: Reporter): void {
  const names = Object.keys(types);
  for (const [key, value] of Object.entries(actor.options)) {
    const type = types[key];
    if (type === undefined) {
      reporter.error(
        ['actors', actor.name, key],
        `actor "${actor.name}": ${className} takes no option "${key}"`,
        `${didYouMean(key, names)}${names.length > 0 ? `its options are ${names.join(', ')}` : 'it takes no options'}`,
        { part: 'key' },
      );
      continue;
    }
    if (type === 'any' || !(type in typeWords) || typeOfYaml(value) === type) continue;
    reporter.error(
      ['actors', actor.name, key],
      `actor "${actor.name}": option "${key}" must be ${typeWords[type]}, not ${describeValue(value)}`,
      `give ${key} ${typeWords[type]}${typeof value === 'string' && type === 'number' ? ' (without quotes or units)' : ''}`,
    );
  }
}

function typeOfYaml(value: unknown): string {
  if (Array.isArray(value)) return 'list';
  if (isMapping(value)) return 'mapping';
  return typeof value;
}

function describeExport(kind: string): string {
  if (kind === 'null') return 'null';
  if (kind === 'array') return 'an array';
  if (kind === 'object') return 'an object';
  return `a ${kind}`;
}
