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
