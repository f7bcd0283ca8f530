/**
 * The store's settings (package-private): `settings.store`, `store_eviction`, `lmdb:` and `redis:`,
 * and improv's top-level `redis_config:` read as `redis:`. Each problem is a diagnostic at its node.
 * The memory store lives in one process's memory: with an actor in a process of its own, `store`
 * defaults to `lmdb`, and `store: memory` is an error.
 * @module
 */
import type { StoreEviction } from '../store/driver.ts';
import { type ConfigPath, describeValue, isMapping, type Reporter, showValue } from './_report.ts';
import { didYouMean } from './_suggest.ts';
import type { StoreName, StoreSettings } from './types.ts';

export const storeNames = ['memory', 'lmdb', 'redis'] as const satisfies readonly StoreName[];
export const evictionPolicies = ['none', 'oldest'] as const satisfies readonly StoreEviction[];
/** The settings keys this module reads. */
export const storeSettingsKeys = ['store', 'store_eviction', 'lmdb', 'redis'];

const lmdbKeys = ['path', 'keep', 'sync'];
const redisKeys = ['host', 'port', 'url', 'password', 'saving', 'fsync'];
/** improv's `redis_config` keys, accepted in `redis:` too. */
const improvRedisKeys = ['enable_saving', 'aof_dirname', 'generate_ephemeral_aof_dirname', 'fsync_frequency'];
/** improv's `fsync_frequency` words, and Redis's own. */
const fsyncWords: Record<string, 'always' | 'everysec' | 'no'> = {
  every_write: 'always',
  every_second: 'everysec',
  no_schedule: 'no',
  always: 'always',
  everysec: 'everysec',
  no: 'no',
};

/** An actor that runs in a process of its own, and the key that put it there (`method: process`). */
export interface ProcessActor {
  name: string;
  placedBy: string;
  /** The host it runs on, when not this machine. */
  host?: string;
}

export function defaultStoreSettings(): StoreSettings {
  return {
    driver: 'memory',
    eviction: 'none',
    lmdb: { keep: false, sync: false },
    redis: { saving: false },
    origins: {},
  };
}

/**
 * Reads the store settings out of `settings` (a mapping) and the top-level `redisConfig`
 * (improv's `redis_config:`, or undefined). `processActor` is the first actor that runs in a process
 * of its own, if any. `storeOverride` (the CLI's `--store`) is the store whatever `store` says: an
 * actor that cannot reach it is an error at that actor, which names the flag, and `origins.store`
 * is kept only when `store` names the same store.
 */
export function validateStoreSettings(
  settings: Record<string, unknown>,
  redisConfig: unknown,
  reporter: Reporter,
  processActor?: ProcessActor,
  storeOverride?: StoreName,
): StoreSettings {
  const result = defaultStoreSettings();
  const origins = result.origins;
  if (settings.store !== undefined) {
    const name = oneOf(settings.store, storeNames, ['settings', 'store'], reporter, 'store: lmdb');
    if (name !== undefined) result.driver = name;
    if (storeOverride === undefined || storeOverride === name) origins.store = reporter.origin(['settings', 'store']);
  }
  if (storeOverride !== undefined) {
    result.driver = storeOverride;
    if (processActor !== undefined) checkOverrideReach(storeOverride, processActor, reporter);
  } else if (processActor?.host !== undefined) {
    const { name, host } = processActor;
    if (settings.store === undefined) {
      result.driver = 'redis';
      result.chosenFor = `actor "${name}" runs on host ${host}`;
    } else if (settings.store === 'memory' || settings.store === 'lmdb') {
      reporter.error(
        ['settings', 'store'],
        `store: ${settings.store} cannot be reached by actor "${name}", which runs on host ${host}: it lives on this machine only`,
        'use  store: redis  (improv-ts starts a Redis server that the hosts reach, with a password), or run with --hosts local to keep every actor on this machine',
      );
    }
  } else if (processActor !== undefined) {
    const { name, placedBy } = processActor;
    if (settings.store === undefined) {
      result.driver = 'lmdb';
      result.chosenFor = `actor "${name}" runs in its own process (${placedBy})`;
    } else if (settings.store === 'memory') {
      reporter.error(
        ['settings', 'store'],
        `store: memory cannot be reached by actor "${name}", which runs in its own process (${placedBy})`,
        'use  store: lmdb  (one machine; a temporary database, removed at quit, unless lmdb: { path, keep: true } is set), or  store: redis  (several machines)',
      );
    }
  }
  if (settings.store_size !== undefined) origins.store_size = reporter.origin(['settings', 'store_size']);
  if (settings.store_eviction !== undefined) {
    origins.store_eviction = reporter.origin(['settings', 'store_eviction']);
    const policy = oneOf(
      settings.store_eviction,
      evictionPolicies,
      ['settings', 'store_eviction'],
      reporter,
      'store_eviction: oldest',
    );
    if (policy !== undefined) result.eviction = policy;
  }
  if (settings.lmdb !== undefined) {
    origins.lmdb = reporter.origin(['settings', 'lmdb']);
    readLmdb(settings.lmdb, result, reporter);
  }
  if (redisConfig !== undefined && redisConfig !== null) {
    if (settings.redis !== undefined) {
      reporter.error(
        ['redis_config'],
        'both settings.redis and improv\'s top-level "redis_config" configure Redis',
        'keep one of them (settings.redis takes the same keys)',
        { part: 'key' },
      );
    } else {
      origins.redis = reporter.origin(['redis_config']);
      readRedis(redisConfig, ['redis_config'], result, reporter);
      if (result.driver !== 'redis') {
        reporter.warning(
          ['redis_config'],
          `"redis_config" configures a Redis store, but this pipeline uses the ${result.driver} store${storeWhy(result, storeOverride)}`,
          'add  store: redis  under settings to use Redis, or remove redis_config',
          { part: 'key' },
        );
      }
    }
  }
  if (settings.redis !== undefined) {
    origins.redis = reporter.origin(['settings', 'redis']);
    readRedis(settings.redis, ['settings', 'redis'], result, reporter);
  }
  return result;
}

