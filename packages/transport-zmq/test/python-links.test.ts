/**
 * The Python links (`packages/python/improv_ts/links.py`, what a Python actor's `self.q_in` and
 * `self.q_out` are) against this package's links, over a real graph this transport planned.
 *
 * A Python child plays actor `Python`: it gets its endpoints' descriptors exactly as planned (every
 * SharedArrayBuffer sent as base64 and rebuilt into a `bytearray`, as the actor process's control
 * channel delivers it; nothing mirrors them here, so each side sees only its own counters), opens
 * them with `open_link` and the plain `Loop`, and does what the test's mode says: relay, read the
 * fan-in of two TypeScript sources, hold back its reads, or keep putting into a sink that does not read.
 * It prints what it did line by line; the test reads those lines and the messages themselves.
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { InputLink, LinkDescriptor, LinkEdge, LinkGraph, OutputLink, Transport } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createZmqTransport, openLink } from '../src/index.ts';
import { generateKeyPair } from '../src/keys.ts';

const python = '/usr/bin/python3';
const pythonPackage = fileURLToPath(new URL('../../python', import.meta.url));
const hasPython = spawnSync(python, ['-c', 'import zmq, msgpack, numpy'], { encoding: 'utf8' }).status === 0;
const suite = hasPython ? describe : describe.skip;
// zeromq.js is used on Node only (it aborts Bun and fails in Deno): elsewhere only the TypeScript ZMTP is tried.
const socketChoices = 'Bun' in globalThis || 'Deno' in globalThis ? (['zmtp'] as const) : (['zeromq', 'zmtp'] as const);
/** Only for a test that fails: how long to wait for a line before saying what the child printed. */
const PATIENCE_MS = 20_000;

/** The Python side: the modes the tests ask for, over `improv_ts.links`. */
const driver = `
import base64, json, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from improv_ts._loop import Loop, context
from improv_ts.links import open_link

def say(*words):
    print(*words, flush=True)

class Hooks:
    def warn(self, text):
        say("warn", text)
    def dropped(self, message, reason):
        say("dropped", reason, json.dumps(message, default=str))

class TellingLoop(Loop):
    """The plain loop, saying when a link first waits (so the test knows a put is parked)."""
    said = False
    def wait(self, sockets, timeout):
        if not self.said:
            self.said = True
            say("waiting")
        super().wait(sockets, timeout)

def shared(value):
    return bytearray(base64.b64decode(value["__sab"])) if set(value) == {"__sab"} else value

spec = json.loads(sys.stdin.readline(), object_hook=shared)
mode = spec["mode"]
loop = TellingLoop()
hooks = Hooks()
links = []
def link(name):
    opened = open_link(spec[name], loop, hooks)
    links.append(opened)
    return opened

if mode == "relay":
    q_in, q_out = link("in"), link("out")
    say("ready")
    for _ in range(spec["count"]):
        message = q_in.get()
        samples = message["samples"]
        if not (isinstance(samples, np.ndarray) and samples.dtype == np.float64):
            sys.exit(f"samples arrived as {type(samples).__name__}, not a float64 numpy array")
        q_out.put({**message, "value": message["value"] * 2, "samples": samples * 2, "via": "python"})
    say("relayed", spec["count"])
elif mode == "integers":
    q_in, q_out = link("in"), link("out")
    say("ready")
    message = q_in.get()
    say("types", json.dumps({key: [type(value).__name__, str(value)] for key, value in message.items()}))
    q_out.put({"t": int(time.time() * 1000), "a": 2**32 + 1, "neg": -(2**40), "b": 2**53 + 1, "c": 2**63 - 1})
elif mode == "fan-in":
    q_in = link("in")
    say("ready")
    got = {}
    for _ in range(spec["count"]):
        message = q_in.get()
        got.setdefault(message["from"], []).append(message["n"])
    say("result", json.dumps(got))
elif mode == "hold-back":
    q_in = link("in")
    say("ready")
    while q_in.qsize() < spec["queued"]:
        time.sleep(0.002)
    say("queued", q_in.qsize())
    if sys.stdin.readline().strip() != "read":
        sys.exit("expected the word to read")
    say("result", json.dumps([q_in.get()["n"] for _ in range(spec["count"])]))
elif mode == "put":
    q_out = link("out")
    say("ready")
    for n in range(spec["count"]):
        q_out.put({"n": n})
        say("put", n)
elif mode == "refusals":
    q_in = link("in")
    say("ready")
    while True:
        q_in.flush()
        if q_in.qsize():
            say("received", q_in.qsize())
        time.sleep(0.005)

for opened in links:
    opened.close()
# What the sources handed libzmq goes out before the process ends.
context().term()
say("done")
`;

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

