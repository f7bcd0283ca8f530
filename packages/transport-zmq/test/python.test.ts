/**
 * The wire format against libzmq itself: a Python process with nothing but pyzmq and msgpack
 * (`python/improv_zmq_peer.py`) plays one actor of a planned graph — the sink of one connection and
 * the source of another — between two links this package opens. Credit is small, so the Python
 * source must wait for acknowledgements and the TypeScript source for the Python sink's. Then CURVE:
 * the right key pair passes, a peer with the wrong server key is refused and the sink's log says so.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { InputLink, LinkDescriptor, LinkGraph, OutputLink, Transport } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createZmqTransport, openLink, peerEndpoint } from '../src/index.ts';
import { generateKeyPair } from '../src/keys.ts';

const python = '/usr/bin/python3';
const peerScript = fileURLToPath(new URL('../python/improv_zmq_peer.py', import.meta.url));
const hasPyzmq = spawnSync(python, ['-c', 'import zmq, msgpack'], { encoding: 'utf8' }).status === 0;
// zeromq.js in the test runner's runtime (the Python side is libzmq whatever the runtime).
const suite = hasPyzmq ? describe : describe.skip;
// zeromq.js is used on Node only (it aborts Bun and fails in Deno): elsewhere only the TypeScript ZMTP is tried.
const socketChoices = 'Bun' in globalThis || 'Deno' in globalThis ? (['zmtp'] as const) : (['zeromq', 'zmtp'] as const);

/** Node.q_out → Python.q_in, Python.q_out → Node.q_in, with little credit. */
const graph = (capacity: number): LinkGraph => ({
  edges: [
    {
      connection: 'to-python',
      from: { actor: 'Node', link: 'q_out' },
      to: { actor: 'Python', link: 'q_in' },
      capacity,
      policy: 'block',
    },
    {
      connection: 'from-python',
      from: { actor: 'Python', link: 'q_out' },
      to: { actor: 'Node', link: 'q_in' },
      capacity,
      policy: 'block',
    },
  ],
});

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

interface Relay {
  lines: string[];
  exited: Promise<number | null>;
  /** What it printed so far. */
  output(): string;
}

/**
 * The next message on `input`, failing with what the Python relay printed when it ends with an error
 * first (it could not bind, say) or when no message comes in time: never a bare timeout.
 */
