/**
 * The defaults the CLI wires: the store that `settings.store` (or `--store`) names — the
 * shared-memory store unless told otherwise — and SharedArrayBuffer-ring links. The LMDB and Redis
 * drivers are imported only when a pipeline uses them, so a memory run never loads native `lmdb` or
 * a Redis client.
 * @module
 */
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  createNexus,
  type DenoPermissionName,
  missingDenoPermissions,
  type Nexus,
  type NexusOptions,
  type PipelineConfig,
  type StoreDriver,
  type StoreName,
  type StoreSettings,
  type StoreSizeLimits,
} from '@improv/core';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';

/** Options of {@link createDefaultNexus}: those of `createNexus`, with store and transport optional. */
export type DefaultNexusOptions = Omit<NexusOptions, 'store' | 'transport'> &
  Partial<Pick<NexusOptions, 'store' | 'transport'>> & {
    /** `--store`: use this driver whatever `settings.store` says. */
    storeOverride?: StoreName;
  };

/** `createNexus` with the store of the pipeline's settings and the local transport unless others are given. */
export function createDefaultNexus(options: DefaultNexusOptions): Promise<Nexus> {
  const { storeOverride, ...rest } = options;
  return createNexus({
    ...rest,
    store: options.store ?? ((settings, config) => storeFor(settings, config, storeOverride)),
    transport: options.transport ?? createLocalTransport(),
  });
}

/** The driver for a pipeline's store settings (`override`: `--store`). */
export async function storeFor(
  settings: StoreSettings,
  config: Pick<PipelineConfig, 'source' | 'baseDir'>,
  override?: StoreName,
): Promise<StoreDriver> {
  const name = override ?? settings.driver;
  const remote = settings.redis.host !== undefined || settings.redis.url !== undefined;
  checkDenoPermissions(name, name === 'redis' ? (remote ? ['net'] : ['net', 'run']) : name === 'lmdb' ? ['ffi'] : []);
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
    if (url !== undefined) return createRedisStore({ url, ...secret });
    if (host !== undefined) return createRedisStore({ host, ...(port === undefined ? {} : { port }), ...secret });
    return createRedisStore({
      server: {
        ...(port === undefined ? {} : { port }),
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

/**
 * Under Deno: the LMDB driver loads a native library (`ffi`), the Redis driver talks over the
 * network (`net`) and may start redis-server (`run`). Says what to grant before Deno refuses mid-way.
 */
function checkDenoPermissions(store: StoreName, needs: DenoPermissionName[]): void {
  const missing = missingDenoPermissions(needs);
  if (missing.length === 0) return;
  throw new Error(
    `the ${store} store needs Deno's ${missing.map((name) => `--allow-${name}`).join(' ')}: run improv with them (or -A), e.g. deno run -A …`,
  );
}

/**
 * Where an LMDB store lives: `lmdb.path` relative to the pipeline file; by default a kept store goes
 * beside the pipeline (`<pipeline>.lmdb`), a store that is not kept into the system's temp folder.
 */
function lmdbPath(settings: StoreSettings, config: Pick<PipelineConfig, 'source' | 'baseDir'>): string {
  const written = settings.lmdb.path;
  const folder = config.source.startsWith('<') ? config.baseDir : path.dirname(config.source);
  if (written !== undefined) return path.resolve(folder, written);
  if (settings.lmdb.keep) return path.join(folder, `${path.basename(config.source).replace(/\.ya?ml$/i, '')}.lmdb`);
  return path.join(tmpdir(), `improv-${process.pid}-${Date.now().toString(36)}.lmdb`);
}

/** The sizes the default store can open, for `improv validate` (the other drivers check theirs when they open). */
export function defaultStoreSizeLimits(): StoreSizeLimits {
  return createMemoryStore().sizeLimits;
}
