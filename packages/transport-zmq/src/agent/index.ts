/**
 * Actors on other machines: `improv agent` ({@link serveAgent}) runs on each host and starts actor
 * processes there for a Nexus that has its token; {@link connectAgent} is the Nexus's side, passed
 * to `createNexus({ agents: connectAgent })` (the CLI does). The connection is ZeroMQ over TCP with
 * CURVE, its keys derived from the agent's token; each actor's control channel travels inside it.
 *
 * @example
 * ```ts
 * import { serveAgent } from '@improv/transport-zmq/agent';
 * const agent = await serveAgent({ listen: '10.0.0.2:7310', tokenFile: '~/.improv/agent.token' });
 * ```
 * @module
 */
export { connectAgent, readHostToken } from './client.ts';
export { type AgentOptions, parseListen, type RunningAgent, serveAgent } from './server.ts';