async function next<T>(input: InputLink<T>, relay: Relay): Promise<T> {
  const failed = relay.exited.then((code) =>
    code === 0
      ? new Promise<never>(() => {})
      : Promise.reject(new Error(`the Python relay ended with code ${code}:\n${relay.output()}`)),
  );
  try {
    return await Promise.race([input.get({ timeoutMs: 20_000 }), failed]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\nthe Python relay printed:\n${relay.output()}`, { cause: error });
  }
}

function startRelay(spec: unknown): Relay {
  const child = spawn(python, [peerScript, 'relay', JSON.stringify(spec)], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Whole lines once the process has ended (a line may come in several chunks).
  const lines: string[] = [];
  let output = '';
  child.stdout.on('data', (chunk) => {
    output += String(chunk);
  });
  child.stderr.on('data', (chunk) => {
    output += String(chunk);
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('close', (code) => {
      lines.push(...output.split('\n').filter((line) => line !== ''));
      resolve(code);
    }),
  );
  cleanup.push(async () => {
    child.kill();
    await exited;
  });
  return { lines, exited, output: () => output };
}

async function plan(transport: Transport, capacity: number) {
  cleanup.push(() => transport.close());
  const { endpoints } = await transport.plan(graph(capacity));
  const node = endpoints.get('Node')!;
  const py = endpoints.get('Python')!;
  return {
    nodeOut: node.get('q_out') as LinkDescriptor,
    nodeIn: node.get('q_in') as LinkDescriptor,
    pythonIn: peerEndpoint(py.get('q_in')!),
    pythonOut: peerEndpoint(py.get('q_out')!),
  };
}

async function open<T extends InputLink | OutputLink>(descriptor: LinkDescriptor, warnings: string[] = []): Promise<T> {
  const link = (await openLink(descriptor, { warn: (message) => warnings.push(message) })) as T;
  cleanup.push(async () => {
    await link.close();
  });
  return link;
}

suite('a Python peer (pyzmq + msgpack, libzmq)', () => {
  it('says what is wrong with its argument and how to fix it, never with a traceback', () => {
    const cases: [string[], RegExp][] = [
      [['send', '{not json'], /send: the argument is not JSON .*usage:/],
      [
        ['relay', '{"count": 1}'],
        /relay: the JSON argument lacks in, out; give the endpoint descriptors of peerEndpoint/,
      ],
      [['send', '{"out": {"edges": []}, "count": "3"}'], /count must be a whole number/],
      [
        ['send', '{"out": {"edges": [{"address": "tcp://127.0.0.1:1"}]}, "count": 1}'],
        /lacks the field 'id'; pass peerEndpoint/,
      ],
    ];
    for (const [args, said] of cases) {
      const result = spawnSync(python, [peerScript, ...args], { encoding: 'utf8' });
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(said);
      expect(result.stderr).not.toContain('Traceback');
    }
  });

  // Each socket implementation of this package against libzmq: zeromq.js (itself libzmq) and the
  // TypeScript ZMTP (the one Bun and Deno workers use).
  for (const sockets of socketChoices) {
    describe(`sockets: ${sockets}`, () => {
      for (const protocol of ['ipc', 'tcp'] as const) {
        it(`relays 5,000 messages through Python in order, each way under credit of 4 (${protocol})`, {
          timeout: 60_000,
        }, async () => {
          const count = 5000;
          const ends = await plan(createZmqTransport({ protocol, sockets }), 4);
          expect(ends.pythonIn.address).toMatch(protocol === 'ipc' ? /^ipc:\/\// : /^tcp:\/\/127\.0\.0\.1:\d+$/);
          expect(ends.pythonOut.edges[0]).toMatchObject({ capacity: 4, policy: 'block', peer: 'Node.q_in' });
          const input = await open<InputLink<{ value: number; via?: string }>>(ends.nodeIn);
          const relay = startRelay({ in: ends.pythonIn, out: ends.pythonOut, count });
          const output = await open<OutputLink>(ends.nodeOut);
          const sending = (async () => {
            for (let value = 0; value < count; value++) await output.put({ value, text: `frame ${value}` });
          })();
          for (let value = 0; value < count; value++) {
            const message = await next(input, relay);
            expect(message).toEqual({ value: value * 2, text: `frame ${value}`, via: 'python' });
          }
          await sending;
          expect(await relay.exited, relay.lines.join('\n')).toBe(0);
          expect(relay.lines).toContain(`relayed ${count}`);
        });
      }

      it('holds the producer back end to end: a Python sink that never acknowledges receives exactly the credit', {
        timeout: 30_000,
      }, async () => {
        const ends = await plan(createZmqTransport({ sockets }), 3);
        const sink = spawn(
          python,
          [
            '-c',
            `import sys, zmq
ctx = zmq.Context(); s = ctx.socket(zmq.ROUTER); s.bind(sys.argv[1]); print('ready', flush=True)
n = 0
while s.poll(2000):
    s.recv_multipart(); n += 1
print('received', n, flush=True); s.close(0); ctx.term()`,
            ends.pythonIn.address!,
          ],
          { stdio: ['ignore', 'pipe', 'inherit'] },
        );
        let said = '';
        sink.stdout.on('data', (chunk) => {
          said += chunk;
        });
        const exited = new Promise((resolve) => sink.on('exit', resolve));
        cleanup.push(async () => {
          sink.kill();
          await exited;
        });
        const output = await open<OutputLink>(ends.nodeOut);
        for (let value = 0; value < 3; value++) await output.put({ value });
        let fourth = false;
        void output.put({ value: 3 }).then(() => {
          fourth = true;
        });
        await exited;
        expect(said).toContain('received 3\n');
        expect(fourth).toBe(false);
      });

      it('CURVE: the right key pair relays; a peer with the wrong server key is refused and the log says so', {
        timeout: 60_000,
      }, async () => {
        const curve = generateKeyPair();
        const ends = await plan(createZmqTransport({ protocol: 'tcp', curve, sockets }), 8);
        expect(ends.pythonIn.curve).toEqual({ ...curve, serverKey: curve.publicKey });
        const warnings: string[] = [];
        const input = await open<InputLink<{ value: number }>>(ends.nodeIn, warnings);
        const relay = startRelay({ in: ends.pythonIn, out: ends.pythonOut, count: 100, curve: ends.pythonIn.curve });
        const output = await open<OutputLink>(ends.nodeOut);
        const sending = (async () => {
          for (let value = 0; value < 100; value++) await output.put({ value });
        })();
        for (let value = 0; value < 100; value++) expect((await next(input, relay)).value).toBe(value * 2);
        await sending;
        expect(await relay.exited, relay.lines.join('\n')).toBe(0);

        // An intruder who does not have the pipeline's public key as its server key.
        const wrong = generateKeyPair();
        const sneak = spawn(
          python,
          [
            '-c',
            `import sys, zmq, msgpack, time
ctx = zmq.Context(); s = ctx.socket(zmq.DEALER)
s.routing_id = sys.argv[1].encode(); s.curve_secretkey = sys.argv[2].encode(); s.curve_publickey = sys.argv[3].encode()
s.curve_serverkey = sys.argv[3].encode(); s.connect(sys.argv[4])
s.send_multipart([b'\\x01', msgpack.packb({'value': -1})]); time.sleep(1.5); s.close(0); ctx.term()`,
            ends.pythonOut.edges[0]!.id,
            wrong.secretKey,
            wrong.publicKey,
            ends.pythonOut.edges[0]!.address!,
          ],
          { stdio: 'inherit' },
        );
        expect(await new Promise((resolve) => sneak.on('exit', resolve))).toBe(0);
        expect(input.tryGet()).toBeUndefined();
        const deadline = Date.now() + 10_000;
        while (!/refused a peer/.test(warnings.join('\n')) && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(warnings.join('\n')).toMatch(
          /link "Node\.q_in" \(tcp:\/\/127\.0\.0\.1:\d+\): refused a peer .* it does not have the pipeline's CURVE keys/,
        );
        // A peer that keeps retrying is reported once, not at every attempt.
        expect(warnings.filter((warning) => warning.includes('refused a peer'))).toHaveLength(1);
      });
    });
  }
});
