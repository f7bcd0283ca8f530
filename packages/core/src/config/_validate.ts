/**
 * The structural checks of a pipeline config: everything except loading actor modules. Works on the
 * plain value; positions come from the reporter's locator. Every problem is reported and the walk
 * goes on, so one run lists them all.
 * @module
 */

import { z } from 'zod';
import { crossProcessConnections } from '../link/placement.ts';
import type { Endpoint, LinkPolicy } from '../link/transport.ts';
import type { StoreSizeLimits } from '../store/driver.ts';
import { type ActorPlacement, actorProcessKeys, readActorPlacement } from './_actor-process.ts';
import { checkActorHosts, readHosts } from './_hosts.ts';
import { type ConfigPath, describeValue, isMapping, type Reporter, showValue } from './_report.ts';
import {
  defaultStoreSettings,
  type ProcessActor,
  storeSettingsKeys,
  validateStoreSettings,
} from './_store-settings.ts';
import { closest, didYouMean } from './_suggest.ts';
import {
  defaultTransportSettings,
  transportNames,
  transportSettingsKeys,
  validateTransportSettings,
} from './_transport-settings.ts';
import { byteSizeUnits, parseByteSize } from './byte-size.ts';
import { durationUnits, parseDuration } from './duration.ts';
import { toLinkGraph } from './graph.ts';
import {
  type ActorConfig,
  type ConnectionConfig,
  DEFAULT_IMPORT_TIMEOUT_MS,
  DEFAULT_LINK_CAPACITY,
  DEFAULT_SIGNAL_TIMEOUT_MS,
  DEFAULT_STORE_SIZE_BYTES,
  type HostConfig,
  MAX_LINK_CAPACITY,
  type OnError,
  type PipelineSettings,
  type StoreName,
} from './types.ts';

/** An actor whose `package` and `class` still have to be resolved and imported. */
export interface DraftActor {
  name: string;
  /** `package`, when it is a non-empty string. */
  package: string | undefined;
  /** `class`, when it is a non-empty string. */
  className: string | undefined;
  options: Record<string, unknown>;
  /** `max_heap_mb`, when given and valid. */
  maxHeapMb?: number;
  onError: OnError;
  /** Set when the actor runs in a process of its own (`method: process`, `runtime:`). */
  process?: ActorPlacement['process'];
  /** The key that put it in a process of its own, as written (`method: fork`), for messages. */
  placedBy?: string;
  restart: ActorConfig['restart'];
}

/** The config as far as it could be read without importing anything. */
export interface Draft {
  settings: PipelineSettings;
  actors: DraftActor[];
  connections: ConnectionConfig[];
  hosts: HostConfig[];
}

const topLevelKeys = ['settings', 'actors', 'connections', 'hosts'];
/** improv's top-level keys that configure its Redis / plasma store; our store is set up elsewhere. */
const improvTopLevelKeys = ['plasma_config', 'datastore'];
const settingsKeys = [
  'store_size',
  'signal_timeout',
  'import_timeout',
  'python',
  ...storeSettingsKeys,
  ...transportSettingsKeys,
];
/**
 * Bounds of `signal_timeout` and `import_timeout`: below, a busy machine would end healthy actors;
 * above, nobody waits.
 */
const TIMEOUT_MIN_MS = 100;
const TIMEOUT_MAX_MS = 3_600_000;
const onErrorValues = ['continue', 'fail'] as const satisfies readonly OnError[];
/** improv's settings that improv-ts has no use for (ports are CLI options here; no harvester, ...). */
const improvSettingsKeys = [
  'control_port',
  'output_port',
  'actor_in_port',
  'logging_port',
  'harvest_data_from_memory',
  'use_hdd',
  'use_watcher',
];
const connectionKeys = ['sources', 'sinks', 'capacity', 'policy', 'transport'];
const policies = ['block', 'drop-oldest'] as const satisfies readonly LinkPolicy[];

/** The keys of an actor that improv-ts reads itself (every other is an option of the actor). */
const readActorKeys = ['package', 'class', 'max_heap_mb', 'on_error', ...actorProcessKeys];

const exampleActors = 'actors:\n    Generator:\n      package: actors/generator.ts\n      class: Generator';

