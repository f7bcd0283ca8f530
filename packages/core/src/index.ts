/**
 * @improv/core — the actor contract, signals, config, Nexus, runtime adapters and the contracts
 * every store and transport implements.
 *
 * @example
 * ```ts
 * import { Actor } from '@improv/core';
 *
 * export class Generator extends Actor<{ rate?: number }> {
 *   async runStep() {
 *     const key = await this.store.put(Float64Array.from({ length: 5 }, Math.random));
 *     await this.q_out.put({ key });
 *   }
 * }
 * ```
 * @module
 */
export {
  Actor,
  type ActorClass,
  type ActorContext,
  isActorClass,
  type OptionType,
  type OptionTypes,
  type PublishChannel,
} from './actor.ts';
export * from './codec.ts';
export { closest, didYouMean } from './config/_suggest.ts';
export { isLoopbackAddress } from './config/_transport-settings.ts';
export * from './config/load.ts';
export * from './config/types.ts';
export * from './errors.ts';
export { formatBytes, formatUptime } from './format.ts';
export { combineTransports, openPipelineTransport, type TransportChoice } from './link/combine.ts';
export {
  checkLinkGraph,
  closedLinkError,
  copyEdge,
  copyEndpoint,
  endpointLabel,
  getTimeoutError,
  MAX_GET_TIMEOUT_MS,
} from './link/edges.ts';
export { HOST_ACTOR, type HostEndpoint, type HostLinkOptions } from './link/host.ts';
export type { LinkStatus } from './link/monitor.ts';
export type * from './link/transport.ts';
export * from './log.ts';
export {
  type ActorStatus,
  createNexus,
  type Nexus,
  type NexusEvent,
  type NexusOptions,
  type PipelineStatus,
} from './nexus.ts';
export type {
  ActorMetrics,
  CommandOptions,
  LinkMetrics,
  Percentiles,
  PipelineMetrics,
  Published,
  PublishedLatest,
  PublishedSeries,
  TapRecord,
} from './nexus-api.ts';
export { PUBLISH_EVERY_MS, PUBLISH_SERIES_LIMIT } from './nexus-api.ts';
export type * from './runtime/adapter.ts';
export { currentRuntimeName, detectRuntime } from './runtime/detect.ts';
export { type DenoPermissionName, missingDenoPermissions, permissionFix } from './runtime/permissions.ts';
export * from './signals.ts';
export type { StoreChoice, StoreContext } from './store/_open.ts';
export type * from './store/driver.ts';
export {
  DEFAULT_STORE_LEASE_MS,
  EVICTION_HIGH_WATER,
  EVICTION_LOW_WATER,
  type MissingReason,
  objectNotFound,
  releaseKeys,
  storeKeysIn,
} from './store/keys.ts';
