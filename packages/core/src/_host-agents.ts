/**
 * The agents of the hosts a pipeline places actors on (package-private, beside Nexus): reached
 * before anything opens (the store and the links must know where the hosts are), used to start
 * the actors there, and closed last. A host that is lost is logged with why; its actors' processes
 * end with it, and Nexus reports them as it reports any process that died.
 * @module
 */
import { ConfigError, type HostConfig, type PipelineConfig } from './config/types.ts';
import type { AgentConnector, HostAgent } from './hosts.ts';
import type { LinkPlacement } from './link/transport.ts';
import type { LogLevel } from './log.ts';

/** Every actor's `host:` mapped to a connected agent. */
export class HostAgents {
  readonly #agents = new Map<string, HostAgent>();
  readonly #hostOf = new Map<string, string>();
  readonly #configs = new Map<string, HostConfig>();
  /** Hosts lost since their agent was last reached, and the reconnections under way. */
  readonly #lost = new Set<string>();
  readonly #reconnecting = new Map<string, Promise<HostAgent>>();
  #connector: AgentConnector | undefined;
  #log: (level: LogLevel, message: string) => void = () => {};
  #closed = false;

  /** Reaches the agent of every host an actor names, all at once; rejects with every host that failed. */
  static async connect(
    config: PipelineConfig,
    connector: AgentConnector | undefined,
    log: (level: LogLevel, message: string) => void,
  ): Promise<HostAgents> {
    const agents = new HostAgents();
    agents.#log = log;
    for (const actor of config.actors) {
      const name = actor.process?.host;
      if (name === undefined) continue;
      agents.#hostOf.set(actor.name, name);
      const host = config.hosts.find((candidate) => candidate.name === name);
      if (host !== undefined) agents.#configs.set(name, host);
    }
    if (agents.#configs.size === 0) return agents;
    if (connector === undefined) {
      throw new Error(
        `${config.source}: actors run on hosts (${[...agents.#configs.keys()].join(', ')}), which needs a way to reach their agents: pass  agents: connectAgent  (from @improv/transport-zmq/agent) to createNexus, or run the pipeline with improv run (--hosts local puts every host's actors on this machine)`,
      );
    }
    agents.#connector = connector;
    const results = await Promise.allSettled([...agents.#configs.values()].map((host) => agents.#reach(host)));
    const failed = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed.length > 0) {
      await agents.close();
      const message = failed.map((result) => (result.reason as Error).message ?? String(result.reason)).join('\n');
      // Token files that cannot be read or that an agent refused: config errors, at their token_file.
      if (failed.every((result) => ConfigError.isInstance(result.reason))) {
        throw new ConfigError(
          message,
          failed.flatMap((result) => (result.reason as ConfigError).diagnostics),
        );
      }
      throw new Error(message);
    }
    return agents;
  }

  async #reach(host: HostConfig): Promise<HostAgent> {
    const agent = await this.#connector!(host, this.#log);
    if (this.#closed) {
      await agent.close();
      throw new Error(`host ${host.name}: the pipeline quit meanwhile`);
    }
    const again = this.#lost.delete(host.name);
    this.#agents.set(host.name, agent);
    agent.onLost((reason) => {
      if (this.#agents.get(host.name) !== agent) return;
      this.#lost.add(host.name);
      this.#log('error', `host ${host.name} (${host.address}) lost: ${reason}`);
    });
    this.#log(
      'info',
      `host ${host.name}: agent at ${host.address}:${host.port} ${again ? 'reached again' : 'connected'} (links to it: ${agent.localAddress} here)`,
    );
    return agent;
  }

  /** The agent of `host`, reached again first when the host was lost (one attempt at a time). */
  async #live(host: string): Promise<HostAgent> {
    if (!this.#lost.has(host)) return this.#agent(host);
    let pending = this.#reconnecting.get(host);
    if (pending === undefined) {
      pending = this.#reach(this.#configs.get(host)!).finally(() => this.#reconnecting.delete(host));
      this.#reconnecting.set(host, pending);
    }
    return pending;
  }

  /** The host `actor` runs on, when not this machine. */
  hostOf(actor: string): string | undefined {
    return this.#hostOf.get(actor);
  }

  /** How long nothing has come from the host `actor` runs on, in ms; 0 for an actor of this machine. */
  silentFor(actor: string): number {
    const host = this.#hostOf.get(actor);
    return host === undefined ? 0 : (this.#agents.get(host)?.silentForMs() ?? 0);
  }

  /**
   * What starts `actor` on its host, when it runs on another one. A host that was lost is reached
   * again first, so a restart policy brings the actor back once its host is back.
   */
  launcherOf(actor: string): Pick<HostAgent, 'spawnProcess'> | undefined {
    const host = this.#hostOf.get(actor);
    if (host === undefined) return undefined;
    return { spawnProcess: async (options) => (await this.#live(host)).spawnProcess(options) };
  }

  /** The address of this machine the hosts reach (the first agent's view; one network is the common case). */
  get reachableAt(): string | undefined {
    return this.#agents.values().next().value?.localAddress;
  }

  /** Where actors run, for the transport; `undefined` when every actor is on this machine. */
  placement(): LinkPlacement | undefined {
    const local = this.reachableAt;
    if (local === undefined) return undefined;
    return {
      hostOf: (actor) => this.#hostOf.get(actor),
      addressOf: (host) => (host === undefined ? local : this.#agent(host).address),
      freePort: (host) => this.#agent(host).freePort(),
    };
  }

  #agent(host: string): HostAgent {
    const agent = this.#agents.get(host);
    if (agent === undefined) throw new Error(`no agent for host ${host}`);
    return agent;
  }

  /** Ends what is left on every host and closes the connections. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled([...this.#agents.values()].map((agent) => agent.close()));
    this.#agents.clear();
  }
}