/** Checks everything that needs no module import. */
export function validateStructure(
  value: unknown,
  reporter: Reporter,
  emptyMessage: string,
  storeSizeLimits?: StoreSizeLimits,
  hostsLocal = false,
  pythonActors: ReadonlySet<string> = new Set(),
  storeOverride?: StoreName,
): Draft {
  const draft: Draft = { settings: defaultSettings(), actors: [], connections: [], hosts: [] };
  if (value === null || value === undefined) {
    reporter.error([], emptyMessage, `describe the pipeline, starting with\n  ${exampleActors}`);
    return draft;
  }
  if (!isMapping(value)) {
    reporter.error(
      [],
      `the config must be a mapping with "actors" (and optionally "settings" and "connections"), not ${describeValue(value)}`,
      `start the file with\n  ${exampleActors}`,
    );
    return draft;
  }
  for (const key of Object.keys(value)) {
    // improv's Redis settings: read with the store's settings.
    if (topLevelKeys.includes(key) || key === 'redis_config') continue;
    if (key === 'modules') {
      reporter.error(
        [key],
        '"modules" is what early improv versions called the actors section',
        'rename "modules:" to "actors:" (each entry keeps its package and class)',
        { part: 'key' },
      );
    } else if (improvTopLevelKeys.includes(key)) {
      reporter.warning(
        [key],
        `"${key}" is improv's store configuration; improv-ts ignores it`,
        'remove it; the store is settings.store (memory, lmdb or redis) and its size settings.store_size',
        { part: 'key' },
      );
    } else {
      reporter.error(
        [key],
        `unknown top-level key "${key}"`,
        `${didYouMean(key, topLevelKeys)}the top level takes ${topLevelKeys.join(', ')}`,
        { part: 'key' },
      );
    }
  }
  // Actors first, into a list of their own so the walk order stays settings, actors: the store's
  // settings depend on whether an actor runs in its own process.
  const hosts = readHosts(value.hosts, reporter);
  draft.hosts = hostsLocal ? [] : hosts.hosts;
  const actorReporter = reporter.fork();
  const actorNames = validateActors(value, actorReporter, draft.actors, pythonActors);
  checkActorHosts(draft.actors, hosts, actorReporter, hostsLocal);
  // The actor that decides the store: one on another host (only Redis reaches it), else one in a process.
  const apart =
    draft.actors.find((actor) => actor.process?.host !== undefined) ??
    draft.actors.find((actor) => actor.process !== undefined);
  const processActor =
    apart === undefined
      ? undefined
      : {
          name: apart.name,
          placedBy:
            apart.process?.host !== undefined ? `host: ${apart.process.host}` : (apart.placedBy ?? 'method: process'),
          ...(apart.process?.host === undefined ? {} : { host: apart.process.host }),
        };
  draft.settings = validateSettings(
    value.settings,
    value.redis_config,
    reporter,
    storeSizeLimits,
    processActor,
    storeOverride,
  );
  reporter.diagnostics.push(...actorReporter.diagnostics);
  draft.connections = validateConnections(value.connections, actorNames, reporter);
  checkOneTransportPerLink(draft.connections, reporter);
  checkPlacement(draft, reporter);
  return draft;
}

/** A connection that names a transport its actors' placement cannot use (`transport: local` into a process actor). */
function checkPlacement(draft: Pick<Draft, 'actors' | 'connections'>, reporter: Reporter): void {
  const { problems } = crossProcessConnections(draft, toLinkGraph(draft).edges);
  for (const problem of problems) {
    reporter.error(['connections', problem.connection, 'transport'], problem.message, problem.fix);
  }
}

/**
 * A link belongs to one transport: an endpoint in several connections (fan-in into one sink from
 * two connections) must not have them on different transports.
 */
