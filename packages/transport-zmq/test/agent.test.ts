/**
 * The agent connection (`src/agent/`) on loopback, spoken to by a DEALER of this package as a Nexus
 * does: what the agent says of peers that are refused, that give up, or that come back after their
 * session ended. A Nexus that was suspended (SIGSTOP, a laptop's lid) and sends again is told its
 * session is over, once, and is not taken for one without the token; a connection abandoned
 * during its handshake is no refusal; a peer with another token is reported once, not at each of
 * its retries.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogLevel } from '@improv/core';
import { Decoder, Encoder } from '@msgpack/msgpack';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../src/_free-port.ts';
import type { SocketEvent } from '../src/_socket.ts';
import { agentKeys, type FromAgent, readToken, type ToAgent } from '../src/agent/_wire.ts';
import { type RunningAgent, serveAgent } from '../src/agent/server.ts';
import { generateKeyPair } from '../src/keys.ts';
import { encodeGreeting } from '../src/zmtp/greeting.ts';
import { createZmtpSockets } from '../src/zmtp/index.ts';

const TIMEOUT = 30_000;
const sockets = createZmtpSockets();
const encoder = new Encoder({ ignoreUndefined: true });
const decoder = new Decoder();
const scratch = mkdtempSync(join(tmpdir(), 'agent-test-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

let cleanup: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  cleanup = [];
});

/** Resolves when `check` holds, polling; rejects with `what` after `ms`. */
async function until(check: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

interface Agent {
  agent: RunningAgent;
  port: number;
  token: string;
  logs: { level: LogLevel; message: string }[];
  said(level: LogLevel, text: string): string[];
}

/** An agent on 127.0.0.1 with a token of its own, its log kept. */
async function startAgent(name: string): Promise<Agent> {
  const port = await freePort('127.0.0.1');
  const tokenFile = join(scratch, `${name}.token`);
  const logs: Agent['logs'] = [];
  const agent = await serveAgent({
    listen: `127.0.0.1:${port}`,
    tokenFile,
    log: (level, message) => logs.push({ level, message }),
  });
  cleanup.push(() => agent.close());
  return {
    agent,
    port,
    token: readToken(tokenFile, name),
    logs,
    said: (level, text) =>
      logs.filter((entry) => entry.level === level && entry.message.includes(text)).map((entry) => entry.message),
  };
}

/** A DEALER as a Nexus opens it, trusting `serverKey`; what it hears, decoded. */
function nexus(port: number, serverKey: string) {
  const routingId = Uint8Array.of(1, ...Array.from({ length: 7 }, () => Math.floor(Math.random() * 256)));
  const dealer = sockets.dealer({ routingId, curve: { ...generateKeyPair(), serverKey } });
  const heard: FromAgent[] = [];
  const events: SocketEvent[] = [];
  dealer.onMessage((frames) => heard.push(decoder.decode(frames[0]!) as FromAgent));
  dealer.onEvent((event) => events.push(event));
  dealer.connect(`tcp://127.0.0.1:${port}`);
  cleanup.push(() => dealer.close());
  return { heard, events, send: (message: ToAgent) => dealer.send([encoder.encode(message)]) };
}

describe('the agent and a Nexus', () => {
  it(
    'a Nexus that sends again after its session ended (it was suspended) is told so once, and not taken for one without the token',
    async () => {
      const { port, token, said } = await startAgent('suspended');
      const peer = nexus(port, agentKeys(token).publicKey);
      peer.send({ t: 'hello', token, version: 1 });
      await until(() => peer.heard.some((message) => message.t === 'welcome'), 'the welcome');
      // Silent, as a suspended Nexus is: the agent ends its session.
      await until(() => said('info', 'Nexus 1 was not heard from for 5 s').length === 1, 'the session to end');
      // Back: its pings and the words of its actors' channels arrive, many of them.
      for (let n = 0; n < 20; n++)
        peer.send(n % 2 === 0 ? { t: 'ping' } : { t: 'data', id: 1, bytes: Uint8Array.of(n) });
      // A hello after them is answered once the agent has read them all (one connection, in order).
      peer.send({ t: 'hello', token, version: 1 });
      await until(() => peer.heard.filter((message) => message.t === 'welcome').length === 2, 'the second welcome');
      expect(peer.heard.filter((message) => message.t === 'ended')).toEqual([
        { t: 'ended', reason: 'it was not heard from for 5 s' },
      ]);
      expect(peer.heard.some((message) => message.t === 'refused')).toBe(false);
      expect(said('warn', "did not present this agent's token")).toEqual([]);
      expect(said('info', 'is still sending')).toEqual([
        'a Nexus whose session here ended (it was not heard from for 5 s) is still sending; told it so, and ignoring what it sends',
      ]);
    },
    TIMEOUT,
  );

  it(
    'a connection abandoned during its CURVE handshake (a Nexus that gave up waiting) is not reported as refused',
    async () => {
      const { port, logs, said } = await startAgent('abandoned');
      const socket = net.connect({ host: '127.0.0.1', port });
      cleanup.push(() => {
        socket.destroy();
      });
      await new Promise((resolve) => socket.once('connect', resolve));
      // A CURVE client's greeting, then it hangs up before its HELLO.
      socket.end(encodeGreeting('CURVE', false));
      await until(() => logs.some((entry) => entry.message.includes('handshake')), 'the agent to see it');
      expect(logs.filter((entry) => entry.level === 'warn')).toEqual([]);
      expect(said('debug', 'a connection ended during its handshake')).toHaveLength(1);
    },
    TIMEOUT,
  );

  it(
    'a Nexus with another token is refused at the CURVE handshake and reported once, not at each retry',
    async () => {
      const { port, said } = await startAgent('guarded');
      const other = await startAgent('other');
      const intruder = nexus(port, agentKeys(other.token).publicKey);
      intruder.send({ t: 'hello', token: other.token, version: 1 });
      await until(
        () => intruder.events.filter((event) => event.type === 'handshake-failed').length >= 5,
        'five refused handshakes',
      );
      expect(said('warn', 'refused a connection')).toEqual([
        "refused a connection: the client's CURVE HELLO did not decrypt: the client was given another server key than this one (a Nexus without this agent's token cannot complete the CURVE handshake)",
      ]);
      expect(intruder.heard).toEqual([]);
    },
    TIMEOUT,
  );
});
