/**
 * The two hosts of `--placement hosts`: Linux network namespaces made with `makeHosts(2)` of
 * `@improv/cli/testing/hosts`, on one bridge with this process (the Nexus machine, in the root
 * namespace), an `improv agent` in each — started and stopped here. Each agent makes its token file;
 * the Nexus side reads a copy of it (`token_file`), as on real machines. Everything goes at
 * {@link BenchHosts.close}, and on Ctrl-C or SIGTERM too (then the process exits).
 *
 * Node, Linux and root only: {@link hostsUnavailable} says why not, before anything is made.
 * @module
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { canMakeHosts, type Host, makeHosts } from '@improv/cli/testing/hosts';

/** The `improv` command the agents run (the workspace's CLI, TypeScript through tsx). */
const improvBin = fileURLToPath(new URL('../../packages/cli/bin/improv.mjs', import.meta.url));
/** The agents' port (improv's default). */
const AGENT_PORT = 7310;
/** Longest an agent may take to listen. */
const AGENT_START_MS = 30_000;

/** One host: its name in the pipeline's `hosts:`, its namespace and agent. */
export interface BenchHost {
  /** The key under `hosts:` and in actors' `host:`. */
  readonly key: string;
  /** The network namespace (`ip netns list`). */
  readonly namespace: string;
  readonly address: string;
  readonly port: number;
  /** The Nexus side's copy of the agent's token file. */
  readonly tokenFile: string;
  /** Runs a command in the host's namespace (killed at close). */
  spawn: Host['spawn'];
}

/** The hosts of one bench run. */
export interface BenchHosts {
  /** The address of this process (the root namespace) on the hosts' network. */
  readonly nexusAddress: string;
  /** Where the source actors run (host a). */
  readonly source: BenchHost;
  /** Where the sink (and every other) actor runs (host b); the raw baselines' peer runs here too. */
  readonly sink: BenchHost;
  /** Stops the agents, deletes the namespaces and the token files. Safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Why `--placement hosts` cannot run in this process, or undefined when it can: it needs Node as root
 * on Linux, with `ip netns` able to make a namespace (`canMakeHosts()` tries once).
 */
export function hostsUnavailable(): string | undefined {
  if ('Bun' in globalThis || 'Deno' in globalThis) return 'this is not Node';
  if (process.platform !== 'linux') return `this is ${process.platform}, not Linux`;
  if (process.getuid?.() !== 0) return `this process runs as uid ${process.getuid?.()}, not root`;
  if (!canMakeHosts()) {
    return '`ip netns add` failed (is iproute2 installed? in a container, root needs CAP_SYS_ADMIN)';
  }
  return undefined;
}

/** Makes the two hosts and starts an agent in each; rejects (having removed what it made) when a step fails. */
export async function openBenchHosts(log: (line: string) => void): Promise<BenchHosts> {
  const folder = await mkdtemp(path.join(tmpdir(), 'improv-bench-hosts-'));
  // Ctrl-C ends the run: the token files go here, the namespaces and the agents in the harness's
  // own exit handler (process.exit runs it), the Redis server with its watchdog.
  const removeFolder = () => rmSync(folder, { recursive: true, force: true });
  const interrupted = (signal: NodeJS.Signals) => {
    process.stderr.write(`improv-bench: ${signal}: removing the hosts (namespaces, agents) and stopping\n`);
    removeFolder();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.on('exit', removeFolder);
  process.on('SIGINT', interrupted);
  process.on('SIGTERM', interrupted);
  const unwatch = () => {
    process.off('exit', removeFolder);
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
  };
  let lab: Awaited<ReturnType<typeof makeHosts>> | undefined;
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      await lab?.dispose();
      await rm(folder, { recursive: true, force: true });
      unwatch();
    })();
    return closing;
  };
  try {
    lab = await makeHosts(2);
    const [a, b] = lab.hosts as [Host, Host];
    const [source, sink] = await Promise.all([startHost('a', a, folder), startHost('b', b, folder)]);
    log(
      `hosts: a = ${a.name} (${a.address}), b = ${b.name} (${b.address}), an agent on :${AGENT_PORT} in each; the Nexus at ${lab.nexusAddress} (root namespace)`,
    );
    return { nexusAddress: lab.nexusAddress, source, sink, close };
  } catch (error) {
    await close();
    throw error;
  }
}

/** Starts `improv agent` in `host`, waits until it listens, and copies its token for the Nexus side. */
async function startHost(key: string, host: Host, folder: string): Promise<BenchHost> {
  const agentToken = path.join(folder, `agent-${key}.token`);
  const child = host.spawn(
    process.execPath,
    [improvBin, 'agent', '--listen', `${host.address}:${AGENT_PORT}`, '--token-file', agentToken],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await listening(child, `the agent of host ${key} (${host.name})`);
  const tokenFile = path.join(folder, `${key}.token`);
  await copyFile(agentToken, tokenFile);
  return {
    key,
    namespace: host.name,
    address: host.address,
    port: AGENT_PORT,
    tokenFile,
    spawn: (command, args, options) => host.spawn(command, args, options),
  };
}

/** Resolves once the agent says it listens; rejects with what it printed when it exits or takes too long. */
function listening(child: ChildProcess, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => fail(`did not listen within ${AGENT_START_MS / 1000} s`), AGENT_START_MS);
    const fail = (why: string) => {
      clearTimeout(timer);
      reject(
        new Error(`bench: ${what} ${why}${text.trim() ? `:\n${text.trim().split('\n').slice(-10).join('\n')}` : ''}`),
      );
    };
    // Read on after that (a full pipe would stall the agent), keeping only the end.
    const take = (chunk: Buffer) => {
      text = (text + String(chunk)).slice(-8192);
      if (text.includes('listening on')) {
        clearTimeout(timer);
        child.off('exit', exited);
        resolve();
      }
    };
    const exited = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited (${signal ?? `code ${code}`}) before it listened`);
    child.stdout?.on('data', take);
    child.stderr?.on('data', take);
    child.once('exit', exited);
    child.once('error', (error) => fail(`could not start: ${error.message}`));
  });
}
