/**
 * The two socket implementations of this package speak to each other: a source on one and its sink
 * on the other, both ways, NULL and CURVE, through the links themselves (credit, acknowledgements,
 * multipart frames). zeromq.js is used on Node only (it aborts Bun and fails in Deno): run there.
 */
import type { InputLink, LinkDescriptor, OutputLink } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createZmqTransport, openLink } from '../src/index.ts';
import { generateKeyPair } from '../src/keys.ts';

const suite = 'Bun' in globalThis || 'Deno' in globalThis ? describe.skip : describe;
let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

suite('zeromq.js and the TypeScript ZMTP, each end on another', () => {
  const pairs = [
    ['zeromq', 'zmtp'],
    ['zmtp', 'zeromq'],
  ] as const;
  for (const [source, sink] of pairs) {
    for (const secure of [false, true]) {
      it(`source on ${source} → sink on ${sink}${secure ? ', CURVE' : ''}: 3,000 messages in order under credit of 8`, async () => {
        const transport = createZmqTransport({ protocol: 'tcp', ...(secure ? { curve: generateKeyPair() } : {}) });
        cleanup.push(() => transport.close());
        const { endpoints } = await transport.plan({
          edges: [
            {
              connection: 'c',
              from: { actor: 'A', link: 'q_out' },
              to: { actor: 'B', link: 'q_in' },
              capacity: 8,
              policy: 'block',
            },
          ],
        });
        const on = (descriptor: LinkDescriptor | undefined, sockets: string) => ({ ...descriptor!, sockets });
        const input = (await openLink(on(endpoints.get('B')?.get('q_in'), sink))) as InputLink<{
          n: number;
          pad: string;
        }>;
        const output = (await openLink(on(endpoints.get('A')?.get('q_out'), source))) as OutputLink;
        cleanup.push(async () => {
          await output.close();
          await input.close();
        });
        const sending = (async () => {
          for (let n = 0; n < 3000; n++) await output.put({ n, pad: 'x'.repeat(n % 300) });
        })();
        for (let n = 0; n < 3000; n++) {
          const message = await input.get({ timeoutMs: 20_000 });
          expect(message.n).toBe(n);
          expect(message.pad.length).toBe(n % 300);
        }
        await sending;
      });
    }
  }
});
