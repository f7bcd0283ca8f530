/**
 * The ZMTP 3.1 greeting (RFC 23): 64 bytes each side sends first — the signature `FF 00×8 7F`, the
 * version (3.1), the security mechanism's name padded to 20 bytes, the as-server flag and 31 bytes
 * of filler. A peer speaking 3.0 is taken too (libzmq does the same); older versions are refused.
 * @module
 */

/** The length of a greeting. */
export const GREETING_BYTES = 64;

/** The security mechanisms this implementation speaks. */
export type Mechanism = 'NULL' | 'CURVE';

/** What the peer's greeting says. */
export interface PeerGreeting {
  major: number;
  minor: number;
  /** The mechanism's name as the peer wrote it (`NULL`, `CURVE`, `PLAIN`, ...). */
  mechanism: string;
  /** The as-server flag (libzmq always sends 0, so it decides nothing). */
  asServer: boolean;
}

/** Our greeting: version 3.1, `mechanism`, and whether we are the mechanism's server. */
export function encodeGreeting(mechanism: Mechanism, asServer: boolean): Uint8Array {
  const bytes = new Uint8Array(GREETING_BYTES);
  bytes[0] = 0xff;
  bytes[9] = 0x7f;
  bytes[10] = 3;
  bytes[11] = 1;
  for (let index = 0; index < mechanism.length; index++) bytes[12 + index] = mechanism.charCodeAt(index);
  bytes[32] = asServer ? 1 : 0;
  return bytes;
}

/**
 * Checks the first bytes of a greeting as soon as they arrive, so a peer that is no ZMTP peer (an
 * HTTP client, say) is told apart at once: the reason, or undefined while nothing is wrong yet.
 */
export function checkSignature(bytes: Uint8Array): string | undefined {
  if (bytes.length >= 1 && bytes[0] !== 0xff) return 'the peer is not a ZeroMQ peer (its greeting has no signature)';
  if (bytes.length >= 10 && (bytes[9]! & 1) !== 1) return 'the peer is not a ZeroMQ peer (bad greeting signature)';
  if (bytes.length >= 11 && bytes[10]! < 3) {
    return `the peer speaks ZMTP ${bytes[10]}.x; this side speaks ZMTP 3 (libzmq 4 or later, or a binding of it)`;
  }
  return undefined;
}

/** The peer's whole greeting (64 bytes), or the reason it is not one this side can answer. */
export function parseGreeting(bytes: Uint8Array): PeerGreeting | { error: string } {
  const wrong = checkSignature(bytes);
  if (wrong !== undefined) return { error: wrong };
  let end = 12;
  while (end < 32 && bytes[end] !== 0) end++;
  let mechanism = '';
  for (let index = 12; index < end; index++) mechanism += String.fromCharCode(bytes[index]!);
  return { major: bytes[10]!, minor: bytes[11]!, mechanism, asServer: bytes[32] === 1 };
}
