/**
 * The defaults the CLI wires: the store that `settings.store` (or `--store`) names — the
 * shared-memory store unless told otherwise — and the transports the connections use
 * (`settings.transport`, `--transport`, a connection's `transport:`): SharedArrayBuffer-ring links
 * unless told otherwise, ZeroMQ links where asked. The LMDB and Redis
 * drivers are imported only when a pipeline uses them, so a memory run never loads native `lmdb` or
 * a Redis client.
 * @module
 */
import { tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import {
  ConfigError,
  createNexus,
  type DenoPermissionName,
  type Diagnostic,
  formatBytes,
  isLoopbackAddress,
  missingDenoPermissions,
  type Nexus,
  type NexusOptions,
  type PipelineConfig,
  type SettingOrigin,
  type StoreContext,
  type StoreDriver,
  type StoreSettings,
  type StoreSizeLimits,
  type Transport,
  type TransportName,
  type TransportSettings,
} from '@improv/core';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

/**
 * Options of {@link createDefaultNexus}: those of `createNexus` (`storeOverride` is `--store`), with
 * store and transport optional.
 */
export type DefaultNexusOptions = Omit<NexusOptions, 'store' | 'transport'> &
  Partial<Pick<NexusOptions, 'store' | 'transport'>> & {
    /** `--transport`: connections that name no transport of their own use this one. */
    transportOverride?: TransportName;
  };

/** `createNexus` with the store and the transports of the pipeline's settings unless others are given. */
export function createDefaultNexus(options: DefaultNexusOptions): Promise<Nexus> {
  const { transportOverride, ...rest } = options;
  return createNexus({
    ...rest,
    store: options.store ?? ((settings, config, context) => storeFor(settings, config, context)),
    transport: options.transport ?? ((settings, config) => transportsFor(settings, config, transportOverride)),
    // Imported when used: a pipeline without hosts never loads the agent's client.
    agents:
      options.agents ?? (async (host, log) => (await import('@improv/transport-zmq/agent')).connectAgent(host, log)),
  });
}

/**
 * The transports a pipeline's connections use, its default first (`override`: `--transport`). The
 * zmq transport is imported only when a connection uses it; its CURVE keys come from
 * `settings.zmq.keys` or the `IMPROV_ZMQ_KEYS` environment variable (a path without `.key`).
 */
export async function transportsFor(
  settings: TransportSettings,
  config: Pick<PipelineConfig, 'source' | 'baseDir' | 'connections' | 'actors'>,
  override?: TransportName,
): Promise<Transport[]> {
  const first = override ?? settings.name;
  const names = new Set<TransportName>([first]);
  for (const connection of config.connections) if (connection.transport) names.add(connection.transport);
  // Links into and out of an actor in its own process go over zmq (core's placement picks them).
  if (config.actors.some((actor) => actor.process !== undefined)) names.add('zmq');
  const transports: Transport[] = [];
  for (const name of names) {
    if (name === 'local') transports.push(createLocalTransport());
    else transports.push(await zmqTransport(settings, config));
  }
  return transports;
}

async function zmqTransport(
  settings: TransportSettings,
  config: Pick<PipelineConfig, 'source' | 'baseDir'>,
): Promise<Transport> {
  checkDenoPermissions('the zmq transport', ['net', 'read', 'write']);
  const { createZmqTransport } = await import('@improv/transport-zmq');
  const { readKeyPair } = await import('@improv/transport-zmq/keys');
  const { protocol, bind, keys } = settings.zmq;
  const fromEnv = keys === undefined ? process.env.IMPROV_ZMQ_KEYS?.trim() || undefined : undefined;
  let curve: Awaited<ReturnType<typeof readKeyPair>> | undefined;
  if (keys !== undefined) curve = await readKeyPair(path.resolve(configFolder(config), keys));
  else if (fromEnv !== undefined) {
    try {
      curve = await readKeyPair(path.resolve(fromEnv));
    } catch (error) {
      throw new Error(`IMPROV_ZMQ_KEYS=${fromEnv}: ${(error as Error).message}`);
    }
  }
  return createZmqTransport({
    protocol,
    ...(bind === undefined ? {} : { bind }),
    ...(curve === undefined ? {} : { curve }),
  });
}

/** The host of a `redis://` URL, without IPv6 brackets; undefined when it does not parse. */
function redisUrlHost(url: string): string | undefined {
  try {
    return new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return undefined;
  }
}

/** The driver for a pipeline's store settings (`--store` is already in them: `storeOverride` of the config). */
export async function storeFor(
  settings: StoreSettings,
  config: Pick<PipelineConfig, 'source' | 'baseDir'>,
  context: StoreContext = {},
): Promise<StoreDriver> {
  const name = settings.driver;
  const remote = settings.redis.host !== undefined || settings.redis.url !== undefined;
  checkDenoPermissions(
    `the ${name} store`,
    name === 'redis' ? (remote ? ['net'] : ['net', 'run']) : name === 'lmdb' ? ['ffi'] : [],
  );
  if (name === 'lmdb') {
    const { createLmdbStore } = await import('@improv/store/lmdb');
    return createLmdbStore({
      path: lmdbPath(settings, config),
      keep: settings.lmdb.keep,
      sync: settings.lmdb.sync,
    });
  }
  if (name === 'redis') {
    const { createRedisStore } = await import('@improv/store/redis');
    const { host, port, url, password, saving, fsync, aofDir } = settings.redis;
    const secret = password === undefined ? {} : { password };
    const loopback = context.reachableAt === undefined ? undefined : loopbackRedisProblem(settings);
    if (loopback !== undefined) throw new Error(loopback);
    if (url !== undefined) return createRedisStore({ url, ...secret });
    if (host !== undefined) return createRedisStore({ host, ...(port === undefined ? {} : { port }), ...secret });
    return createRedisStore({
      server: {
        ...(port === undefined ? {} : { port }),
        // Actors on other hosts reach it at this machine's address (with a password it makes).
        ...(context.reachableAt === undefined ? {} : { bind: context.reachableAt }),
        ...(saving
          ? {
              persistence: {
                ...(fsync ? { fsync } : {}),
                ...(aofDir ? { dir: path.resolve(config.baseDir, aofDir) } : {}),
              },
            }
          : {}),
      },
    });
  }
  return createMemoryStore();
}

/** A size limit in its largest whole binary unit: `4 KiB`, `8 TiB`. */
function wholeSize(bytes: number): string {
  for (const [unit, size] of [
    ['TiB', 2 ** 40],
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

/** `settings.redis` names a loopback address, which actors on other hosts cannot reach: why, or undefined. */
function loopbackRedisProblem(settings: StoreSettings): string | undefined {
  const { host, url } = settings.redis;
  const given = host ?? (url === undefined ? undefined : redisUrlHost(url));
  if (given === undefined || !isLoopbackAddress(given)) return undefined;
  return `settings.redis names ${given}, a loopback address, which actors on other hosts cannot reach; give an address of the Redis server that they reach, or remove host/url so that improv starts a server they reach`;
}

/**
 * What opening the pipeline's store would refuse, found without opening it (for `improv validate`):
 * a `store_size` outside the lmdb or redis driver's limits, or beyond this machine's memory for the
 * redis-server improv starts; an lmdb folder that a file is in the way of or that cannot be written, or whose store another run
 * has open or was kept while `keep` is false; a Redis address that actors on other hosts cannot
 * reach, where no server answers, or whose server refuses the login. An error diagnostic at the
 * setting, or `undefined`. Nothing is created or stored: the Redis probe logs in and asks for a PING.
 */
export async function checkStore(config: PipelineConfig): Promise<Diagnostic | undefined> {
  const settings = config.settings.store;
  const at = (message: string, origin: SettingOrigin | undefined): Diagnostic => ({
    severity: 'error',
    message,
    path: ['settings', 'store'],
    ...(config.source.startsWith('<') ? {} : { file: config.source }),
    ...origin,
  });
  // The loader checked store_size against the memory store's limits only; lmdb and redis have their own.
  if (settings.driver === 'lmdb' || settings.driver === 'redis') {
    const limits =
      settings.driver === 'lmdb'
        ? (await import('@improv/store/lmdb')).createLmdbStore({ path: tmpdir() }).sizeLimits
        : (await import('@improv/store/redis')).createRedisStore().sizeLimits;
    const size = config.settings.storeSizeBytes;
    if (size < limits.minBytes || size > limits.maxBytes) {
      return {
        severity: 'error',
        message: `settings: store_size of ${size} bytes is ${size < limits.minBytes ? 'less' : 'more'} than the ${limits.driver} store can hold (${limits.minBytes} to ${limits.maxBytes} bytes)`,
        fix: `give a size from ${wholeSize(limits.minBytes)} to ${wholeSize(limits.maxBytes)}, e.g. store_size: 512MiB`,
        path: ['settings', 'store_size'],
        ...(config.source.startsWith('<') ? {} : { file: config.source }),
        ...(settings.origins.store_size ?? settings.origins.store),
      };
    }
  }
  // As opening it would: a folder that cannot be made or written is refused first (its free space
  // means nothing then: /proc has 0 B), at settings.lmdb.
  if (settings.driver === 'lmdb' && (settings.lmdb.path !== undefined || settings.lmdb.keep)) {
    const { lmdbStoreProblem } = await import('@improv/store/lmdb');
    const problem = await lmdbStoreProblem(lmdbPath(settings, config), settings.lmdb.keep);
    if (problem !== undefined) return at(problem, settings.origins.lmdb ?? settings.origins.store);
  }
  if (settings.driver === 'lmdb') {
    // As opening it would: a store_size the disk cannot hold is refused at store_size.
    const { lmdbFreeSpaceProblem } = await import('@improv/store/lmdb');
    const space = lmdbFreeSpaceProblem(lmdbPath(settings, config), config.settings.storeSizeBytes);
    if (space !== undefined) {
      return {
        severity: 'error',
        message: space,
        fix: 'lower settings.store_size, free disk space, or give settings.lmdb.path on another disk',
        path: ['settings', 'store_size'],
        ...(config.source.startsWith('<') ? {} : { file: config.source }),
        ...(settings.origins.store_size ?? settings.origins.store),
      };
    }
  }
  if (settings.driver === 'redis' && settings.redis.host === undefined && settings.redis.url === undefined) {
    // improv starts its own redis-server, which open() refuses to size beyond this machine's memory.
    const memory = totalmem();
    if (config.settings.storeSizeBytes > memory) {
      return {
        severity: 'error',
        message: `settings: store_size of ${config.settings.storeSizeBytes} bytes is more than the ${formatBytes(memory)} of memory this machine has, which the redis-server improv starts must hold`,
        fix: 'lower settings.store_size, or use a Redis server on a larger machine (settings.redis: { host, port })',
        path: ['settings', 'store_size'],
        ...(config.source.startsWith('<') ? {} : { file: config.source }),
        ...(settings.origins.store_size ?? settings.origins.store),
      };
    }
  }
  if (settings.driver === 'redis') {
    const onOtherHosts = config.actors.some((actor) => actor.process?.host !== undefined);
    const loopback = onOtherHosts ? loopbackRedisProblem(settings) : undefined;
    if (loopback !== undefined) return at(loopback, settings.origins.redis ?? settings.origins.store);
    const { redisAddressProblem } = await import('@improv/store/redis');
    const { host, port, url, password } = settings.redis;
    const problem = await redisAddressProblem(
      {
        ...(url === undefined ? {} : { url }),
        ...(host === undefined ? {} : { host }),
        ...(port === undefined ? {} : { port }),
        ...(password === undefined ? {} : { password }),
      },
      config.settings.storeSizeBytes,
    );
    if (problem?.setting === 'store_size') {
      return {
        ...at(problem.message, settings.origins.store_size ?? settings.origins.store),
        path: ['settings', 'store_size'],
      };
    }
    if (problem !== undefined) return at(problem.message, settings.origins.redis ?? settings.origins.store);
  }
  return undefined;
}

/**
 * The token files of the hosts actors run on, read as `improv run` reads them (missing, a folder, not
 * an agent token file): a diagnostic at each `token_file` that would stop the run.
 */
export async function checkHosts(config: PipelineConfig): Promise<Diagnostic[]> {
  const used = new Set(config.actors.map((actor) => actor.process?.host).filter((host) => host !== undefined));
  const hosts = config.hosts.filter((host) => used.has(host.name));
  if (hosts.length === 0) return [];
  const { readHostToken } = await import('@improv/transport-zmq/agent');
  const diagnostics: Diagnostic[] = [];
  for (const host of hosts) {
    try {
      readHostToken(host);
    } catch (error) {
      if (!ConfigError.isInstance(error)) throw error;
      diagnostics.push(...(error as ConfigError).diagnostics);
    }
  }
  return diagnostics;
}

/**
 * Under Deno: the LMDB driver loads a native library (`ffi`), the Redis driver talks over the
 * network (`net`) and may start redis-server (`run`); the zmq transport (TypeScript ZMTP under Deno)
 * connects and binds sockets (`net`, and socket files for ipc). Says what to grant before Deno refuses mid-way.
 */
function checkDenoPermissions(what: string, needs: DenoPermissionName[]): void {
  const missing = missingDenoPermissions(needs);
  if (missing.length === 0) return;
  throw new Error(
    `${what} needs Deno's ${missing.map((name) => `--allow-${name}`).join(' ')}: run improv with them (or -A), e.g. deno run -A …`,
  );
}

/**
 * Where an LMDB store lives: `lmdb.path` relative to the pipeline file; by default a kept store goes
 * beside the pipeline (`<pipeline>.lmdb`), a store that is not kept into the system's temp folder.
 */
function lmdbPath(settings: StoreSettings, config: Pick<PipelineConfig, 'source' | 'baseDir'>): string {
  const written = settings.lmdb.path;
  const folder = configFolder(config);
  if (written !== undefined) return path.resolve(folder, written);
  if (settings.lmdb.keep) return path.join(folder, `${path.basename(config.source).replace(/\.ya?ml$/i, '')}.lmdb`);
  return path.join(tmpdir(), `improv-${process.pid}-${Date.now().toString(36)}.lmdb`);
}

/** The folder relative paths in a pipeline's settings start from: the file's, or `baseDir` for an object. */
function configFolder(config: Pick<PipelineConfig, 'source' | 'baseDir'>): string {
  return config.source.startsWith('<') ? config.baseDir : path.dirname(config.source);
}

/** The sizes the default store can open, for `improv validate` ({@link checkStore} checks lmdb's and redis's). */
export function defaultStoreSizeLimits(): StoreSizeLimits {
  return createMemoryStore().sizeLimits;
}
