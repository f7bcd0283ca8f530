/**
 * CURVE keys for zmq links: Z85 (ZeroMQ RFC 32) text, the form libzmq, pyzmq and `improv keys` use.
 *
 * @example
 * ```ts
 * import { generateKeyPair, z85Decode } from '@improv/transport-zmq/keys';
 * const { publicKey, secretKey } = generateKeyPair(); // 40 characters each
 * z85Decode(publicKey).length; // 32
 * ```
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { makeFolder } from '@improv/core/runtime/folders';
import nacl from 'tweetnacl';
import type { CurveKeyPair } from './_socket.ts';

export type { CurveKeyPair } from './_socket.ts';

const ALPHABET = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const DECODE = new Int16Array(128).fill(-1);
for (let index = 0; index < ALPHABET.length; index++) DECODE[ALPHABET.charCodeAt(index)] = index;

/** Encodes bytes (a multiple of 4 long) as Z85 text. */
export function z85Encode(bytes: Uint8Array): string {
  if (bytes.length % 4 !== 0) throw new RangeError(`z85Encode: ${bytes.length} bytes is not a multiple of 4`);
  let text = '';
  for (let offset = 0; offset < bytes.length; offset += 4) {
    let value =
      ((bytes[offset]! << 24) >>> 0) + (bytes[offset + 1]! << 16) + (bytes[offset + 2]! << 8) + bytes[offset + 3]!;
    const chunk: string[] = [];
    for (let digit = 0; digit < 5; digit++) {
      chunk.push(ALPHABET[value % 85]!);
      value = Math.floor(value / 85);
    }
    text += chunk.reverse().join('');
  }
  return text;
}

/** Decodes Z85 text (a multiple of 5 characters long); throws a RangeError naming what is wrong. */
export function z85Decode(text: string): Uint8Array {
  if (text.length % 5 !== 0) {
    throw new RangeError(`not a Z85 key: ${text.length} characters is not a multiple of 5`);
  }
  const bytes = new Uint8Array((text.length / 5) * 4);
  for (let offset = 0, out = 0; offset < text.length; offset += 5, out += 4) {
    let value = 0;
    for (let digit = 0; digit < 5; digit++) {
      const code = text.charCodeAt(offset + digit);
      const decoded = code < 128 ? DECODE[code]! : -1;
      if (decoded < 0) {
        throw new RangeError(`not a Z85 key: character ${JSON.stringify(text[offset + digit])} at ${offset + digit}`);
      }
      value = value * 85 + decoded;
    }
    if (value > 0xffffffff) throw new RangeError(`not a Z85 key: the group at ${offset} is out of range`);
    bytes[out] = value >>> 24;
    bytes[out + 1] = (value >>> 16) & 0xff;
    bytes[out + 2] = (value >>> 8) & 0xff;
    bytes[out + 3] = value & 0xff;
  }
  return bytes;
}

/** A fresh CURVE key pair (Curve25519), as Z85 text. */
export function generateKeyPair(): CurveKeyPair {
  const pair = nacl.box.keyPair();
  return { publicKey: z85Encode(pair.publicKey), secretKey: z85Encode(pair.secretKey) };
}

/** The public key of a secret key (both Z85). */
export function publicKeyOf(secretKey: string): string {
  return z85Encode(nacl.box.keyPair.fromSecretKey(checkKey(secretKey, 'secret key')).publicKey);
}

/** Decodes a 40-character Z85 key to its 32 bytes; the error names `what` and how to make a key. */
export function checkKey(key: string, what: string): Uint8Array {
  const trimmed = key.trim();
  if (trimmed.length !== 40) {
    throw new RangeError(
      `the CURVE ${what} must be 40 characters of Z85, got ${trimmed.length}; make a key pair with \`improv keys\``,
    );
  }
  try {
    return z85Decode(trimmed);
  } catch (error) {
    throw new RangeError(`the CURVE ${what} is ${(error as Error).message}; make a key pair with \`improv keys\``);
  }
}

/** The files of a key pair: `<prefix>.key` (public, to share) and `<prefix>.key_secret` (0600). */
export function keyFiles(prefix: string): { publicFile: string; secretFile: string } {
  return { publicFile: `${prefix}.key`, secretFile: `${prefix}.key_secret` };
}

/**
 * Writes a fresh key pair to {@link keyFiles} in the certificate format of libzmq's czmq and
 * pyzmq (`zmq.auth.load_certificate` reads them). Refuses to replace existing files unless `force`.
 */
export async function writeKeyPair(prefix: string, options: { force?: boolean } = {}): Promise<CurveKeyPair> {
  const { publicFile, secretFile } = keyFiles(prefix);
  const pair = generateKeyPair();
  makeFolder(dirname(publicFile));
  const flag = options.force ? 'w' : 'wx';
  const stamp = new Date().toISOString();
  const certificate = (kind: string, secret: boolean) =>
    `#   ****  Generated on ${stamp} by improv keys  ****\n#   ZeroMQ CURVE ${kind} Certificate\n\nmetadata\ncurve\n    public-key = "${pair.publicKey}"\n${secret ? `    secret-key = "${pair.secretKey}"\n` : ''}`;
  try {
    await writeFile(secretFile, certificate('**Secret**', true), { flag, mode: 0o600 });
    await writeFile(publicFile, certificate('Public', false), { flag, mode: 0o644 });
  } catch (error) {
    if ((error as { code?: string }).code === 'EEXIST') {
      throw new Error(
        `${(error as { path?: string }).path ?? prefix} already exists; pass --force to replace the pair (peers holding the old public key will be refused), or choose another --out`,
      );
    }
    const { code, path } = error as { code?: string; path?: string };
    if (code !== undefined && path !== undefined) {
      throw new Error(
        `cannot write ${path} (${code}): choose an --out in a folder you can write to, e.g. keys/pipeline`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
  return pair;
}

/**
 * Reads the key pair `improv keys` (or pyzmq's `zmq.auth.create_certificates`) wrote at `prefix`:
 * the secret key from `<prefix>.key_secret`, checked against the public key in `<prefix>.key` when
 * that file is there. Errors name the file and how to make one.
 */
export async function readKeyPair(prefix: string): Promise<CurveKeyPair> {
  const { publicFile, secretFile } = keyFiles(prefix);
  const field = (text: string, name: string) =>
    new RegExp(`^\\s*${name}\\s*=\\s*["']?([^"'\\s]+)["']?\\s*$`, 'm').exec(text)?.[1];
  let secretText: string;
  try {
    secretText = await readFile(secretFile, 'utf8');
  } catch (error) {
    const reason = (error as { code?: string }).code === 'ENOENT' ? 'no such file' : (error as Error).message;
    throw new Error(
      `cannot read the CURVE secret key ${secretFile} (${reason}); make a pair with  improv keys --out ${prefix}`,
    );
  }
  const secretKey = field(secretText, 'secret-key');
  if (secretKey === undefined) {
    throw new Error(`${secretFile} has no secret-key line; it is not a key file written by improv keys`);
  }
  checkKey(secretKey, `secret key in ${secretFile}`);
  const publicKey = publicKeyOf(secretKey);
  let publicText: string | undefined;
  try {
    publicText = await readFile(publicFile, 'utf8');
  } catch {
    publicText = undefined;
  }
  const written = publicText === undefined ? undefined : field(publicText, 'public-key');
  if (written !== undefined && written !== publicKey) {
    throw new Error(
      `the public key in ${publicFile} does not belong to the secret key in ${secretFile}; make a new pair with  improv keys --out ${prefix} --force`,
    );
  }
  return { publicKey, secretKey };
}
