/**
 * What a Nexus and an `improv agent` say to each other (package-private), and the keys they derive
 * from the agent's token.
 *
 * - One ZeroMQ connection per Nexus: a DEALER at the Nexus, the agent's ROUTER, over TCP with CURVE.
 *   The agent's CURVE key pair is derived from its token (SHA-256 of the token and a label), so
 *   only a holder of the token can even complete the handshake; the first message must then carry
 *   the token itself, compared in constant time. Each message is one msgpack frame.
 * - Each side sends `ping` every {@link PING_EVERY_MS}; a side that hears nothing for
 *   {@link LOST_AFTER_MS} takes the other as gone: the Nexus reports the host lost (its actors end),
 *   the agent ends every process it started for that Nexus. A broken connection counts at once.
 *   A Nexus that speaks again after its session ended (it was suspended, or cut off and back) is
 *   told so once (`ended`) and takes its host as lost; the rest it sends is dropped.
 * - Each actor process is a stream of bytes (`data`, in order, `end`): the actor's control channel
 *   (`ProcessChannel` of `@improv/core/runtime/process-channel`), carried as it is.
 * @module
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { SerializedError } from '@improv/core';
import { makeFolder } from '@improv/core/runtime/folders';
import nacl from 'tweetnacl';
import type { CurveKeyPair } from '../_socket.ts';
import { z85Encode } from '../keys.ts';

export const PING_EVERY_MS = 1000;
/** Who reads the token in messages of the agent itself. */
const AGENT = 'improv agent';
export const LOST_AFTER_MS = 5000;
/** Longest a Nexus waits for an agent to answer at all. */
export const CONNECT_TIMEOUT_MS = 5000;

/** Nexus → agent. */
export type ToAgent =
  | { t: 'hello'; token: string; version: 1 }
  | { t: 'ping' }
  | { t: 'port'; req: number }
  | {
      t: 'spawn';
      id: number;
      name: string;
      runtime: 'node' | 'bun' | 'deno' | 'python';
      interpreter?: string;
      maxHeapMb?: number;
    }
  | { t: 'data'; id: number; bytes: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'kill'; id: number }
  | { t: 'bye' };

/** Agent → Nexus. */
export type FromAgent =
  | { t: 'welcome'; hostname: string; pid: number; peer: string }
  | { t: 'refused'; reason: string }
  /** Once, to a Nexus that sends after its session ended (the agent had not heard from it): it is lost. */
  | { t: 'ended'; reason: string }
  | { t: 'ping' }
  | { t: 'port'; req: number; port?: number; error?: string }
  | { t: 'spawned'; id: number; pid: number }
  | { t: 'spawn-failed'; id: number; error: SerializedError }
  | { t: 'data'; id: number; bytes: Uint8Array }
  | { t: 'end'; id: number }
  | { t: 'output'; id: number; line: string; stream: 'stdout' | 'stderr' }
  | { t: 'error'; id: number; error: SerializedError }
  | { t: 'exit'; id: number; code: number };

/** The agent's CURVE key pair, which both sides derive from the token. */
export function agentKeys(token: string): CurveKeyPair {
  const secret = createHash('sha256').update('improv agent CURVE key\0').update(token).digest();
  const pair = nacl.box.keyPair.fromSecretKey(new Uint8Array(secret));
  return { publicKey: z85Encode(pair.publicKey), secretKey: z85Encode(pair.secretKey) };
}

/** Whether `given` is the token, in time that does not depend on where they differ. */
export function sameToken(given: unknown, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(token).digest();
  return timingSafeEqual(a, b);
}

/** `~/x` as a path in the home folder; anything else as it is. */
export function expandHome(path: string): string {
  return path.startsWith('~/') ? resolve(homedir(), path.slice(2)) : resolve(path);
}

/** Reads a token file; throws an error that names the file and says what to do. */
export function readToken(path: string, whose: string): string {
  const file = expandHome(path);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(
      `${whose}: cannot read the token file ${file} (${code ?? (error as Error).message}); copy the file \`improv agent --token-file\` made on that host to this path, or give its path as token_file`,
    );
  }
  const token = text
    .split('\n')
    .map((line) => line.trim())
    .find((line) => line !== '' && !line.startsWith('#'));
  if (token === undefined || !/^[0-9a-f]{64}$/.test(token)) {
    throw new Error(
      `${whose}: ${file} is not an agent token file (a line of 64 hex digits); ${
        whose === AGENT
          ? 'remove it (the agent then makes a new one) or give another path'
          : 'copy the file `improv agent --token-file` made'
      }`,
    );
  }
  return token;
}

/** The agent's token: read from `path`, or made there (mode 0600) when the file does not exist. */
export function readOrMakeToken(path: string): { token: string; made: boolean; file: string } {
  const file = expandHome(path);
  let exists = true;
  try {
    statSync(file);
  } catch {
    exists = false;
  }
  if (exists) {
    if (statSync(file).isDirectory()) {
      throw new Error(
        `improv agent: the token file ${file} is a folder; give the path of a file (--token-file ${join(file, 'agent.token')}, made if missing)`,
      );
    }
    const mode = statSync(file).mode & 0o077;
    if (mode !== 0) {
      throw new Error(
        `improv agent: the token file ${file} can be read by other users (mode ${(statSync(file).mode & 0o777).toString(8)}); run  chmod 600 ${file}`,
      );
    }
    return { token: readToken(file, AGENT), made: false, file };
  }
  const token = randomBytes(32).toString('hex');
  makeFolder(dirname(file), { mode: 0o700 });
  writeFileSync(
    file,
    `# improv agent token: whoever has this file may start actors on this machine. Keep it secret;\n# copy it to the Nexus machine and name it in hosts.<name>.token_file.\n${token}\n`,
    { mode: 0o600, flag: 'wx' },
  );
  chmodSync(file, 0o600);
  return { token, made: true, file };
}