interface PythonActor {
  /** Resolves with the first line matching `pattern`; fails with everything printed when the child ends first or never says it. */
  line(pattern: RegExp): Promise<string>;
  /** Everything printed so far. */
  output(): string;
  /** Writes a line to the child's stdin. */
  tell(line: string): void;
  exited: Promise<number | null>;
}

/** A SharedArrayBuffer as base64 in JSON; the driver rebuilds a bytearray of it. */
function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item instanceof SharedArrayBuffer ? { __sab: Buffer.from(item).toString('base64') } : item,
  );
}

function startPython(spec: Record<string, unknown>): PythonActor {
  const child: ChildProcessWithoutNullStreams = spawn(python, ['-c', driver, pythonPackage]);
  let output = '';
  const listeners = new Set<() => void>();
  const heard = (chunk: unknown) => {
    output += String(chunk);
    for (const listener of listeners) listener();
  };
  child.stdout.on('data', heard);
  child.stderr.on('data', heard);
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  let ended = false;
  void exited.then(() => {
    ended = true;
    for (const listener of listeners) listener();
  });
  child.stdin.write(`${toJson(spec)}\n`);
  cleanup.push(async () => {
    child.kill();
    await exited;
  });
  return {
    output: () => output,
    tell: (line) => child.stdin.write(`${line}\n`),
    exited,
    line: (pattern) =>
      new Promise((resolve, reject) => {
        const check = (timedOut = false) => {
          // Whole lines only: a line may come in several chunks.
          const found = output
            .split('\n')
            .slice(0, -1)
            .find((text) => pattern.test(text));
          if (found === undefined && !ended && !timedOut) return;
          listeners.delete(listener);
          clearTimeout(timer);
          if (found !== undefined) resolve(found);
          else reject(new Error(`the Python actor never printed ${pattern}; it printed:\n${output}`));
        };
        const listener = () => check();
        const timer = setTimeout(() => check(true), PATIENCE_MS);
        listeners.add(listener);
        check();
      }),
  };
}

function edge(from: string, to: string, capacity: number): LinkEdge {
  const [fromActor, fromLink] = from.split('.') as [string, string];
  const [toActor, toLink] = to.split('.') as [string, string];
  return {
    connection: `${from}->${to}`,
    from: { actor: fromActor, link: fromLink },
    to: { actor: toActor, link: toLink },
    capacity,
    policy: 'block',
  };
}

async function plan(transport: Transport, graph: LinkGraph) {
  cleanup.push(() => transport.close());
  const { endpoints } = await transport.plan(graph);
  return (label: string): LinkDescriptor => {
    const [actor, link] = label.split('.') as [string, string];
    return endpoints.get(actor)!.get(link)!;
  };
}

async function open<T extends InputLink | OutputLink>(descriptor: LinkDescriptor, warnings: string[] = []): Promise<T> {
  const link = (await openLink(descriptor, { warn: (message) => warnings.push(message) })) as T;
  cleanup.push(async () => {
    await link.close();
  });
  return link;
}

/** The next message on `input`, or a failure that shows what the Python actor printed. */
async function next<T>(input: InputLink<T>, actor: PythonActor, what?: string): Promise<T> {
  try {
    return await input.get({ timeoutMs: PATIENCE_MS });
  } catch (error) {
    const waitingFor = what === undefined ? '' : ` (waiting for ${what})`;
    throw new Error(`${(error as Error).message}${waitingFor}\nthe Python actor printed:\n${actor.output()}`, {
      cause: error,
    });
  }
}

/** `promise`, or a failure that says what did not happen and what the Python actor printed. */
async function within<T>(promise: Promise<T>, actor: PythonActor, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(`${what} did not happen within ${PATIENCE_MS} ms; the Python actor printed:\n${actor.output()}`),
        ),
      PATIENCE_MS,
    );
  });
  try {
    return await Promise.race([promise, late]);
  } finally {
    clearTimeout(timer);
  }
}

interface Frame {
  value: number;
  text: string;
  samples: Float64Array;
  via?: string;
}

