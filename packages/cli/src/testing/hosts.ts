/**
 * `@improv/cli/testing/hosts` — "hosts" on this machine for tests and benchmarks of pipelines that span machines: made of Linux network namespaces, so that a test can run
 * processes on separate machines that talk over a real network, and pull a machine's cable.
 *
 * Layout of one `makeHosts(count)`:
 *
 * - a bridge in the ROOT namespace holding `<nexusAddress>`; processes of the test itself (the
 *   "Nexus machine") listen and connect there;
 * - `count` namespaces, each joined to the bridge by a veth pair (`eth0` inside), with `lo` up.
 *   All are on one L2 segment, so hosts reach the root address and each other without routing and
 *   without any sysctl change in the root namespace.
 *
 * Addresses. Everything stays inside 198.18.64.0/24 (a benchmarking range, RFC 2544), split into
 * eight /27 slices: slice `s` is 198.18.64.(32·s)/27, the bridge holds `.32s+1`, host `k` (from 0)
 * holds `.32s+2+k`, so one call makes at most 29 hosts and at most 8 calls can be live on the
 * machine at once. (A /24 per call would leave the allowed range; widening the range is a change to
 * `SLICE_BITS`/`slicePrefix` only.)
 *
 * Choosing a slice when several test processes (or several calls in one process) run at once:
 * a slice is taken by binding the abstract unix socket `\0improv-test-hosts/198.18.64.<base>`.
 * Binding is atomic, fails with EADDRINUSE for everyone else, works the same inside one process,
 * and the kernel drops the socket when its process dies — even by SIGKILL — so there is no stale
 * lock file to clean. Abstract sockets belong to a network namespace, which is right here: the lock
 * guards addresses of the root namespace. A slice is also skipped when any of its addresses is
 * already on an interface in the root namespace (leftovers of a killed run, or another user).
 *
 * Names (namespaces, bridge, veths) are `imh<pid base 36>-<slice>` plus a suffix, at most 13
 * characters: the pid tells which process made them, the slice makes them unique among live users.
 *
 * Cleanup: `dispose()` kills every process group started by `Host.spawn()` and deletes the veths,
 * the bridge and the namespaces. Whatever is still live when the process exits, or gets SIGINT or
 * SIGTERM, is deleted synchronously then. Only SIGKILL of the test process leaves things behind:
 * `ip -br link | grep imh` and `ip netns list | grep imh` show them, `ip link del <name>` and
 * `ip netns del <name>` remove them.
 *
 * Linux, Node and root only: see `canMakeHosts()`.
 *
 * @example
 * ```ts
 * describe.skipIf(!canMakeHosts())('over a network', () => {
 *   it('reaches a host', async () => {
 *     const lab = await makeHosts(2);
 *     try {
 *       const server = lab.hosts[0]!.spawn(process.execPath, ['server.mjs']);
 *       // ... connect to lab.hosts[0]!.address from here, or from lab.hosts[1]!.spawn(...)
 *       lab.hosts[0]!.linkDown(); // the cable is pulled
 *     } finally {
 *       await lab.dispose();
 *     }
 *   });
 * });
 * ```
 */
