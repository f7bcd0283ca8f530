/**
 * The contract between Nexus and the agents of other hosts (`hosts:` in the YAML, `host:` on an
 * actor). An {@link AgentConnector} reaches the `improv agent` of one host and returns a
 * {@link HostAgent}: it starts actor processes there (the same actor host, the same control messages
 * as a process on this machine), finds free ports there for the links whose sinks run there, and
 * says when the host is lost. `@improv/transport-zmq/agent` implements it over ZeroMQ with CURVE;
 * the CLI passes it to `createNexus({ agents })`.
 *
 * @example
 * ```ts
 * import { createNexus } from '@improv/core';
 * import { connectAgent } from '@improv/transport-zmq/agent';
 * const nexus = await createNexus({ config: 'pipeline.yaml', store, transport, agents: connectAgent });
 * ```
 * @module
 */
import { siblingModule } from './_module-url.ts';
import { ConfigError, type HostConfig } from './config/types.ts';
import type { LogLevel } from './log.ts';
import type { ProcessHandle, SpawnProcessOptions } from './runtime/adapter.ts';

/** The module every actor worker and process runs (`runWorker(endpoint)`): what an agent starts, and nothing else. */
export const actorHostEntry: string = siblingModule(import.meta.url, './worker/host');

/** A live connection to the agent of one host. */
export interface HostAgent {
  /** The host's name (its key under `hosts:`). */
  readonly host: string;
  /** The address of the host that links to actors there use (the agent's own). */
  readonly address: string;
  /** An address of this machine that the host reaches (what a link or store here must listen on for it). */
  readonly localAddress: string;
  /**
   * Starts an actor process on the host. `options.entry` is ignored: the agent runs its own actor
   * host, nothing else. The handle ends (exit code 1, with an error) when the host is lost.
   */
  spawnProcess(options: SpawnProcessOptions): Promise<ProcessHandle>;
  /** A TCP port nobody listens on at the host's address now (a link's sink there binds it moments later). */
  freePort(): Promise<number>;
  /** Called once when the host is lost (its agent stopped answering, or went away), with why. */
  onLost(listener: (reason: string) => void): void;
  /**
   * How long nothing has come from the host, in ms (its agent pings every second, so more than that
   * means the host does not answer now). What its actors' control channels carry comes in order with
   * the pings: an actor's heartbeat that stood still only while its host said nothing is the host's
   * silence, which ends in `onLost` if it lasts, not the actor stuck.
   */
  silentForMs(): number;
  /** Ends every process started on the host and closes the connection. */
  close(): Promise<void>;
}

/** Reaches the agent of `host`; rejects with a clear error (no agent there, wrong token). */
export type AgentConnector = (host: HostConfig, log: (level: LogLevel, message: string) => void) => Promise<HostAgent>;

/**
 * A problem with `host`'s token file — it cannot be read, is not an agent token file, or the agent
 * refused the token — as a config error at the host's `token_file` (nothing was started; the CLI
 * shows it as it shows any config error). `message` says what to do.
 */
export function tokenFileError(host: HostConfig, message: string): ConfigError {
  const origin = host.tokenFileOrigin ?? { path: ['hosts', host.name, 'token_file'] };
  const where =
    origin.file === undefined
      ? ''
      : `${origin.file}${origin.line === undefined ? '' : `:${origin.line}:${origin.column}`}: `;
  return new ConfigError(`${where}${message}`, [{ severity: 'error', message, ...origin, path: origin.path }]);
}
