/**
 * Loading and validating pipeline configs. YAML (or an object with the same keys) goes in; a
 * {@link PipelineConfig} and every problem found comes out — all of them in one pass, each with
 * `file:line:column` and a fix — so a scientist fixes the whole file at once.
 *
 * The YAML keeps improv's forms, so an improv pipeline reads the same:
 * ```yaml
 * settings:
 *   store_size: 512MiB
 * actors:
 *   Generator:
 *     package: actors/generator.ts   # or improv's dotted form: actors.generator
 *     class: Generator
 *     rate: 100                      # any other key -> this.options
 *   Processor:
 *     package: actors/processor.ts
 *     class: Processor
 *     method: process                # its own OS process (runtime: bun picks another runtime)
 *     restart: on-failure            # started again after a crash (restart_backoff, max_restarts)
 * connections:
 *   Generator.q_out: [Processor.q_in]          # improv's short form
 *   frames:                                    # or sources/sinks, with link options
 *     sources: [Processor.q_out]
 *     sinks: [Generator.q_in]
 *     capacity: 64
 *     policy: drop-oldest
 * ```
 *
 * @example
 * ```ts
 * import { assertConfig, formatDiagnostics, loadConfig } from '@improv/core';
 * import { createNodeRuntime } from '@improv/core/runtime/node';
 *
 * const adapter = createNodeRuntime();
 * const result = await loadConfig('pipeline.yaml', { adapter });
 * console.error(formatDiagnostics(result.diagnostics, { cwd: adapter.cwd() }));
 * const config = assertConfig(result); // throws a ConfigError listing every error
 * ```
 * @module
 */
import type { RuntimeAdapter } from '../runtime/adapter.ts';
import { permissionFix } from '../runtime/permissions.ts';
import type { StoreSizeLimits } from '../store/driver.ts';
import { checkRuntimesInstalled } from './_actor-process.ts';
import { type ModuleContext, resolveActorModule } from './_modules.ts';
import { ModuleProber } from './_prober.ts';
import { findPythonActors } from './_python.ts';
import { noPositions, Reporter } from './_report.ts';
import { type DraftActor, validateStructure } from './_validate.ts';
import { readYaml } from './_yaml.ts';
import { type FormatDiagnosticOptions, formatDiagnostics } from './format.ts';
import { type ActorConfig, ConfigError, type Diagnostic, type PipelineConfig, type StoreName } from './types.ts';

export { evictionPolicies, storeNames } from './_store-settings.ts';
export { transportNames } from './_transport-settings.ts';
export { byteSizeUnits, parseByteSize } from './byte-size.ts';
export { type FormatDiagnosticOptions, formatDiagnostic, formatDiagnostics } from './format.ts';
export { toLinkGraph } from './graph.ts';

/** What loading a config gives: the config when there is no error, and every diagnostic. */
export interface ConfigResult {
  /** The validated pipeline; `undefined` when any diagnostic is an error. */
  config: PipelineConfig | undefined;
  /** Errors and warnings, in the order they appear in the file. */
  diagnostics: Diagnostic[];
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Reads the file, checks module paths and resolves paths. */
  adapter: RuntimeAdapter;
  /**
   * Import every actor module and check that its `class` export is an Actor (default `true`).
   * Importing runs the modules' top-level code; turn it off to check only the file's structure and
   * that module files exist.
   */
  checkModules?: boolean;
  /**
   * The sizes the store can open (`StoreDriver.sizeLimits`): a `store_size` outside them is an
   * error of the config. `createNexus` passes its store's; `improv validate` the default store's.
   */
  storeSizeLimits?: StoreSizeLimits;
  /**
   * Every host of `hosts:` is this machine (the CLI's `--hosts local`, for development): actors with
   * `host:` run in processes of their own here, and `config.hosts` is empty.
   */
  hostsLocal?: boolean;
  /**
   * The store the pipeline uses whatever `settings.store` says (the CLI's `--store`): it becomes
   * `settings.store.driver`, and an actor that cannot reach it (one in a process of its own with
   * `memory`, one on another host with anything but `redis`) is an error at that actor, naming the flag.
   */
  storeOverride?: StoreName;
}

/** Options of {@link parseConfig}. */
export interface ParseConfigOptions extends LoadConfigOptions {
  /** The file the text came from: named in diagnostics and kept as `config.source`. */
  file: string;
  /** Folder relative `package` paths start from; default: the file's folder. */
  baseDir?: string;
}