import { type ChildProcess, execFile, execFileSync, type SpawnOptions, spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import process from 'node:process';
import { promisify } from 'node:util';

/** One machine: a network namespace with one interface, `eth0`, on the bridge. */
export interface Host {
  /** The namespace name, as `ip netns list` shows it and `ip netns exec` takes it. */
  readonly name: string;
  /** The host's IPv4 address (on `eth0`, a /27 shared with the other hosts and the root). */
  readonly address: string;
  /** The root-namespace end of the host's veth pair, a port of the bridge. */
  readonly interface: string;
  /**
   * Runs `command` inside the namespace (`ip netns exec <name> command ...args`), detached, in a
   * process group of its own, which `dispose()` kills. `detached` in `options` is ignored.
   */
  spawn(command: string, args: string[], options?: SpawnOptions): ChildProcess;
  /** Sets both ends of the host's veth down, as if its cable were pulled. */
  linkDown(): void;
  /** Sets both ends of the host's veth up again, as if its cable were plugged back in. */
  linkUp(): void;
}

/** The hosts of one `makeHosts()` call, and the address of the root namespace on their network. */
export interface Hosts {
  /** The address of the root namespace (the test process, "the Nexus machine") on the bridge. */
  readonly nexusAddress: string;
  /** The bridge in the root namespace. */
  readonly bridge: string;
  readonly hosts: Host[];
  /** Kills every process spawned through a host, deletes namespaces, veths and bridge. Idempotent. */
  dispose(): Promise<void>;
}

const SLICE_BITS = 5; // 32 addresses per slice: network, root, 29 hosts, broadcast
const SLICE_SIZE = 1 << SLICE_BITS;
const SLICES = 256 / SLICE_SIZE;
const PREFIX_LENGTH = 32 - SLICE_BITS;
const MAX_HOSTS = SLICE_SIZE - 3;
const slicePrefix = '198.18.64.';

const run = promisify(execFile);

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args);
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`ip ${args.join(' ')}: ${stderr || String(error)}`, { cause: error });
  }
}

function ipSync(...args: string[]): void {
  execFileSync('ip', args, { stdio: 'ignore' });
}

function tryIpSync(...args: string[]): void {
  try {
    ipSync(...args);
  } catch {
    // already gone
  }
}

let probed: boolean | undefined;

/**
 * True when `makeHosts()` can work here: Node (not Bun or Deno, whose child processes and signal
 * handling this helper does not cover), as root, with `ip netns` able to add and delete a namespace.
 * The probe runs once per process.
 */
export function canMakeHosts(): boolean {
  if ('Bun' in globalThis || 'Deno' in globalThis) return false;
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  if (probed === undefined) {
    const name = `imh${process.pid.toString(36)}-probe`;
    try {
      ipSync('netns', 'add', name);
      ipSync('-n', name, 'link', 'set', 'lo', 'up');
      probed = true;
    } catch {
      probed = false;
    } finally {
      tryIpSync('netns', 'del', name);
    }
  }
  return probed;
}

/** The IPv4 addresses on interfaces of the root namespace. */
async function rootAddresses(): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', '-4', 'addr', 'show']);
  return [...stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\//g)].map((match) => match[1]!);
}

function listen(server: Server, path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException) => {
      if (error.code === 'EADDRINUSE') resolve(false);
      else reject(error);
    };
    server.once('error', onError);
    server.listen({ path }, () => {
      server.off('error', onError);
      resolve(true);
    });
  });
}

/** Takes a free slice: its base (last octet of the network address) and the lock that holds it. */
async function takeSlice(): Promise<{ base: number; lock: Server }> {
  for (let slice = 0; slice < SLICES; slice++) {
    const base = slice * SLICE_SIZE;
    const lock = createServer();
    if (!(await listen(lock, `\0improv-test-hosts/${slicePrefix}${base}`))) continue;
    lock.unref();
    const used = (await rootAddresses()).some((address) => {
      if (!address.startsWith(slicePrefix)) return false;
      const last = Number(address.slice(slicePrefix.length));
      return last >= base && last < base + SLICE_SIZE;
    });
    if (!used) return { base, lock };
    lock.close();
  }
  throw new Error(
    `makeHosts: no free /${PREFIX_LENGTH} in ${slicePrefix}0/24 (all ${SLICES} are locked by live tests or have ` +
      `addresses in the root namespace); dispose() unused hosts, or delete leftovers shown by ` +
      `'ip -br addr | grep ${slicePrefix}' with 'ip link del <name>'`,
  );
}

interface Live {
  children: Set<ChildProcess>;
  veths: string[];
  namespaces: string[];
  bridge: string;
}

/** Everything not yet disposed in this process, for the exit and signal handlers. */
const live = new Set<Live>();

function killChildren(state: Live): void {
  for (const child of state.children) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // the group is gone already
    }
  }
}