/**
 * `--store` names a store that `processActor` cannot reach: an error at that actor (its key in the
 * YAML), since the store did not come from the file.
 */
function checkOverrideReach(store: StoreName, processActor: ProcessActor, reporter: Reporter): void {
  const { name, placedBy, host } = processActor;
  const given = `--store ${store} (given on the command line)`;
  if (host !== undefined && store !== 'redis') {
    reporter.error(
      ['actors', name],
      `${given} cannot be reached by actor "${name}", which runs on host ${host}: the ${store} store lives on this machine only`,
      'run with  --store redis  (improv-ts starts a Redis server that the hosts reach, with a password), or with --hosts local to keep every actor on this machine',
      { part: 'key' },
    );
  } else if (host === undefined && store === 'memory') {
    reporter.error(
      ['actors', name],
      `${given} cannot be reached by actor "${name}", which runs in its own process (${placedBy}): the memory store lives in improv's own process`,
      'run with  --store lmdb  (one machine; a temporary database, removed at quit, unless lmdb: { path, keep: true } is set) or  --store redis  (several machines)',
      { part: 'key' },
    );
  }
}

/** Why the store is the one it is, when `store` is not written or `--store` overrides it. */
function storeWhy(result: StoreSettings, storeOverride?: StoreName): string {
  if (storeOverride !== undefined) return ` (--store ${storeOverride})`;
  if (result.origins.store !== undefined) return '';
  return result.chosenFor === undefined ? " (improv-ts's default)" : ` (chosen because ${result.chosenFor})`;
}

export function oneOf<T extends string>(
  value: unknown,
  allowed: readonly T[],
  path: ConfigPath,
  reporter: Reporter,
  example: string,
): T | undefined {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  const key = String(path[path.length - 1]);
  const suggestion = typeof value === 'string' ? didYouMean(value, allowed) : '';
  reporter.error(
    path,
    `settings: ${key} must be one of ${allowed.join(', ')}, not ${showValue(value)}`,
    `${suggestion}write e.g.  ${example}`,
  );
  return undefined;
}

export function checkKeys(value: Record<string, unknown>, known: string[], path: ConfigPath, reporter: Reporter): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    reporter.error(
      [...path, key],
      `unknown key "${key}" in ${path.join('.')}`,
      `${didYouMean(key, known)}${path.join('.')} takes ${known.join(', ')}`,
      { part: 'key' },
    );
  }
}