/** Options of {@link resolveConfig}. */
export interface ResolveConfigOptions extends LoadConfigOptions {
  /** Folder relative `package` paths start from; default: the working directory. */
  baseDir?: string;
}

/**
 * Reads and validates a pipeline YAML file. Never throws for a bad config: a missing file, a YAML
 * syntax error or an unknown actor is a diagnostic in the result.
 *
 * @example
 * ```ts
 * const { config, diagnostics } = await loadConfig('pipeline.yaml', { adapter: createNodeRuntime() });
 * if (!config) console.error(formatDiagnostics(diagnostics));
 * ```
 */
export async function loadConfig(path: string, options: LoadConfigOptions): Promise<ConfigResult> {
  const { adapter } = options;
  const file = adapter.path.resolve(adapter.cwd(), path);
  let text: string;
  try {
    text = await adapter.readTextFile(file);
  } catch (error) {
    const code = (error as { code?: unknown } | null)?.code;
    const diagnostic: Diagnostic = { severity: 'error', file, path: [], message: '' };
    if (code === 'ENOENT') {
      diagnostic.message = `config file not found: ${file}`;
      diagnostic.fix = `check the path (a relative path starts from ${adapter.cwd()})`;
    } else if (code === 'EISDIR') {
      diagnostic.message = `${file} is a folder, not a config file`;
      diagnostic.fix = `pass one of its pipeline files (improv validate ${path} lists and checks them all)`;
    } else {
      diagnostic.message = `cannot read config file ${file}: ${error instanceof Error ? error.message : String(error)}`;
      diagnostic.fix = permissionFix(error, file) ?? 'check that the file exists and is readable';
    }
    return { config: undefined, diagnostics: [diagnostic] };
  }
  return parseConfig(text, { ...options, file });
}

/**
 * Validates YAML text as if it were the file `options.file`.
 *
 * @example
 * ```ts
 * const result = await parseConfig(yamlText, { file: 'lab/pipeline.yaml', adapter });
 * ```
 */
export async function parseConfig(text: string, options: ParseConfigOptions): Promise<ConfigResult> {
  const { adapter } = options;
  const file = adapter.path.resolve(adapter.cwd(), options.file);
  const baseDir = adapter.path.resolve(adapter.cwd(), options.baseDir ?? adapter.path.dirname(file));
  const yaml = readYaml(text, file);
  if (yaml.hasSyntaxErrors) {
    // The parser's recovery guesses at the structure; checking that guess yields errors about actors
    // and keys the user never wrote. The syntax errors alone are all true.
    return { config: undefined, diagnostics: sortByPosition(yaml.reporter.diagnostics) };
  }
  return validate(yaml.value, yaml.reporter, {
    source: file,
    baseDir,
    adapter,
    checkModules: options.checkModules ?? true,
    storeSizeLimits: options.storeSizeLimits,
    hostsLocal: options.hostsLocal ?? false,
    storeOverride: options.storeOverride,
    emptyMessage: 'the config file is empty',
  });
}

/**
 * Validates a config given as a plain object with the YAML's keys (`settings`, `actors`,
 * `connections`). Diagnostics carry their `path` but no line or column; `config.source` is
 * `<object>`.
 *
 * @example
 * ```ts
 * const result = await resolveConfig(
 *   {
 *     actors: {
 *       Generator: { package: './actors/generator.ts', class: 'Generator' },
 *       Processor: { package: './actors/processor.ts', class: 'Processor' },
 *     },
 *     connections: { 'Generator.q_out': ['Processor.q_in'] },
 *   },
 *   { baseDir: import.meta.dirname, adapter },
 * );
 * ```
 */
export async function resolveConfig(value: unknown, options: ResolveConfigOptions): Promise<ConfigResult> {
  const { adapter } = options;
  const reporter = new Reporter(undefined, noPositions);
  return validate(value, reporter, {
    source: '<object>',
    baseDir: adapter.path.resolve(adapter.cwd(), options.baseDir ?? adapter.cwd()),
    adapter,
    checkModules: options.checkModules ?? true,
    storeSizeLimits: options.storeSizeLimits,
    hostsLocal: options.hostsLocal ?? false,
    storeOverride: options.storeOverride,
    emptyMessage: 'the config is empty',
  });
}

