/**
 * Two hosts, made with network namespaces (root only; skipped elsewhere): a sink in host A binds
 * its address 198.18.0.1 (not loopback: so CURVE keys are required), and a libzmq source in host B
 * (the Python peer) sends to it across a veth pair. With the pipeline's keys every message arrives
 * in order; with another key pair the sink refuses the peer and says so, and nothing arrives.
 * Traffic stays between the two namespaces this test makes, which it deletes afterwards.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '../src/keys.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const sinkScript = fileURLToPath(new URL('./fixtures/netns-sink.ts', import.meta.url));
const peerScript = fileURLToPath(new URL('../python/improv_zmq_peer.py', import.meta.url));
const onNode = !('Bun' in globalThis) && !('Deno' in globalThis);
const canMakeHosts =
  onNode &&
  process.getuid?.() === 0 &&
  spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).status === 0 &&
  spawnSync('/usr/bin/python3', ['-c', 'import zmq, msgpack'], { encoding: 'utf8' }).status === 0;

const tag = process.pid.toString(36);
const hostA = `improv-a-${tag}`;
const hostB = `improv-b-${tag}`;

function ip(...args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr}`);
}

/** Runs `command` in host `ns`; resolves with its stdout lines once it exits. */
function inHost(
  ns: string,
  command: string[],
  onLine?: (line: string) => void,
): { child: ChildProcess; done: Promise<string[]> } {
  const child = spawn('ip', ['netns', 'exec', ns, ...command], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let rest = '';
  child.stdout?.on('data', (chunk) => {
    const parts = (rest + String(chunk)).split('\n');
    rest = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      onLine?.(line);
    }
  });
  const done = new Promise<string[]>((resolve) => child.on('exit', () => resolve(lines)));
  return { child, done };
}

/** A sink in host A and a Python source in host B with `sourceKeys`; the sink's output lines. */
async function send(
  curve: { publicKey: string; secretKey: string },
  sourceKeys: 'same' | 'other',
  count: number,
): Promise<string[]> {
  let started: (endpoint: string) => void = () => {};
  const endpoint = new Promise<string>((resolve) => {
    started = resolve;
  });
  const sink = inHost(
    hostA,
    [process.execPath, '--import', 'tsx', sinkScript, JSON.stringify({ bind: '198.18.0.1', curve, count })],
    (line) => {
      if (line.startsWith('ENDPOINT ')) started(line.slice('ENDPOINT '.length));
    },
  );
  const peer = JSON.parse(await endpoint);
  const other = generateKeyPair();
  const keys = sourceKeys === 'same' ? peer.curve : { ...other, serverKey: other.publicKey };
  const source = inHost(hostB, [
    '/usr/bin/python3',
    peerScript,
    'send',
    JSON.stringify({ out: peer, count, curve: keys }),
  ]);
  const lines = await sink.done;
  source.child.kill();
  await source.done;
  return lines;
}

(canMakeHosts ? describe : describe.skip)('two hosts (network namespaces), tcp with CURVE', () => {
  beforeAll(() => {
    ip('netns', 'add', hostA);
    ip('netns', 'add', hostB);
    ip('link', 'add', `va${tag}`, 'type', 'veth', 'peer', 'name', `vb${tag}`);
    ip('link', 'set', `va${tag}`, 'netns', hostA);
    ip('link', 'set', `vb${tag}`, 'netns', hostB);
    ip('-n', hostA, 'addr', 'add', '198.18.0.1/30', 'dev', `va${tag}`);
    ip('-n', hostB, 'addr', 'add', '198.18.0.2/30', 'dev', `vb${tag}`);
    for (const [ns, device] of [
      [hostA, `va${tag}`],
      [hostB, `vb${tag}`],
    ] as const) {
      ip('-n', ns, 'link', 'set', device, 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
    }
  });

  afterAll(() => {
    spawnSync('ip', ['netns', 'del', hostA]);
    spawnSync('ip', ['netns', 'del', hostB]);
  });

  it('a libzmq source on host B with the pipeline keys delivers 2,000 messages in order to a sink bound on 198.18.0.1', {
    timeout: 60_000,
  }, async () => {
    const lines = await send(generateKeyPair(), 'same', 2000);
    expect(lines.find((line) => line.startsWith('ENDPOINT '))).toMatch(/"address":"tcp:\/\/198\.18\.0\.1:\d+"/);
    expect(lines, lines.join('\n')).toContain('RECEIVED 2000');
  });

  it('a source on host B with another key pair is refused, the sink says so, and nothing arrives', {
    timeout: 60_000,
  }, async () => {
    const lines = await send(generateKeyPair(), 'other', 5);
    expect(lines, lines.join('\n')).toContain('RECEIVED 0');
    expect(lines.join('\n')).toMatch(/WARN link "Local\.q_in" \(tcp:\/\/198\.18\.0\.1:\d+\): refused a peer/);
  });
});