function removeSync(state: Live): void {
  killChildren(state);
  for (const veth of state.veths) tryIpSync('link', 'del', veth);
  tryIpSync('link', 'del', state.bridge);
  for (const namespace of state.namespaces) tryIpSync('netns', 'del', namespace);
}

function onExit(): void {
  for (const state of live) removeSync(state);
  live.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  onExit();
  // Our listener replaced the default action (exit); when nobody else handles the signal, restore
  // the default and raise it again so the process still ends the way it would have.
  if (process.listenerCount(signal) === 1) {
    unwatch();
    process.kill(process.pid, signal);
  }
}

function watch(): void {
  if (process.listeners('exit').includes(onExit)) return;
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

function unwatch(): void {
  process.off('exit', onExit);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
}

async function exited(child: ChildProcess, ms: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Makes `count` hosts (1 to 29) on a bridge with the root namespace. Rejects, having removed what
 * it made, when a step fails or no address slice is free.
 */
export async function makeHosts(count: number): Promise<Hosts> {
  if (!Number.isInteger(count) || count < 1 || count > MAX_HOSTS) {
    throw new RangeError(`makeHosts: count must be an integer from 1 to ${MAX_HOSTS}, got ${count}`);
  }
  if (!canMakeHosts()) {
    throw new Error('makeHosts: needs Node as root on Linux with a working `ip netns`; guard with canMakeHosts()');
  }
  const { base, lock } = await takeSlice();
  const name = `imh${process.pid.toString(36)}-${base / SLICE_SIZE}`;
  const nexusAddress = `${slicePrefix}${base + 1}`;
  const state: Live = { children: new Set(), veths: [], namespaces: [], bridge: `${name}br` };
  live.add(state);
  watch();

  let disposing: Promise<void> | undefined;
  const dispose = (): Promise<void> => {
    disposing ??= (async () => {
      const children = [...state.children];
      killChildren(state);
      await Promise.all(children.map((child) => exited(child, 5_000)));
      // Deleting one end of a veth pair deletes both.
      await Promise.allSettled(state.veths.map((veth) => ip('link', 'del', veth)));
      await ip('link', 'del', state.bridge).catch(() => {});
      await Promise.allSettled(state.namespaces.map((namespace) => ip('netns', 'del', namespace)));
      live.delete(state);
      if (live.size === 0) unwatch();
      lock.close();
    })();
    return disposing;
  };

  try {
    await ip('link', 'add', state.bridge, 'type', 'bridge');
    await ip('addr', 'add', `${nexusAddress}/${PREFIX_LENGTH}`, 'dev', state.bridge);
    await ip('link', 'set', state.bridge, 'up');
    const hosts: Host[] = [];
    for (let k = 0; k < count; k++) {
      const namespace = `${name}n${k}`;
      const veth = `${name}v${k}`;
      const address = `${slicePrefix}${base + 2 + k}`;
      await ip('netns', 'add', namespace);
      state.namespaces.push(namespace);
      await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', namespace);
      state.veths.push(veth);
      await ip('-n', namespace, 'addr', 'add', `${address}/${PREFIX_LENGTH}`, 'dev', 'eth0');
      await ip('-n', namespace, 'link', 'set', 'lo', 'up');
      await ip('-n', namespace, 'link', 'set', 'eth0', 'up');
      await ip('link', 'set', veth, 'master', state.bridge, 'up');
      hosts.push({
        name: namespace,
        address,
        interface: veth,
        spawn(command, args, options = {}) {
          if (disposing) throw new Error(`host ${namespace}: spawn after dispose()`);
          const child = spawn('ip', ['netns', 'exec', namespace, command, ...args], { ...options, detached: true });
          state.children.add(child);
          child.once('exit', () => state.children.delete(child));
          return child;
        },
        linkDown() {
          ipSync('link', 'set', veth, 'down');
          ipSync('-n', namespace, 'link', 'set', 'eth0', 'down');
        },
        linkUp() {
          ipSync('-n', namespace, 'link', 'set', 'eth0', 'up');
          ipSync('link', 'set', veth, 'up');
        },
      });
    }
    return { nexusAddress, bridge: state.bridge, hosts, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}