/**
 * The {@link ConfigError} for a result with errors (its message lists every error, formatted), or
 * `undefined` when there are none.
 */
export function configError(result: ConfigResult, options: FormatDiagnosticOptions = {}): ConfigError | undefined {
  const errors = result.diagnostics.filter((diagnostic) => diagnostic.severity === 'error');
  if (errors.length === 0 && result.config) return undefined;
  const count = errors.length === 1 ? '1 error' : `${errors.length} errors`;
  return new ConfigError(`invalid pipeline config (${count}):\n${formatDiagnostics(errors, options)}`, [
    ...result.diagnostics,
  ]);
}

/**
 * The config, or a thrown {@link ConfigError} listing every error.
 *
 * @example
 * ```ts
 * const config = assertConfig(await loadConfig('pipeline.yaml', { adapter }));
 * ```
 */
export function assertConfig(result: ConfigResult, options: FormatDiagnosticOptions = {}): PipelineConfig {
  const error = configError(result, options);
  if (error || !result.config) throw error;
  return result.config;
}

interface ValidateOptions {
  storeSizeLimits?: StoreSizeLimits | undefined;
  source: string;
  baseDir: string;
  adapter: RuntimeAdapter;
  checkModules: boolean;
  emptyMessage: string;
  hostsLocal: boolean;
  storeOverride: StoreName | undefined;
}

async function validate(value: unknown, reporter: Reporter, options: ValidateOptions): Promise<ConfigResult> {
  const python = await findPythonActors(value, options.baseDir, options);
  const draft = validateStructure(
    value,
    reporter,
    options.emptyMessage,
    options.storeSizeLimits,
    options.hostsLocal ?? false,
    python,
    options.storeOverride,
  );
  // Like a module file, a runtime an actor names must be here: found now, not when the actor starts.
  checkRuntimesInstalled(draft.actors, options.adapter, reporter);
  const context: ModuleContext = {
    adapter: options.adapter,
    baseDir: options.baseDir,
    checkModules: options.checkModules,
    prober: new ModuleProber(options.adapter, draft.settings.importTimeoutMs),
    importTimeoutMs: draft.settings.importTimeoutMs,
    ...(draft.settings.python === undefined ? {} : { python: draft.settings.python }),
  };
  // Modules are checked concurrently, each into its own list, so the order stays that of the file.
  const reporters = draft.actors.map(() => reporter.fork());
  const urls = await Promise.all(
    draft.actors.map((actor, index) => resolveActorModule(actor, context, reporters[index]!)),
  );
  for (const forked of reporters) reporter.diagnostics.push(...forked.diagnostics);
  const diagnostics = sortByPosition(reporter.diagnostics);
  if (diagnostics.some((diagnostic) => diagnostic.severity === 'error')) return { config: undefined, diagnostics };

  const actors: ActorConfig[] = [];
  draft.actors.forEach((actor, index) => {
    const moduleUrl = urls[index];
    // Without errors every actor has its package, class and module; the guard keeps the types honest.
    if (isComplete(actor) && moduleUrl !== undefined) {
      const config: ActorConfig = {
        name: actor.name,
        package: actor.package,
        moduleUrl,
        className: actor.className,
        options: actor.options,
        onError: actor.onError,
        restart: actor.restart,
      };
      if (actor.maxHeapMb !== undefined) config.maxHeapMb = actor.maxHeapMb;
      if (actor.process !== undefined) config.process = { ...actor.process };
      if (config.process?.runtime === 'python' && draft.settings.python !== undefined) {
        config.process.interpreter = draft.settings.python;
      }
      actors.push(config);
    }
  });
  return {
    config: {
      source: options.source,
      baseDir: options.baseDir,
      settings: draft.settings,
      actors,
      connections: draft.connections,
      hosts: draft.hosts.map((host) => ({
        ...host,
        // `~/` is the home folder of whoever connects; anything else is relative to the config.
        tokenFile: host.tokenFile.startsWith('~/')
          ? host.tokenFile
          : options.adapter.path.resolve(options.baseDir, host.tokenFile),
      })),
    },
    diagnostics,
  };
}

function isComplete(actor: DraftActor): actor is DraftActor & { package: string; className: string } {
  return actor.package !== undefined && actor.className !== undefined;
}

/** File order, like a compiler; a stable sort keeps diagnostics without a position in walk order. */
function sortByPosition(diagnostics: Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0));
}
