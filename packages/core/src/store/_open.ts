/**
 * Opens the store of a pipeline run (package-private, used by Nexus): picks the driver (given, or
 * chosen from `settings.store` by the embedding program's function), opens it with the settings,
 * and turns a failure to open into a config error that points at the setting to fix.
 * @module
 */

import { settingError } from '../config/_setting-error.ts';
import type { PipelineConfig, StoreSettings } from '../config/types.ts';
import type { OpenStore, StoreDriver } from './driver.ts';

/** What a store chooser knows of where the pipeline runs. */
export interface StoreContext {
  /**
   * Present when actors run on other hosts: the address of this machine those hosts reach. A store
   * that starts its own server (Redis) must listen there too, not on loopback alone.
   */
  reachableAt?: string;
}

/** A driver, or a function that picks one from the pipeline's store settings (the CLI's way). */
export type StoreChoice =
  | StoreDriver
  | ((settings: StoreSettings, config: PipelineConfig, context: StoreContext) => StoreDriver | Promise<StoreDriver>);

/** The sizes `choice` can open, when it is a driver that says. */
export function sizeLimitsOf(choice: StoreChoice) {
  return typeof choice === 'function' ? undefined : choice.sizeLimits;
}

/** Picks and opens the store; a driver that cannot open fails as a `ConfigError` at its setting. */
export async function openPipelineStore(
  choice: StoreChoice,
  config: PipelineConfig,
  context: StoreContext = {},
): Promise<{ driver: StoreDriver; store: OpenStore; warning?: string }> {
  const settings = config.settings.store;
  // A store the settings do not name (`--store`, or the program's driver) fails at the pipeline's
  // file, still as a config error: what to change is said, not a stack.
  const pipeline = { path: [], file: config.source };
  let driver: StoreDriver;
  try {
    driver = typeof choice === 'function' ? await choice(settings, config, context) : choice;
  } catch (error) {
    throw settingError(
      error,
      settings.origins.store ?? settings.origins[settings.driver as 'lmdb' | 'redis'] ?? pipeline,
    );
  }
  const remote = config.actors.find((actor) => actor.process?.host !== undefined);
  if (remote !== undefined && driver.reach !== 'network') {
    throw settingError(
      new Error(
        `the ${driver.name} store lives on this machine, which actor "${remote.name}" cannot reach: it runs on host ${remote.process?.host}. Use store: redis (--store redis on the command line; createRedisStore() when embedding)`,
      ),
      settings.origins.store ?? pipeline,
    );
  }
  const apart = config.actors.find((actor) => actor.process !== undefined);
  if (apart !== undefined && driver.reach === 'process') {
    throw settingError(
      new Error(
        `the ${driver.name} store lives in this process's memory, which actor "${apart.name}" cannot reach: it runs in its own process. Use store: lmdb (one machine) or store: redis (several machines) — --store lmdb or redis on the command line; createLmdbStore() / createRedisStore() when embedding`,
      ),
      settings.origins.store ?? pipeline,
    );
  }
  try {
    const store = await driver.open({ sizeBytes: config.settings.storeSizeBytes, eviction: settings.eviction });
    if (typeof choice !== 'function' && settings.origins.store !== undefined && driver.name !== settings.driver) {
      const warning = `settings.store is ${settings.driver}, but the program passed the ${driver.name} store driver to createNexus, which is used`;
      return { driver, store, warning };
    }
    return { driver, store };
  } catch (error) {
    // A size no disk or memory here can hold is the size's fault; anything else the driver's settings'.
    const origin =
      error instanceof RangeError && /store_size/.test(error.message)
        ? settings.origins.store_size
        : (settings.origins[driver.name as 'lmdb' | 'redis'] ?? settings.origins.store);
    throw settingError(error, origin ?? pipeline);
  }
}