function readLmdb(value: unknown, result: StoreSettings, reporter: Reporter): void {
  const path: ConfigPath = ['settings', 'lmdb'];
  if (!isMapping(value)) {
    reporter.error(
      path,
      `settings: lmdb must be a mapping, not ${describeValue(value)}`,
      'write e.g.  lmdb: { path: data/run.lmdb, keep: true }',
    );
    return;
  }
  checkKeys(value, lmdbKeys, path, reporter);
  if (value.path !== undefined) {
    if (typeof value.path === 'string' && value.path.trim() !== '') result.lmdb.path = value.path;
    else {
      reporter.error(
        [...path, 'path'],
        `settings: lmdb.path must be a folder path, not ${showValue(value.path)}`,
        'write e.g.  path: data/run.lmdb  (relative to this file)',
      );
    }
  }
  for (const flag of ['keep', 'sync'] as const) {
    if (value[flag] === undefined) continue;
    if (typeof value[flag] === 'boolean') result.lmdb[flag] = value[flag];
    else {
      reporter.error(
        [...path, flag],
        `settings: lmdb.${flag} must be true or false, not ${showValue(value[flag])}`,
        undefined,
      );
    }
  }
}

function readRedis(value: unknown, path: ConfigPath, result: StoreSettings, reporter: Reporter): void {
  const where = path.join('.');
  if (!isMapping(value)) {
    reporter.error(
      path,
      `${where} must be a mapping, not ${describeValue(value)}`,
      'write e.g.  redis: { host: 127.0.0.1, port: 6379 }',
    );
    return;
  }
  checkKeys(value, [...redisKeys, ...improvRedisKeys], path, reporter);
  const redis = result.redis;
  for (const key of ['host', 'url', 'password', 'aof_dirname'] as const) {
    const text = value[key];
    if (text === undefined) continue;
    if (typeof text === 'string' && text !== '') {
      if (key === 'aof_dirname') redis.aofDir = text;
      else redis[key] = text;
    } else
      reporter.error([...path, key], `${where}.${key} must be a non-empty string, not ${showValue(text)}`, undefined);
  }
  if (redis.url !== undefined && !/^rediss?:\/\//.test(redis.url)) {
    reporter.error(
      [...path, 'url'],
      `${where}.url must be a redis:// or rediss:// URL, not ${showValue(redis.url)}`,
      'write e.g.  url: redis://127.0.0.1:6379',
    );
  }
  if (value.port !== undefined) {
    const port = value.port;
    if (typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65_535) redis.port = port;
    else
      reporter.error(
        [...path, 'port'],
        `${where}.port must be a port number from 1 to 65535, not ${showValue(port)}`,
        undefined,
      );
  }
  const saving = value.saving ?? value.enable_saving;
  if (saving !== undefined && saving !== null) {
    if (typeof saving === 'boolean') redis.saving = saving;
    else {
      const key = value.saving === undefined ? 'enable_saving' : 'saving';
      reporter.error([...path, key], `${where}.${key} must be true or false, not ${showValue(saving)}`, undefined);
    }
  }
  const fsync = value.fsync ?? value.fsync_frequency;
  if (fsync !== undefined && fsync !== null) {
    const key = value.fsync === undefined ? 'fsync_frequency' : 'fsync';
    const word = typeof fsync === 'string' ? fsyncWords[fsync] : undefined;
    if (word === undefined) {
      reporter.error(
        [...path, key],
        `${where}.${key} must be one of ${Object.keys(fsyncWords).join(', ')}, not ${showValue(fsync)}`,
        undefined,
      );
    } else redis.fsync = word;
  }
  if (value.generate_ephemeral_aof_dirname === true && redis.aofDir === undefined) {
    redis.aofDir = `improv_persistence_${crypto.randomUUID()}`;
  }
  // improv: any persistence option turns saving on unless it was set.
  if (saving === undefined && (redis.fsync !== undefined || redis.aofDir !== undefined)) redis.saving = true;
  if (saving === false && (redis.fsync !== undefined || redis.aofDir !== undefined)) {
    reporter.error(
      path,
      `${where}: cannot persist to disk with saving turned off`,
      'remove the fsync/aof options, or turn saving on',
    );
  }
  if ((redis.host !== undefined || redis.url !== undefined) && (redis.saving || redis.aofDir !== undefined)) {
    reporter.warning(
      path,
      `${where}: saving options apply only to a Redis server that improv-ts starts; this one is given by address and is not changed`,
      'configure persistence on that server itself, or remove them',
    );
  }
}