function checkOneTransportPerLink(connections: ConnectionConfig[], reporter: Reporter): void {
  const first = new Map<string, ConnectionConfig>();
  for (const connection of connections) {
    for (const endpoint of [...connection.sources, ...connection.sinks]) {
      const key = `${endpoint.actor}.${endpoint.link}`;
      const earlier = first.get(key);
      if (earlier === undefined) {
        first.set(key, connection);
        continue;
      }
      if (earlier.transport === connection.transport) continue;
      const name = (c: ConnectionConfig) => c.transport ?? 'the default (settings.transport)';
      reporter.error(
        ['connections', connection.name, ...(connection.transport === undefined ? [] : ['transport'])],
        `connection "${connection.name}" puts ${key} on ${name(connection)}, but connection "${earlier.name}" puts it on ${name(earlier)}; one link uses one transport`,
        `give both connections the same transport:, or use another link name on ${endpoint.actor}`,
        connection.transport === undefined ? { part: 'key' } : undefined,
      );
    }
  }
}

// --- settings ---------------------------------------------------------------------------------

function defaultSettings(): PipelineSettings {
  return {
    storeSizeBytes: DEFAULT_STORE_SIZE_BYTES,
    signalTimeoutMs: DEFAULT_SIGNAL_TIMEOUT_MS,
    importTimeoutMs: DEFAULT_IMPORT_TIMEOUT_MS,
    store: defaultStoreSettings(),
    transport: defaultTransportSettings(),
  };
}

