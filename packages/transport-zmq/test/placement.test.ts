/**
 * Links to actors on other hosts: with a placement (which actor runs where), every sink that a peer
 * on another host reaches listens on tcp at its host's address, every other sink stays an ipc file
 * of this machine, and the links of the run are encrypted with a CURVE pair made for it. Messages
 * then cross such a link as any other. 127.0.0.2 stands for the other host's address.
 */
import net, { type AddressInfo } from 'node:net';
import type { InputLink, LinkEdge, LinkPlacement, OutputLink } from '@improv/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createZmqTransport, openLink } from '../src/index.ts';
import { publicKeyOf } from '../src/keys.ts';

let cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

const edge = (connection: string, from: string, to: string): LinkEdge => ({
  connection,
  from: { actor: from, link: 'q_out' },
  to: { actor: to, link: 'q_in' },
  capacity: 8,
  policy: 'block',
});

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('zmq links with actors on other hosts', () => {
  it('puts sinks that other hosts reach on tcp at their host, with CURVE; keeps the rest on ipc', async () => {
    const asked: string[] = [];
    const placement: LinkPlacement = {
      hostOf: (actor) => (actor === 'Camera' || actor === 'Stimulus' ? 'rig' : undefined),
      addressOf: (host) => (host === 'rig' ? '127.0.0.2' : '127.0.0.1'),
      freePort: (host) => {
        asked.push(host);
        return freePort('127.0.0.2');
      },
    };
    const transport = createZmqTransport();
    cleanup.push(() => transport.close());
    const { endpoints } = await transport.plan({
      edges: [
        edge('frames', 'Camera', 'Analysis'), // rig → here: Analysis listens here, on tcp
        edge('results', 'Analysis', 'Viewer'), // here → here: ipc
        edge('commands', 'Viewer', 'Stimulus'), // here → rig: Stimulus listens on rig, on tcp
      ],
      placement,
    });
    const sink = (actor: string) => endpoints.get(actor)!.get('q_in')!;
    expect(String(sink('Analysis').address)).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(String(sink('Viewer').address)).toMatch(/^ipc:\/\//);
    expect(String(sink('Stimulus').address)).toMatch(/^tcp:\/\/127\.0\.0\.2:\d+$/);
    // Only the host's own agent knows which of its ports are free.
    expect(asked).toEqual(['rig']);
    const curve = sink('Analysis').curve as { publicKey: string; secretKey: string };
    expect(publicKeyOf(curve.secretKey)).toBe(curve.publicKey);
    expect(endpoints.get('Camera')!.get('q_out')!.curve).toEqual(curve);

    // A message crosses the encrypted tcp link, and the ipc one.
    const open = async <T>(actor: string, link: string) => {
      const opened = await openLink(endpoints.get(actor)!.get(link)!);
      cleanup.push(() => opened.close());
      return opened as T;
    };
    const analysisIn = await open<InputLink>('Analysis', 'q_in');
    const viewerIn = await open<InputLink>('Viewer', 'q_in');
    const cameraOut = await open<OutputLink>('Camera', 'q_out');
    const analysisOut = await open<OutputLink>('Analysis', 'q_out');
    await cameraOut.put({ frame: 1 });
    expect(await analysisIn.get()).toEqual({ frame: 1 });
    await analysisOut.put({ result: 2 });
    expect(await viewerIn.get()).toEqual({ result: 2 });
  });

  it('without a placement, plans exactly as before: ipc and no keys', async () => {
    const transport = createZmqTransport();
    cleanup.push(() => transport.close());
    const { endpoints } = await transport.plan({ edges: [edge('frames', 'Camera', 'Analysis')] });
    const sink = endpoints.get('Analysis')!.get('q_in')!;
    expect(String(sink.address)).toMatch(/^ipc:\/\//);
    expect(sink.curve).toBeUndefined();
  });
});
