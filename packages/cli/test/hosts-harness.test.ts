/**
 * The hosts harness (`@improv/cli/testing/hosts`) itself: hosts reach the root and each other over TCP, a pulled
 * cable cuts a host off and plugging it back restores it, dispose() leaves nothing behind (no
 * namespace, link, address or process), and concurrent harnesses get different subnets.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { type AddressInfo, connect, createServer } from 'node:net';
import process from 'node:process';
import { canMakeHosts, type Host, type Hosts, makeHosts } from '@improv/cli/testing/hosts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const port = 7411;

/** A TCP server that answers every connection with `hello from <name>` and prints `ready`. */
function serverScript(name: string): string {
  return `
    const net = require('node:net');
    net.createServer((socket) => socket.end('hello from ${name}'))
      .listen(${port}, '0.0.0.0', () => console.log('ready'));
  `;
}

/** Starts `serverScript` in `host` and waits until it listens. */
async function startServer(host: Host, name: string) {
  const child = host.spawn(process.execPath, ['-e', serverScript(name)], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      output += chunk;
      if (output.includes('ready')) resolve();
    });
    child.once('exit', (code, signal) => reject(new Error(`server in ${host.name} exited (${code ?? signal})`)));
  });
  return child;
}

/** Connects from the root namespace and returns what the server sent; rejects after `ms`. */
function fetchFromRoot(address: string, ms = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port });
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from ${address}:${port} within ${ms} ms`));
    }, ms);
    socket.on('data', (chunk: Buffer) => {
      text += chunk;
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Connects from inside `host` to `address:targetPort` and returns what it received. */
function fetchFromHost(host: Host, address: string, targetPort = port): Promise<string> {
  const script = `
    const socket = require('node:net').connect(${targetPort}, '${address}');
    socket.setTimeout(3000, () => process.exit(2));
    socket.pipe(process.stdout);
    socket.on('error', (error) => { console.error(error.message); process.exit(1); });
  `;
  const child = host.spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let text = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      text += chunk;
    });
    child.once('exit', (code) =>
      code === 0 ? resolve(text) : reject(new Error(`client in ${host.name} exited with ${code}`)),
    );
  });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const ip = (...args: string[]) => execFileSync('ip', args, { encoding: 'utf8' });

describe.skipIf(!canMakeHosts())('hosts harness', () => {
  let lab: Hosts;
  beforeAll(async () => {
    lab = await makeHosts(2);
    await startServer(lab.hosts[0]!, 'host 1');
  });
  afterAll(() => lab?.dispose());

  it('puts a server in host 1 within reach of the root and of host 2, and the root within reach of hosts', async () => {
    const [host1, host2] = lab.hosts as [Host, Host];
    expect(host1.address).not.toBe(host2.address);
    expect(await fetchFromRoot(host1.address)).toBe('hello from host 1');
    expect(await fetchFromHost(host2, host1.address)).toBe('hello from host 1');

    const root = createServer((socket) => socket.end('hello from nexus'));
    await new Promise<void>((resolve) => root.listen(0, lab.nexusAddress, resolve));
    try {
      const rootPort = (root.address() as AddressInfo).port;
      expect(await fetchFromHost(host2, lab.nexusAddress, rootPort)).toBe('hello from nexus');
    } finally {
      root.close();
    }
  });

  it('cuts host 1 off while its link is down and restores it when the link is up', async () => {
    const host1 = lab.hosts[0]!;
    host1.linkDown();
    try {
      await expect(fetchFromRoot(host1.address, 3_000)).rejects.toThrow();
    } finally {
      host1.linkUp();
    }
    // The root's neighbour entry for host 1 may still be failing for a moment after the link is up.
    let answer: string | undefined;
    for (let attempt = 0; attempt < 5 && answer === undefined; attempt++) {
      answer = await fetchFromRoot(host1.address).catch(() => sleep(200).then(() => undefined));
    }
    expect(answer).toBe('hello from host 1');
  });

  it('leaves no namespace, link, address or process behind after dispose()', async () => {
    const other = await makeHosts(2);
    const names = [other.bridge, ...other.hosts.flatMap((host) => [host.name, host.interface])];
    expect(ip('netns', 'list')).toContain(other.hosts[1]!.name);
    // A server with a child of its own: dispose() must kill the whole process group.
    const server = other.hosts[1]!.spawn(
      process.execPath,
      ['-e', `console.log(require('node:child_process').spawn('sleep', ['600']).pid)`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const grandchild = await new Promise<number>((resolve) => server.stdout?.once('data', (line) => resolve(+line)));
    expect(isAlive(grandchild)).toBe(true);

    await other.dispose();

    expect(server.exitCode !== null || server.signalCode !== null).toBe(true);
    const netns = ip('netns', 'list');
    const links = ip('-o', 'link');
    for (const name of names) {
      expect(netns).not.toMatch(new RegExp(`^${name}\\b`, 'm'));
      expect(links).not.toContain(name);
    }
    expect(ip('-o', '-4', 'addr')).not.toContain(`${other.nexusAddress}/`);
    // The grandchild was SIGKILLed with its group; the kill is asynchronous.
    for (let attempt = 0; attempt < 50 && isAlive(grandchild); attempt++) await sleep(20);
    expect(isAlive(grandchild)).toBe(false);
  });

  it('gives two harnesses made at once different subnets, both working', async () => {
    const results = await Promise.allSettled([makeHosts(1), makeHosts(1)]);
    const labs = results.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
    try {
      expect(labs).toHaveLength(2);
      const [a, b] = labs as [Hosts, Hosts];
      expect(a.nexusAddress).not.toBe(b.nexusAddress);
      expect(a.nexusAddress).not.toBe(lab.nexusAddress);
      expect(b.nexusAddress).not.toBe(lab.nexusAddress);
      expect(a.bridge).not.toBe(b.bridge);
      await Promise.all([startServer(a.hosts[0]!, 'a'), startServer(b.hosts[0]!, 'b')]);
      expect(await fetchFromRoot(a.hosts[0]!.address)).toBe('hello from a');
      expect(await fetchFromRoot(b.hosts[0]!.address)).toBe('hello from b');
    } finally {
      await Promise.all(labs.map((each) => each.dispose()));
    }
  });
});

/** Whether `pid` runs; a zombie (killed, not yet reaped by whoever adopted it) counts as dead. */
function isAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