/** A zod field that parses with `parse` (which throws a RangeError that says what is wrong). */
const parsed = (what: string, parse: (value: number | string) => number) =>
  z.union([z.number(), z.string()], { error: what }).transform((value, context) => {
    try {
      return parse(value);
    } catch (error) {
      context.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });

/** A duration setting within the bounds every timeout shares. */
const timeout = parsed('must be a number of seconds or a string such as "5s"', parseDuration).pipe(
  z
    .number()
    .min(TIMEOUT_MIN_MS, { error: `must be at least ${TIMEOUT_MIN_MS} ms` })
    .max(TIMEOUT_MAX_MS, { error: 'must be at most 1h' }),
);

const settingsSchema = z.object({
  store_size: parsed('must be a number of bytes or a string such as "512MiB"', parseByteSize).default(
    DEFAULT_STORE_SIZE_BYTES,
  ),
  signal_timeout: timeout.default(DEFAULT_SIGNAL_TIMEOUT_MS),
  import_timeout: timeout.default(DEFAULT_IMPORT_TIMEOUT_MS),
  python: z.string({ error: 'must be a command or a path' }).trim().min(1, { error: 'must not be empty' }).optional(),
});

function timeoutFix(example: string): string {
  return `give seconds as a number, or a string with a unit: ${example} (units ${durationUnits.join(', ')}), from ${TIMEOUT_MIN_MS}ms to 1h`;
}

/** How to write each setting, for fixes. */
const settingFixes: Record<string, string> = {
  store_size: `give bytes as a number, or a string with a unit: store_size: 512MiB (units ${byteSizeUnits.join(', ')})`,
  signal_timeout: timeoutFix('signal_timeout: 5s'),
  import_timeout: timeoutFix('import_timeout: 30s'),
  python:
    'give the interpreter of your Python actors: a command on PATH (python: python3) or a path (python: /opt/venv/bin/python)',
};

function validateSettings(
  settings: unknown,
  redisConfig: unknown,
  reporter: Reporter,
  limits: StoreSizeLimits | undefined,
  processActor: ProcessActor | undefined,
  storeOverride: StoreName | undefined,
): PipelineSettings {
  const defaults = defaultSettings();
  if (settings === undefined || settings === null) {
    defaults.store = validateStoreSettings({}, redisConfig, reporter, processActor, storeOverride);
    return defaults;
  }
  if (!isMapping(settings)) {
    reporter.error(
      ['settings'],
      `settings must be a mapping, not ${describeValue(settings)}`,
      'write it as\n  settings:\n    store_size: 512MiB',
    );
    return defaults;
  }
  for (const key of Object.keys(settings)) {
    if (settingsKeys.includes(key)) continue;
    if (key === 'use_hdd') {
      // improv's LMDB store, kept on disk.
      reporter.warning(
        ['settings', key],
        'setting "use_hdd" is improv\'s switch for its LMDB store; improv-ts ignores it',
        'write  store: lmdb  and  lmdb: { path: data/run.lmdb, keep: true }  under settings to keep the data on disk',
        { part: 'key' },
      );
    } else if (improvSettingsKeys.includes(key)) {
      reporter.warning(['settings', key], `setting "${key}" is not used by improv-ts; ignored`, 'remove it', {
        part: 'key',
      });
    } else if (closest(key, settingsKeys) !== undefined) {
      // A misspelt known setting would silently fall back to its default: an error.
      reporter.error(
        ['settings', key],
        `unknown setting "${key}"`,
        `${didYouMean(key, settingsKeys)}settings takes ${settingsKeys.join(', ')}`,
        { part: 'key' },
      );
    } else {
      // A setting of another version (or of a tool reading the same file): improv tolerates these.
      reporter.warning(
        ['settings', key],
        `unknown setting "${key}"; ignored`,
        `settings takes ${settingsKeys.join(', ')}; remove it if it is not meant for another tool`,
        { part: 'key' },
      );
    }
  }
  const store = validateStoreSettings(settings, redisConfig, reporter, processActor, storeOverride);
  defaults.store = store;
  const transport = validateTransportSettings(settings, reporter);
  defaults.transport = transport;
  const result = settingsSchema.safeParse(settings);
  if (result.success) {
    const size = result.data.store_size;
    // The limits of the driver the pipeline names; another driver checks its size when it opens.
    if (limits && limits.driver === store.driver && (size < limits.minBytes || size > limits.maxBytes)) {
      reporter.error(
        ['settings', 'store_size'],
        `settings: store_size of ${size} bytes is ${size < limits.minBytes ? 'less' : 'more'} than the ${limits.driver} store can hold (${limits.minBytes} to ${limits.maxBytes} bytes)`,
        `give a size from ${formatSize(limits.minBytes)} to ${formatSize(limits.maxBytes)}, e.g. store_size: 512MiB`,
      );
    }
    return {
      storeSizeBytes: size,
      signalTimeoutMs: result.data.signal_timeout,
      importTimeoutMs: result.data.import_timeout,
      ...(result.data.python === undefined ? {} : { python: result.data.python }),
      store,
      transport,
    };
  }
  for (const issue of result.error.issues) {
    const key = String(issue.path[0]);
    // The store's and the transport's own settings were checked above.
    if (storeSettingsKeys.includes(key) || transportSettingsKeys.includes(key)) continue;
    reporter.error(
      ['settings', ...(issue.path as (string | number)[])],
      issue.code === 'custom'
        ? `settings: ${key} is invalid: ${issue.message}`
        : `settings: ${key} ${issue.message}, not ${showValue(settings[key])}`,
      settingFixes[key] ?? `see the README's table of settings for ${key}`,
    );
  }
  return defaults;
}

/** Bytes as a size with a binary unit, exact: `16 GiB - 8 B` rather than a rounded `16.00 GiB`. */
function formatSize(bytes: number): string {
  for (const [unit, size] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
    const up = Math.ceil(bytes / size) * size;
    if (bytes >= size && up - bytes < 1024) return `${up / size} ${unit} - ${up - bytes} B`;
  }
  return `${bytes} B`;
}

// --- actors -----------------------------------------------------------------------------------

/**
 * The longest actor name, in UTF-8 bytes: the run folder holds `actors/<name>.log` (`-2`… on a
 * clash), and file systems allow 255 bytes per file name; the rest is margin.
 */
export const MAX_ACTOR_NAME_BYTES = 200;

const utf8 = new TextEncoder();

/** Fills `out` with the actors; returns every declared name, or `undefined` when `actors:` is unusable. */
function validateActors(
  top: Record<string, unknown>,
  reporter: Reporter,
  out: DraftActor[],
  pythonActors: ReadonlySet<string>,
): string[] | undefined {
  const actors = top.actors;
  if (actors === undefined) {
    reporter.error(['actors'], 'no actors: the config has no "actors" section', `add one:\n  ${exampleActors}`, {
      at: [],
    });
    return undefined;
  }
  if (actors === null || (isMapping(actors) && Object.keys(actors).length === 0)) {
    reporter.error(
      ['actors'],
      'no actors: the "actors" section is empty',
      `declare at least one:\n  ${exampleActors}`,
      {
        at: ['actors'],
        part: 'key',
      },
    );
    return [];
  }
  if (!isMapping(actors)) {
    reporter.error(
      ['actors'],
      `"actors" must be a mapping from actor names to their package and class, not ${describeValue(actors)}`,
      `write it as\n  ${exampleActors}`,
    );
    return undefined;
  }
  const names = Object.keys(actors);
  for (const name of names) {
    const path = ['actors', name];
    if (name === '' || /[.\s]/.test(name)) {
      const suggestion = name.trim().replace(/[.\s]+/g, '_') || 'Generator';
      reporter.error(
        path,
        `actor name "${name}" cannot be used: names may not be empty or contain "." or whitespace`,
        `rename it, e.g. "${suggestion}", and use the new name in connections`,
        { part: 'key' },
      );
    }
    const bytes = utf8.encode(name).length;
    if (bytes > MAX_ACTOR_NAME_BYTES) {
      reporter.error(
        path,
        `actor name "${[...name].slice(0, 24).join('')}…" is too long: ${bytes} bytes, at most ${MAX_ACTOR_NAME_BYTES} (UTF-8); its log file actors/<name>.log in the run folder needs a file name the file system can hold`,
        `shorten it to ${MAX_ACTOR_NAME_BYTES} bytes or fewer, and use the new name in connections`,
        { part: 'key' },
      );
    }
    const spec = actors[name];
    if (!isMapping(spec)) {
      reporter.error(
        path,
        `actor "${name}" must be a mapping with package and class, not ${describeValue(spec)}`,
        `write it as\n  ${name}:\n    package: actors/${name.toLowerCase()}.ts\n    class: ${name}`,
        spec === null || spec === undefined ? { part: 'key' } : {},
      );
      continue;
    }
    const actor: DraftActor = {
      name,
      package: requiredString(spec, 'package', path, reporter, `package: actors/${name.toLowerCase()}.ts`),
      className: requiredString(spec, 'class', path, reporter, `class: ${name}`),
      options: {},
      onError: 'continue',
      ...readActorPlacement(name, spec, path, reporter, pythonActors.has(name)),
    };
    if (name.includes('GUI') && !('visual' in spec)) {
      reporter.warning(
        path,
        `actor "${name}": improv treated an actor whose name contains "GUI" as its Qt front end; improv-ts runs it as an ordinary actor in a worker, where a Qt window cannot open`,
        'drive the pipeline with improv run (status shows every actor and link), and plot from an actor of your own',
        { part: 'key' },
      );
    }
    for (const [key, option] of Object.entries(spec)) {
      if (key === 'package' || key === 'class' || actorProcessKeys.includes(key)) continue;
      if (key === 'max_heap_mb') {
        if (typeof option === 'number' && Number.isFinite(option) && option >= 16) actor.maxHeapMb = option;
        else {
          reporter.error(
            [...path, key],
            `actor "${name}": max_heap_mb must be a number of MiB, at least 16, not ${describeValue(option)}`,
            "write e.g.  max_heap_mb: 512  (the heap limit of the actor's worker), or remove it for the runtime's default",
          );
        }
        continue;
      }
      if (key === 'on_error') {
        if (onErrorValues.includes(option as OnError)) actor.onError = option as OnError;
        else {
          reporter.error(
            [...path, key],
            `actor "${name}": on_error must be ${onErrorValues.join(' or ')}, not ${describeValue(option)}`,
            `${typeof option === 'string' ? didYouMean(option, onErrorValues) : ''}write  on_error: continue  (log the error and call runStep() again after a back-off) or  on_error: fail  (the first error fails the actor)`,
          );
        }
        continue;
      }
      if (key === 'visual') {
        reporter.warning(
          [...path, key],
          `actor "${name}": "visual" is how improv's Qt GUI actor named the actor it shows; improv-ts has no GUI actor, so it is passed on as an ordinary option`,
          'drive the pipeline with improv run (status shows every actor and link), and plot from an actor of your own; remove visual: if nothing reads it',
          { part: 'key' },
        );
        actor.options[key] = option;
        continue;
      }
      if (key === 'daemon') {
        reporter.warning(
          [...path, key],
          `actor "${name}": "daemon" is improv's daemon flag for actor processes; improv-ts ends every actor process with the pipeline, so it is ignored`,
          'remove it',
          { part: 'key' },
        );
        continue;
      }
      // Every other key is the actor's option; one a letter or two away from a key improv-ts reads
      // is most likely that key misspelt, silently without effect.
      if ((key === 'process' || key === 'processes') && (option === true || option === 'true')) {
        // `process: true` reads like a placement, but is only an option: the actor would run as a worker.
        reporter.warning(
          [...path, key],
          `actor "${name}": "${key}: ${String(option)}" is passed to the actor as an option; it does not put the actor in a process of its own`,
          'write  method: process  for that (or runtime: bun / deno / node); keep it if the actor reads an option named process',
          { part: 'key' },
        );
        actor.options[key] = option;
        continue;
      }
      const meant = closest(key, readActorKeys);
      if (meant !== undefined) {
        reporter.warning(
          [...path, key],
          `actor "${name}": "${key}" is passed to the actor as an option; did you mean "${meant}"?`,
          `rename it to ${meant}, or keep it if the actor reads an option named ${key}`,
          { part: 'key' },
        );
      }
      actor.options[key] = option;
    }
    out.push(actor);
  }
  return names;
}

function requiredString(
  spec: Record<string, unknown>,
  key: 'package' | 'class',
  path: ConfigPath,
  reporter: Reporter,
  example: string,
): string | undefined {
  const value = spec[key];
  const what = key === 'package' ? 'the module file, relative to the config file' : 'the exported actor class';
  if (value === undefined) {
    reporter.error([...path, key], `actor "${path[1]}" has no ${key}`, `add  ${example}  (${what})`, {
      at: path,
      part: 'key',
    });
    return undefined;
  }
  if (typeof value !== 'string' || value.trim() === '') {
    reporter.error(
      [...path, key],
      `actor "${path[1]}": ${key} must be a non-empty string, not ${describeValue(value)}`,
      `write it as  ${example}  (${what})`,
    );
    return undefined;
  }
  return value.trim();
}

// --- connections ------------------------------------------------------------------------------

const connectionOptionsSchema = z.object({
  capacity: z
    .int({ error: 'must be a whole number of messages >= 1' })
    .min(1, { error: 'must be a whole number of messages >= 1' })
    .max(MAX_LINK_CAPACITY, { error: `must be at most ${MAX_LINK_CAPACITY} (2^30) messages` })
    .default(DEFAULT_LINK_CAPACITY),
  policy: z.enum(policies, { error: `must be one of ${policies.join(', ')}` }).default('block'),
});

/** Where a link endpoint was first used, to catch one link used in both directions. */
interface EndpointUse {
  role: 'source' | 'sink';
  connection: string;
}

function validateConnections(
  connections: unknown,
  actorNames: string[] | undefined,
  reporter: Reporter,
): ConnectionConfig[] {
  // No connections is a valid pipeline: a single actor that needs no links.
  if (connections === undefined || connections === null) return [];
  if (!isMapping(connections)) {
    reporter.error(
      ['connections'],
      `"connections" must be a mapping, not ${describeValue(connections)}`,
      'write it as\n  connections:\n    Generator.q_out: [Processor.q_in]',
    );
    return [];
  }
  const uses = new Map<string, EndpointUse>();
  const out: ConnectionConfig[] = [];
  for (const [name, spec] of Object.entries(connections)) {
    const path = ['connections', name];
    const context = { name, actorNames, reporter, uses };
    if (isMapping(spec)) {
      out.push(longForm(name, spec, path, context));
    } else if (typeof spec === 'string' || Array.isArray(spec)) {
      const source = parseEndpoint(name, path, 'key', context);
      const connection = newConnection(name);
      if (source) {
        connection.sources = [source];
        claim(source, 'source', path, { part: 'key' }, context);
      }
      connection.sinks = endpointList(spec, path, 'sink', context);
      out.push(connection);
    } else if (spec === null || spec === undefined) {
      reporter.error(
        path,
        `connection "${name}" has no sinks`,
        `list them:  ${isEndpointText(name) ? name : 'Generator.q_out'}: [Processor.q_in]  or use  sources: and sinks:`,
        { part: 'key' },
      );
    } else {
      reporter.error(
        path,
        `connection "${name}" must be a list of sinks (Source.link: [Sink.link]) or a mapping with sources and sinks, not ${describeValue(spec)}`,
        `write it as\n  ${name}:\n    sources: [Generator.q_out]\n    sinks: [Processor.q_in]`,
      );
    }
  }
  return out;
}

interface ConnectionContext {
  name: string;
  actorNames: string[] | undefined;
  reporter: Reporter;
  uses: Map<string, EndpointUse>;
}

function longForm(
  name: string,
  spec: Record<string, unknown>,
  path: ConfigPath,
  context: ConnectionContext,
): ConnectionConfig {
  const { reporter } = context;
  for (const key of Object.keys(spec)) {
    if (connectionKeys.includes(key)) continue;
    reporter.error(
      [...path, key],
      `connection "${name}": unknown key "${key}"`,
      `${didYouMean(key, connectionKeys)}a connection takes ${connectionKeys.join(', ')}`,
      { part: 'key' },
    );
  }
  const connection = newConnection(name);
  for (const role of ['source', 'sink'] as const) {
    const key = `${role}s` as const;
    if (spec[key] === undefined) {
      reporter.error(
        [...path, key],
        `connection "${name}" has no ${key}`,
        `add  ${key}: [${role === 'source' ? 'Generator.q_out' : 'Processor.q_in'}]`,
        { at: path, part: 'key' },
      );
      continue;
    }
    connection[key] = endpointList(spec[key], [...path, key], role, context);
  }
  const options = connectionOptionsSchema.safeParse({ capacity: spec.capacity, policy: spec.policy });
  if (options.success) {
    connection.capacity = options.data.capacity;
    connection.policy = options.data.policy;
  } else {
    for (const issue of options.error.issues) {
      const key = String(issue.path[0]) as 'capacity' | 'policy';
      const value = spec[key];
      const fix =
        key === 'capacity'
          ? `give the number of messages each sink holds, e.g.  capacity: ${DEFAULT_LINK_CAPACITY}`
          : `${typeof value === 'string' ? didYouMean(value, policies) : ''}policy is one of ${policies.join(', ')} (default block)`;
      reporter.error([...path, key], `connection "${name}": ${key} ${issue.message}, not ${showValue(value)}`, fix);
    }
  }
  if (spec.transport !== undefined) {
    const value = spec.transport;
    if (typeof value === 'string' && (transportNames as readonly string[]).includes(value)) {
      connection.transport = value as (typeof transportNames)[number];
    } else {
      reporter.error(
        [...path, 'transport'],
        `connection "${name}": transport must be one of ${transportNames.join(', ')}, not ${showValue(value)}`,
        `${typeof value === 'string' ? didYouMean(value, transportNames) : ''}write e.g.  transport: zmq  (default: settings.transport, else local)`,
      );
    }
  }
  return connection;
}

/** Reads a scalar or list of endpoints; reports each bad one and returns the good ones. */
function endpointList(
  value: unknown,
  path: ConfigPath,
  role: 'source' | 'sink',
  context: ConnectionContext,
): Endpoint[] {
  const { name, reporter } = context;
  const items: [unknown, ConfigPath][] =
    typeof value === 'string'
      ? [[value, path]]
      : Array.isArray(value)
        ? value.map((item, i) => [item, [...path, i]])
        : [];
  if (!Array.isArray(value) && typeof value !== 'string') {
    reporter.error(
      path,
      `connection "${name}": ${role}s must be an endpoint (Actor.link) or a list of them, not ${describeValue(value)}`,
      `write it as  [${role === 'source' ? 'Generator.q_out' : 'Processor.q_in'}]`,
    );
    return [];
  }
  if (items.length === 0) {
    reporter.error(path, `connection "${name}" has no ${role}s (the list is empty)`, `list at least one ${role}`);
    return [];
  }
  const endpoints: Endpoint[] = [];
  const seen = new Set<string>();
  for (const [item, itemPath] of items) {
    const endpoint = parseEndpoint(item, itemPath, 'value', context);
    if (!endpoint) continue;
    const key = `${endpoint.actor}.${endpoint.link}`;
    if (seen.has(key)) {
      reporter.error(
        itemPath,
        `connection "${name}": ${role} "${key}" is listed twice`,
        `remove the second "${key}"; each ${role} is connected once`,
      );
      continue;
    }
    seen.add(key);
    claim(endpoint, role, itemPath, {}, context);
    endpoints.push(endpoint);
  }
  return endpoints;
}

const identifier = /^[A-Za-z_$][\w$]*$/;

function isEndpointText(text: string): boolean {
  const dot = text.indexOf('.');
  return dot > 0 && !/\s/.test(text) && text.indexOf('.', dot + 1) === -1 && identifier.test(text.slice(dot + 1));
}

/**
 * `Actor.link` → endpoint; reports a malformed one, or one naming an actor that does not exist
 * (unless `actors:` itself was unusable, which is reported once already).
 */
function parseEndpoint(
  text: unknown,
  path: ConfigPath,
  part: 'key' | 'value',
  context: ConnectionContext,
): Endpoint | undefined {
  const { name, reporter, actorNames } = context;
  const options = { part };
  if (typeof text !== 'string') {
    reporter.error(
      path,
      `connection "${name}": expected an endpoint Actor.link, not ${describeValue(text)}`,
      'write it as Actor.link, e.g. Processor.q_in',
      options,
    );
    return undefined;
  }
  const dot = text.indexOf('.');
  const actor = text.slice(0, dot);
  const link = text.slice(dot + 1);
  if (!isEndpointText(text)) {
    const shortFormKey = part === 'key';
    const message = shortFormKey
      ? `connection "${name}": the key of a connection written as a list must be its source endpoint (Actor.link)`
      : `connection "${name}": malformed endpoint "${text}": expected Actor.link (an actor name, ".", and a link name such as q_in)`;
    let fix: string;
    if (shortFormKey) {
      fix = `write it as\n  ${name}:\n    sources: [Generator.q_out]\n    sinks: [Processor.q_in]\nor as  Generator.q_out: [Processor.q_in]`;
    } else if (dot > 0 && !/\s/.test(actor) && !actor.includes('.') && link !== '' && !link.includes('.')) {
      const fixed = link.replace(/[^\w$]/g, '_').replace(/^(\d)/, '_$1');
      fix = `link names are identifiers (letters, digits, _ and $, not starting with a digit): e.g. ${actor}.${fixed}`;
    } else {
      fix = 'write it as Actor.link, e.g. Processor.q_in';
    }
    reporter.error(path, message, fix, options);
    return undefined;
  }
  if (actorNames && !actorNames.includes(actor)) {
    const known = actorNames.length > 0 ? `declared actors: ${actorNames.join(', ')}` : 'no actors are declared';
    const suggestion = closest(actor, actorNames);
    reporter.error(
      path,
      `connection "${name}": endpoint "${text}" names an unknown actor "${actor}"`,
      suggestion
        ? `did you mean "${suggestion}.${link}"? (${known})`
        : `declare "${actor}" under actors, or fix the name (${known})`,
      options,
    );
    return undefined;
  }
  return { actor, link };
}

/** Records the direction of a link, reporting a link used as a source in one place and a sink in another. */
function claim(
  endpoint: Endpoint,
  role: 'source' | 'sink',
  path: ConfigPath,
  options: { part?: 'key' },
  context: ConnectionContext,
): void {
  const key = `${endpoint.actor}.${endpoint.link}`;
  const first = context.uses.get(key);
  if (!first) {
    context.uses.set(key, { role, connection: context.name });
    return;
  }
  if (first.role === role) return;
  const firstWhere =
    first.connection === context.name ? 'in the same connection' : `in connection "${first.connection}"`;
  context.reporter.error(
    path,
    `link "${key}" is a ${role} in connection "${context.name}" but a ${first.role} ${firstWhere}: a link has one direction`,
    `give ${endpoint.actor} separate links for what it receives and what it sends, e.g. ${endpoint.actor}.q_in and ${endpoint.actor}.q_out`,
    options,
  );
}

/** A connection with no endpoints yet and the default capacity and policy. */
function newConnection(name: string): ConnectionConfig {
  return { name, sources: [], sinks: [], capacity: DEFAULT_LINK_CAPACITY, policy: 'block' };
}
