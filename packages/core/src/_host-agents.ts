/**
 * The agents of the hosts a pipeline places actors on (package-private, beside Nexus): reached
 * before anything opens (the store and the links must know where the hosts are), used to start
 * the actors there, and closed last. A host that is lost is logged with why; its actors' processes
 * end with it, and Nexus reports them as it reports any process that died.
 * @module
 */
import type { HostConfig, PipelineConfig } from './config/types.ts';
import type { AgentConnector, HostAgent } from './hosts.ts';
import type { LinkPlacement } from './link/transport.ts';
import type { LogLevel } from './log.ts';

/** Every actor's `host:` mapped to a connected agent. */
export class HostAgents {
  readonly #agents = new Map<string, HostAgent>();
  readonly #hostOf = new Map<string, string>();

  /** Reaches the agent of every host an actor names, all at once; rejects with every host that failed. */
  static async connect(
    config: PipelineConfig,
    connector: AgentConnector | undefined,
    log: (level: LogLevel, message: string) => void,
  ): Promise<HostAgents> {
    const agents = new HostAgents();
    const used = new Map<string, HostConfig>();
    for (const actor of config.actors) {
      const name = actor.process?.host;
      if (name === undefined) continue;
      agents.#hostOf.set(actor.name, name);
      const host = config.hosts.find((candidate) => candidate.name === name);
      if (host !== undefined) used.set(name, host);
    }
    if (used.size === 0) return agents;
    if (connector === undefined) {
      throw new Error(
        `${config.source}: actors run on hosts (${[...used.keys()].join(', ')}), which needs a way to reach their agents: pass  agents: connectAgent  (from @improv/transport-zmq/agent) to createNexus, or run the pipeline with improv run (--hosts local puts every host's actors on this machine)`,
      );
    }
    const results = await Promise.allSettled(
      [...used.values()].map(async (host) => {
        const agent = await connector(host, log);
        agents.#agents.set(host.name, agent);
        agent.onLost((reason) => log('error', `host ${host.name} (${host.address}) lost: ${reason}`));
        log(
          'info',
          `host ${host.name}: agent at ${host.address}:${host.port} connected (links to it: ${agent.localAddress} here)`,
        );
      }),
    );
    const failed = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
    if (failed.length > 0) {
      await agents.close();
      throw new Error(failed.map((result) => (result.reason as Error).message ?? String(result.reason)).join('\n'));
    }
    return agents;
  }

  /** Whether any actor runs on another host. */
  get used(): boolean {
    return this.#agents.size > 0;
  }

  /** The agent that starts `actor`, when it runs on another host. */
  agentOf(actor: string): HostAgent | undefined {
    const host = this.#hostOf.get(actor);
    return host === undefined ? undefined : this.#agents.get(host);
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
    await Promise.allSettled([...this.#agents.values()].map((agent) => agent.close()));
    this.#agents.clear();
  }
}
