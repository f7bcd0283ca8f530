/**
 * The CURVE security mechanism (RFC 26, CurveZMQ) over tweetnacl. The client (our DEALER) sends
 * HELLO and INITIATE, the server (our ROUTER) answers WELCOME (with a cookie only it can open) and
 * READY; afterwards every frame travels as a MESSAGE command boxed with the short-term keys and a
 * nonce `CurveZMQMESSAGEC`/`CurveZMQMESSAGES` + an 8-byte counter that must only grow. Without ZAP
 * the server takes any client that proves it knows the server's public key, as libzmq does.
 *
 * Layouts follow libzmq 4.3 byte for byte: nonces are big-endian, the client's short nonces count
 * from 1 (HELLO) and 2 (INITIATE), the server's from 1 (READY), and a MESSAGE frame carries no frame
 * flags of its own — MORE and COMMAND (0x01, 0x02) travel in the first plaintext byte.
 * @module
 */
import nacl from 'tweetnacl';
import { encodeCommand, parseProperties, textToBytes } from './frames.ts';

/** tweetnacl's low-level secretbox, which encrypts and decrypts in place (part of its API, untyped). */
interface NaclLowLevel {
  crypto_secretbox(c: Uint8Array, m: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
  crypto_secretbox_open(m: Uint8Array, c: Uint8Array, d: number, n: Uint8Array, k: Uint8Array): number;
}
const lowlevel = (nacl as unknown as { lowlevel: NaclLowLevel }).lowlevel;

const HELLO_NONCE = textToBytes('CurveZMQHELLO---');
const WELCOME_NONCE = textToBytes('WELCOME-');
const COOKIE_NONCE = textToBytes('COOKIE--');
const INITIATE_NONCE = textToBytes('CurveZMQINITIATE');
const VOUCH_NONCE = textToBytes('VOUCH---');
const READY_NONCE = textToBytes('CurveZMQREADY---');
const MESSAGE_CLIENT = textToBytes('CurveZMQMESSAGEC');
const MESSAGE_SERVER = textToBytes('CurveZMQMESSAGES');
/** `\x07MESSAGE`: the start of every MESSAGE command body. */
export const MESSAGE_PREFIX = textToBytes('\x07MESSAGE');

/** Plaintext flag of a MESSAGE: more frames follow. */
export const CURVE_MORE = 0x01;
/** Plaintext flag of a MESSAGE: the frame is a command (PING, PONG). */
export const CURVE_COMMAND = 0x02;

/** Sizes of the handshake commands' data (after the command name). */
const HELLO_DATA = 2 + 72 + 32 + 8 + 80;
const WELCOME_DATA = 16 + 144;
const COOKIE_BYTES = 16 + 80;
const INITIATE_MIN_DATA = COOKIE_BYTES + 8 + 16 + 32 + 16 + 80;
const READY_MIN_DATA = 8 + 16;
/** Box overhead (the Poly1305 tag) and the zero padding tweetnacl's low-level calls expect. */
const MAC_BYTES = 16;
const ZERO_BYTES = 32;

/** A step's outcome: its value, or why the handshake fails. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; error: string };

const fail = (error: string): { ok: false; error: string } => ({ ok: false, error });

function nonceOf(prefix: Uint8Array, tail: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(24);
  nonce.set(prefix, 0);
  nonce.set(tail, prefix.length);
  return nonce;
}

function counterBytes(counter: number): Uint8Array {
  const bytes = new Uint8Array(8);
  writeCounter(bytes, 0, counter);
  return bytes;
}

function writeCounter(bytes: Uint8Array, at: number, counter: number): void {
  const high = Math.floor(counter / 0x1_0000_0000);
  const low = counter >>> 0;
  bytes[at] = high >>> 24;
  bytes[at + 1] = (high >>> 16) & 0xff;
  bytes[at + 2] = (high >>> 8) & 0xff;
  bytes[at + 3] = high & 0xff;
  bytes[at + 4] = low >>> 24;
  bytes[at + 5] = (low >>> 16) & 0xff;
  bytes[at + 6] = (low >>> 8) & 0xff;
  bytes[at + 7] = low & 0xff;
}

function readCounter(bytes: Uint8Array, at: number): number {
  const high = ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
  const low = ((bytes[at + 4]! << 24) | (bytes[at + 5]! << 16) | (bytes[at + 6]! << 8) | bytes[at + 7]!) >>> 0;
  return high * 0x1_0000_0000 + low;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index++) difference |= a[index]! ^ b[index]!;
  return difference === 0;
}

/** Boxes and unboxes the MESSAGE commands of a connection whose handshake is done. */
export class CurveCipher {
  readonly #key: Uint8Array;
  readonly #sendNonce = new Uint8Array(24);
  readonly #receiveNonce = new Uint8Array(24);
  #sent: number;
  #received: number;