suite('Python links (improv_ts.links) against the TypeScript links', () => {
  for (const sockets of socketChoices) {
    for (const protocol of ['ipc', 'tcp'] as const) {
      it(`TypeScript → Python → TypeScript: 2,000 messages with typed arrays, in order, credit 4 (${sockets}, ${protocol})`, {
        timeout: 60_000,
      }, async () => {
        const count = 2000;
        const descriptor = await plan(createZmqTransport({ protocol, sockets }), {
          edges: [edge('Node.q_out', 'Python.q_in', 4), edge('Python.q_out', 'Node.q_in', 4)],
        });
        const input = await open<InputLink<Frame>>(descriptor('Node.q_in'));
        const actor = startPython({
          mode: 'relay',
          in: descriptor('Python.q_in'),
          out: descriptor('Python.q_out'),
          count,
        });
        await actor.line(/^ready$/);
        const output = await open<OutputLink<Frame>>(descriptor('Node.q_out'));
        const sending = (async () => {
          for (let value = 0; value < count; value++) {
            await output.put({ value, text: `frame ${value}`, samples: new Float64Array([value, 0.5]) });
          }
        })();
        for (let value = 0; value < count; value++) {
          const message = await next(input, actor);
          expect(message).toEqual({
            value: value * 2,
            text: `frame ${value}`,
            samples: new Float64Array([value * 2, 1]),
            via: 'python',
          });
        }
        await within(sending, actor, 'every put');
        await actor.line(/^done$/);
        expect(await actor.exited, actor.output()).toBe(0);
        expect(actor.output()).toContain(`relayed ${count}\n`);
      });
    }
  }

  it('integers: one beyond 32 bits reaches Python as an int, a Python int reaches TypeScript as a number (a bigint beyond 2**53)', {
    timeout: 60_000,
  }, async () => {
    const descriptor = await plan(createZmqTransport({ protocol: 'ipc', sockets: socketChoices[0] }), {
      edges: [edge('Node.q_out', 'Python.q_in', 4), edge('Python.q_out', 'Node.q_in', 4)],
    });
    const input = await open<InputLink<Record<string, number | bigint>>>(descriptor('Node.q_in'));
    const actor = startPython({ mode: 'integers', in: descriptor('Python.q_in'), out: descriptor('Python.q_out') });
    await actor.line(/^ready$/);
    const output = await open<OutputLink<Record<string, number | bigint>>>(descriptor('Node.q_out'));
    const now = Date.now();
    await within(output.put({ now, big: 2 ** 40, neg: -(2 ** 40), small: 7, huge: 2n ** 63n - 1n }), actor, 'the put');
    const types = JSON.parse((await actor.line(/^types /)).slice('types '.length)) as Record<string, [string, string]>;
    expect(types).toEqual({
      now: ['int', String(now)],
      big: ['int', String(2 ** 40)],
      neg: ['int', String(-(2 ** 40))],
      small: ['int', '7'],
      huge: ['int', String(2n ** 63n - 1n)],
    });
    const message = await next(input, actor);
    const t = message.t as number;
    expect(typeof t).toBe('number');
    expect(Date.now() - t).toBeGreaterThanOrEqual(0);
    expect(Date.now() - t).toBeLessThan(60_000);
    expect(message).toEqual({ t, a: 2 ** 32 + 1, neg: -(2 ** 40), b: 2n ** 53n + 1n, c: 2n ** 63n - 1n });
    await actor.line(/^done$/);
    expect(await actor.exited, actor.output()).toBe(0);
  });

  it('fan-in: two TypeScript sources into a Python sink, none lost, each in order', { timeout: 60_000 }, async () => {
    const count = 1000;
    const descriptor = await plan(createZmqTransport(), {
      edges: [edge('A.q_out', 'Python.q_in', 4), edge('B.q_out', 'Python.q_in', 4)],
    });
    const actor = startPython({ mode: 'fan-in', in: descriptor('Python.q_in'), count: 2 * count });
    await actor.line(/^ready$/);
    const sources = {
      A: await open<OutputLink>(descriptor('A.q_out')),
      B: await open<OutputLink>(descriptor('B.q_out')),
    };
    await within(
      Promise.all(
        Object.entries(sources).map(async ([from, source]) => {
          for (let n = 0; n < count; n++) await source.put({ from, n });
        }),
      ),
      actor,
      'every put',
    );
    const result = JSON.parse((await actor.line(/^result /)).slice('result '.length)) as Record<string, number[]>;
    const inOrder = Array.from({ length: count }, (_, n) => n);
    expect(result).toEqual({ A: inOrder, B: inOrder });
    expect(await actor.exited, actor.output()).toBe(0);
  });

  it('backpressure: a TypeScript source waits while the Python sink does not read, and goes on when it does', {
    timeout: 60_000,
  }, async () => {
    const transport = createZmqTransport();
    const descriptor = await plan(transport, { edges: [edge('Node.q_out', 'Python.q_in', 3)] });
    const actor = startPython({ mode: 'hold-back', in: descriptor('Python.q_in'), queued: 3, count: 8 });
    await actor.line(/^ready$/);
    const output = await open<OutputLink>(descriptor('Node.q_out'));
    for (let n = 0; n < 3; n++) await output.put({ n });
    let resolved = 3;
    const rest = (async () => {
      for (let n = 3; n < 8; n++) {
        await output.put({ n });
        resolved++;
      }
    })();
    // The Python sink holds all three; the fourth put has no credit and says it waits.
    expect(await actor.line(/^queued /)).toBe('queued 3');
    expect(transport.stats()[0]).toMatchObject({ sent: 3, waiting: true });
    expect(resolved).toBe(3);
    actor.tell('read');
    await within(rest, actor, 'the waiting puts');
    expect(resolved).toBe(8);
    const result = JSON.parse((await actor.line(/^result /)).slice('result '.length)) as number[];
    expect(result).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(await actor.exited, actor.output()).toBe(0);
  });

  it('backpressure: a Python source waits while the TypeScript sink does not read, and goes on when it does', {
    timeout: 60_000,
  }, async () => {
    const descriptor = await plan(createZmqTransport(), { edges: [edge('Python.q_out', 'Node.q_in', 3)] });
    const input = await open<InputLink<{ n: number }>>(descriptor('Node.q_in'));
    const actor = startPython({ mode: 'put', out: descriptor('Python.q_out'), count: 6 });
    // Three puts of credit, then the fourth waits for the sink.
    await actor.line(/^waiting$/);
    expect(actor.output()).toContain('put 2\n');
    expect(actor.output()).not.toContain('put 3\n');
    const received: number[] = [];
    for (let n = 0; n < 6; n++) received.push((await next(input, actor)).n);
    expect(received).toEqual([0, 1, 2, 3, 4, 5]);
    await actor.line(/^done$/);
    expect(actor.output()).toContain('put 5\n');
    expect(await actor.exited, actor.output()).toBe(0);
  });

  for (const sockets of socketChoices) {
    it(`CURVE over tcp: relays with the pipeline's keys; the Python sink refuses and reports a source without them (${sockets})`, {
      timeout: 60_000,
    }, async () => {
      const curve = generateKeyPair();
      const descriptor = await plan(createZmqTransport({ protocol: 'tcp', curve, sockets }), {
        edges: [edge('Node.q_out', 'Python.q_in', 8), edge('Python.q_out', 'Node.q_in', 8)],
      });
      expect(descriptor('Python.q_in').curve).toEqual(curve);
      const input = await open<InputLink<Frame>>(descriptor('Node.q_in'));
      const actor = startPython({
        mode: 'relay',
        in: descriptor('Python.q_in'),
        out: descriptor('Python.q_out'),
        count: 100,
      });
      await actor.line(/^ready$/);
      const output = await open<OutputLink<Frame>>(descriptor('Node.q_out'));
      const sending = (async () => {
        for (let value = 0; value < 100; value++) {
          await output.put({ value, text: '', samples: new Float64Array([value]) });
        }
      })();
      for (let value = 0; value < 100; value++) {
        expect((await next(input, actor, `relayed message ${value} of 100`)).value).toBe(value * 2);
      }
      await within(sending, actor, 'every put');
      expect(await actor.exited, actor.output()).toBe(0);

      // A sink that reports refusals, and a TypeScript source with a key pair of its own.
      const plannedAgain = await plan(createZmqTransport({ protocol: 'tcp', curve, sockets }), {
        edges: [edge('Node.q_out', 'Python.q_in', 8)],
      });
      const sink = startPython({ mode: 'refusals', in: plannedAgain('Python.q_in') });
      await sink.line(/^ready$/);
      const intruder = await open<OutputLink>({ ...plannedAgain('Node.q_out'), curve: generateKeyPair() });
      await intruder.put({ value: -1 });
      const address = plannedAgain('Python.q_in').address as string;
      const refusal = await sink.line(/refused a peer/);
      expect(refusal).toContain(`warn link "Python.q_in" (${address}): refused a peer at tcp://`);
      expect(refusal).toContain("it does not have the pipeline's CURVE keys");
      expect(sink.output()).not.toContain('received');
    });
  }
});