  /**
   * @param key the precomputed key of the two short-term key pairs
   * @param server whether this side is the server (its nonces say `S`)
   * @param sent the last short nonce this side used in the handshake
   * @param received the last short nonce the peer used in the handshake
   */
  constructor(key: Uint8Array, server: boolean, sent: number, received: number) {
    this.#key = key;
    this.#sendNonce.set(server ? MESSAGE_SERVER : MESSAGE_CLIENT);
    this.#receiveNonce.set(server ? MESSAGE_CLIENT : MESSAGE_SERVER);
    this.#sent = sent;
    this.#received = received;
  }

  /** The MESSAGE command body of one frame: `\x07MESSAGE`, the nonce, the box of flags + data. */
  seal(flags: number, data: Uint8Array): Uint8Array {
    const counter = ++this.#sent;
    // In place: 32 zero bytes, flags, data → 16 zero bytes, tag, ciphertext. The 16 zero bytes
    // then take the command name and the short nonce, so the result is the whole command body.
    const body = new Uint8Array(ZERO_BYTES + 1 + data.length);
    body[ZERO_BYTES] = flags;
    body.set(data, ZERO_BYTES + 1);
    writeCounter(this.#sendNonce, 16, counter);
    lowlevel.crypto_secretbox(body, body, body.length, this.#sendNonce, this.#key);
    body.set(MESSAGE_PREFIX, 0);
    body.set(this.#sendNonce.subarray(16), 8);
    return body;
  }

  /**
   * Opens a MESSAGE command body (in place: the body's bytes are reused): the frame's flags and
   * data, or why it is refused (malformed, replayed nonce, or a box that does not open).
   */
  open(body: Uint8Array): Outcome<{ flags: number; data: Uint8Array }> {
    if (body.length < 16 + MAC_BYTES + 1 || !startsWith(body, MESSAGE_PREFIX)) {
      return fail('the peer sent a malformed CURVE MESSAGE');
    }
    const counter = readCounter(body, 8);
    if (counter <= this.#received) return fail('the peer reused a CURVE MESSAGE nonce');
    this.#receiveNonce.set(body.subarray(8, 16), 16);
    body.fill(0, 0, 16);
    if (lowlevel.crypto_secretbox_open(body, body, body.length, this.#receiveNonce, this.#key) !== 0) {
      return fail('a CURVE MESSAGE did not decrypt');
    }
    this.#received = counter;
    return { ok: true, value: { flags: body[ZERO_BYTES]!, data: body.subarray(ZERO_BYTES + 1) } };
  }
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  for (let index = 0; index < prefix.length; index++) if (bytes[index] !== prefix[index]) return false;
  return true;
}

/** The keys of a CURVE client, 32 bytes each. */
export interface CurveClientKeys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  /** The public key of the server the client trusts. */
  serverKey: Uint8Array;
}

/** The keys of a CURVE server, 32 bytes each. */
export interface CurveServerKeys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** What a finished handshake gives: the peer's metadata and the cipher for MESSAGE commands. */
export interface CurveDone {
  metadata: Map<string, Uint8Array>;
  cipher: CurveCipher;
}

/** The client side of the handshake: `hello()`, then `welcome()` answers INITIATE, `ready()` ends it. */
export class CurveClient {
  readonly #keys: CurveClientKeys;
  readonly #metadata: Uint8Array;
  readonly #transient = nacl.box.keyPair();
  #serverTransient: Uint8Array | undefined;

  /** @param metadata our encoded metadata properties, sent boxed in INITIATE */
  constructor(keys: CurveClientKeys, metadata: Uint8Array) {
    this.#keys = keys;
    this.#metadata = metadata;
  }

  /** HELLO: version 1.0, padding, C', short nonce 1, Box[64 zero bytes](C'→S). */
  hello(): Uint8Array {
    const short = counterBytes(1);
    const box = nacl.box(
      new Uint8Array(64),
      nonceOf(HELLO_NONCE, short),
      this.#keys.serverKey,
      this.#transient.secretKey,
    );
    return encodeCommand(
      'HELLO',
      concat(Uint8Array.of(1, 0), new Uint8Array(72), this.#transient.publicKey, short, box),
    );
  }

  /** Opens WELCOME (S' and the cookie) and gives INITIATE: cookie, short nonce 2, Box[C + vouch + metadata](C'→S'). */
  welcome(data: Uint8Array): Outcome<Uint8Array> {
    if (data.length !== WELCOME_DATA) return fail('the server sent a malformed CURVE WELCOME');
    const opened = nacl.box.open(
      data.subarray(16),
      nonceOf(WELCOME_NONCE, data.subarray(0, 16)),
      this.#keys.serverKey,
      this.#transient.secretKey,
    );
    if (opened === null) {
      return fail("the server's CURVE WELCOME did not decrypt: its key pair is not the one serverKey names");
    }
    const serverTransient = opened.slice(0, 32);
    this.#serverTransient = serverTransient;
    const cookie = opened.subarray(32, 32 + COOKIE_BYTES);
    const vouchNonce = nacl.randomBytes(16);
    const vouch = nacl.box(
      concat(this.#transient.publicKey, this.#keys.serverKey),
      nonceOf(VOUCH_NONCE, vouchNonce),
      serverTransient,
      this.#keys.secretKey,
    );
    const short = counterBytes(2);
    const box = nacl.box(
      concat(this.#keys.publicKey, vouchNonce, vouch, this.#metadata),
      nonceOf(INITIATE_NONCE, short),
      serverTransient,
      this.#transient.secretKey,
    );
    return { ok: true, value: encodeCommand('INITIATE', concat(cookie, short, box)) };
  }

  /** Opens READY (the server's metadata): the handshake is done. */
  ready(data: Uint8Array): Outcome<CurveDone> {
    if (this.#serverTransient === undefined || data.length < READY_MIN_DATA) {
      return fail('the server sent a malformed CURVE READY');
    }
    const key = nacl.box.before(this.#serverTransient, this.#transient.secretKey);
    const opened = nacl.box.open.after(data.subarray(8), nonceOf(READY_NONCE, data.subarray(0, 8)), key);
    if (opened === null) return fail("the server's CURVE READY did not decrypt");
    const metadata = parseProperties(opened);
    if (metadata === undefined) return fail('the server sent malformed metadata in CURVE READY');
    return { ok: true, value: { metadata, cipher: new CurveCipher(key, false, 2, readCounter(data, 0)) } };
  }
}

/** The server side of the handshake: `hello()` answers WELCOME, `initiate()` answers READY and ends it. */
export class CurveServer {
  readonly #keys: CurveServerKeys;
  readonly #metadata: Uint8Array;
  readonly #cookieKey = nacl.randomBytes(32);
  #transient: nacl.BoxKeyPair | undefined;
  #clientTransient: Uint8Array | undefined;

  /** @param metadata our encoded metadata properties, sent boxed in READY */
  constructor(keys: CurveServerKeys, metadata: Uint8Array) {
    this.#keys = keys;
    this.#metadata = metadata;
  }

  /** Opens HELLO (proving the client knows S) and gives WELCOME: Box[S' + cookie](S→C'). */
  hello(data: Uint8Array): Outcome<Uint8Array> {
    if (data.length !== HELLO_DATA) return fail('the client sent a malformed CURVE HELLO');
    if (data[0] !== 1 || data[1] !== 0) return fail(`the client speaks CURVE ${data[0]}.${data[1]}, not 1.0`);
    const clientTransient = data.slice(74, 106);
    const opened = nacl.box.open(
      data.subarray(114),
      nonceOf(HELLO_NONCE, data.subarray(106, 114)),
      clientTransient,
      this.#keys.secretKey,
    );
    if (opened === null) {
      return fail("the client's CURVE HELLO did not decrypt: the client was given another server key than this one");
    }
    const transient = nacl.box.keyPair();
    this.#transient = transient;
    this.#clientTransient = clientTransient;
    const cookieNonce = nacl.randomBytes(16);
    const cookie = nacl.secretbox(
      concat(clientTransient, transient.secretKey),
      nonceOf(COOKIE_NONCE, cookieNonce),
      this.#cookieKey,
    );
    const welcomeNonce = nacl.randomBytes(16);
    const box = nacl.box(
      concat(transient.publicKey, cookieNonce, cookie),
      nonceOf(WELCOME_NONCE, welcomeNonce),
      clientTransient,
      this.#keys.secretKey,
    );
    return { ok: true, value: encodeCommand('WELCOME', concat(welcomeNonce, box)) };
  }

  /**
   * Opens INITIATE — the cookie, the client's long-term key and its vouch for C' and S — and gives
   * READY: short nonce 1, Box[metadata](S'→C'). `clientKey` is the client's long-term public key.
   */
  initiate(data: Uint8Array): Outcome<CurveDone & { ready: Uint8Array; clientKey: Uint8Array }> {
    const transient = this.#transient;
    const clientTransient = this.#clientTransient;
    if (transient === undefined || clientTransient === undefined || data.length < INITIATE_MIN_DATA) {
      return fail('the client sent a malformed CURVE INITIATE');
    }
    const cookie = nacl.secretbox.open(
      data.subarray(16, COOKIE_BYTES),
      nonceOf(COOKIE_NONCE, data.subarray(0, 16)),
      this.#cookieKey,
    );
    if (
      cookie === null ||
      !equal(cookie.subarray(0, 32), clientTransient) ||
      !equal(cookie.subarray(32, 64), transient.secretKey)
    ) {
      return fail('the client sent a CURVE INITIATE with a cookie this side did not make');
    }
    const key = nacl.box.before(clientTransient, transient.secretKey);
    const short = data.subarray(COOKIE_BYTES, COOKIE_BYTES + 8);
    const opened = nacl.box.open.after(data.subarray(COOKIE_BYTES + 8), nonceOf(INITIATE_NONCE, short), key);
    if (opened === null) return fail("the client's CURVE INITIATE did not decrypt");
    const clientKey = opened.slice(0, 32);
    const vouch = nacl.box.open(
      opened.subarray(48, 128),
      nonceOf(VOUCH_NONCE, opened.subarray(32, 48)),
      clientKey,
      transient.secretKey,
    );
    if (
      vouch === null ||
      !equal(vouch.subarray(0, 32), clientTransient) ||
      !equal(vouch.subarray(32, 64), this.#keys.publicKey)
    ) {
      return fail("the client's CURVE vouch does not match its keys");
    }
    const metadata = parseProperties(opened.subarray(128));
    if (metadata === undefined) return fail('the client sent malformed metadata in CURVE INITIATE');
    const readyShort = counterBytes(1);
    const box = nacl.box.after(this.#metadata, nonceOf(READY_NONCE, readyShort), key);
    return {
      ok: true,
      value: {
        metadata,
        clientKey,
        ready: encodeCommand('READY', concat(readyShort, box)),
        cipher: new CurveCipher(key, true, 1, readCounter(short, 0)),
      },
    };
  }
}
