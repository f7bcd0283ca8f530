/**
 * The CURVE security mechanism (RFC 26, CurveZMQ) over tweetnacl: the client's HELLO and
 * INITIATE, the server's WELCOME and READY, and MESSAGE boxes after the handshake. The server takes
 * any client that proves it knows the server's public key (libzmq without ZAP does the same).
 * @module
 */
import nacl from 'tweetnacl';
import { commandBody, concat, encodeProperties, parseCommand, parseProperties } from './frames.ts';

const ascii = new TextEncoder();
const prefix = (text: string) => ascii.encode(text);

const HELLO_NONCE = prefix('CurveZMQHELLO---');
const WELCOME_NONCE = prefix('WELCOME-');
const COOKIE_NONCE = prefix('COOKIE--');
const INITIATE_NONCE = prefix('CurveZMQINITIATE');
const VOUCH_NONCE = prefix('VOUCH---');
const READY_NONCE = prefix('CurveZMQREADY---');
const MESSAGE_CLIENT = prefix('CurveZMQMESSAGEC');
const MESSAGE_SERVER = prefix('CurveZMQMESSAGES');

function nonce(head: Uint8Array, tail: Uint8Array): Uint8Array {
  const out = new Uint8Array(24);
  out.set(head, 0);
  out.set(tail, head.length);
  return out;
}

function shortNonce(counter: bigint): Uint8Array {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setBigUint64(0, counter);
  return bytes;
}

function readShort(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0);
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index++) difference |= (a[index] as number) ^ (b[index] as number);
  return difference === 0;
}

/** What a handshake step gives back: commands to send, and, once done, the peer's metadata. */
export interface CurveStep {
  send: Uint8Array[];
  done?: Map<string, Uint8Array>;
  error?: string;
}

/** Encrypts and decrypts MESSAGE boxes once the handshake is done. */
export class CurveCipher {
  readonly #key: Uint8Array;
  readonly #ours: Uint8Array;
  readonly #theirs: Uint8Array;
  #sent: bigint;
  #received = 0n;

  constructor(key: Uint8Array, server: boolean, sent: bigint) {
    this.#key = key;
    this.#ours = server ? MESSAGE_SERVER : MESSAGE_CLIENT;
    this.#theirs = server ? MESSAGE_CLIENT : MESSAGE_SERVER;
    this.#sent = sent;
  }

  /** The MESSAGE command of one frame: flags (bit 0 more) then data, boxed. */
  encrypt(data: Uint8Array, more: boolean): Uint8Array {
    this.#sent += 1n;
    const plain = new Uint8Array(1 + data.length);
    plain[0] = more ? 1 : 0;
    plain.set(data, 1);
    const short = shortNonce(this.#sent);
    const box = nacl.box.after(plain, nonce(this.#ours, short), this.#key);
    return concat([commandBody('MESSAGE'), short, box]);
  }

  /** One frame out of a MESSAGE command, or an error for a box that does not open. */
  decrypt(body: Uint8Array): { data: Uint8Array; more: boolean } | { error: string } {
    const command = parseCommand(body);
    if (command?.name !== 'MESSAGE' || command.data.length < 8 + 17) return { error: 'malformed CURVE MESSAGE' };
    const short = command.data.subarray(0, 8);
    const counter = readShort(short);
    if (counter <= this.#received) return { error: 'a CURVE MESSAGE nonce was replayed' };
    const plain = nacl.box.open.after(command.data.subarray(8), nonce(this.#theirs, short), this.#key);
    if (plain === null) return { error: 'a CURVE MESSAGE did not decrypt' };
    this.#received = counter;
    return { data: plain.subarray(1), more: ((plain[0] as number) & 1) !== 0 };
  }
}

/** The client (DEALER) side: knows its key pair and the server's public key. */
export class CurveClient {
  readonly #publicKey: Uint8Array;
  readonly #secretKey: Uint8Array;
  readonly #serverKey: Uint8Array;
  readonly #transient = nacl.box.keyPair();
  readonly #metadata: Uint8Array;
  #counter = 0n;
  #serverTransient: Uint8Array | undefined;
  cipher: CurveCipher | undefined;

  constructor(
    keys: { publicKey: Uint8Array; secretKey: Uint8Array; serverKey: Uint8Array },
    metadata: Record<string, Uint8Array>,
  ) {
    this.#publicKey = keys.publicKey;
    this.#secretKey = keys.secretKey;
    this.#serverKey = keys.serverKey;
    this.#metadata = encodeProperties(metadata);
  }

  hello(): Uint8Array {
    this.#counter += 1n;
    const short = shortNonce(this.#counter);
    const box = nacl.box(new Uint8Array(64), nonce(HELLO_NONCE, short), this.#serverKey, this.#transient.secretKey);
    return concat([
      commandBody('HELLO'),
      Uint8Array.of(1, 0),
      new Uint8Array(72),
      this.#transient.publicKey,
      short,
      box,
    ]);
  }

  /** Handles WELCOME (answering INITIATE) and READY (done). */
  receive(name: string, data: Uint8Array): CurveStep {
    if (name === 'WELCOME' && this.#serverTransient === undefined) {
      if (data.length !== 16 + 144) return { send: [], error: 'malformed CURVE WELCOME' };
      const opened = nacl.box.open(
        data.subarray(16),
        nonce(WELCOME_NONCE, data.subarray(0, 16)),
        this.#serverKey,
        this.#transient.secretKey,
      );
      if (opened === null) {
        return {
          send: [],
          error:
            "the server's WELCOME did not decrypt: it does not hold the secret key of the public key this side trusts",
        };
      }
      this.#serverTransient = opened.subarray(0, 32);
      const cookie = opened.subarray(32, 128);
      const vouchNonce = nacl.randomBytes(16);
      const vouch = nacl.box(
        concat([this.#transient.publicKey, this.#serverKey]),
        nonce(VOUCH_NONCE, vouchNonce),
        this.#serverTransient,
        this.#secretKey,
      );
      this.#counter += 1n;
      const short = shortNonce(this.#counter);
      const box = nacl.box(
        concat([this.#publicKey, vouchNonce, vouch, this.#metadata]),
        nonce(INITIATE_NONCE, short),
        this.#serverTransient,
        this.#transient.secretKey,
      );
      return { send: [concat([commandBody('INITIATE'), cookie, short, box])] };
    }
    if (name === 'READY' && this.#serverTransient !== undefined) {
      if (data.length < 8 + 16) return { send: [], error: 'malformed CURVE READY' };
      const key = nacl.box.before(this.#serverTransient, this.#transient.secretKey);
      const opened = nacl.box.open.after(data.subarray(8), nonce(READY_NONCE, data.subarray(0, 8)), key);
      if (opened === null) return { send: [], error: "the server's READY did not decrypt" };
      const metadata = parseProperties(opened);
      if (metadata === undefined) return { send: [], error: 'malformed metadata in CURVE READY' };
      this.cipher = new CurveCipher(key, false, this.#counter);
      return { send: [], done: metadata };
    }
    if (name === 'ERROR') return { send: [], error: `the server refused: ${errorReason(data)}` };
    return { send: [], error: `unexpected ${name} command during the CURVE handshake` };
  }
}

/** The server (ROUTER) side: holds the pipeline's key pair. */
export class CurveServer {
  readonly #publicKey: Uint8Array;
  readonly #secretKey: Uint8Array;
  readonly #metadata: Uint8Array;
  readonly #cookieKey = nacl.randomBytes(32);
  #clientTransient: Uint8Array | undefined;
  #transient: nacl.BoxKeyPair | undefined;
  #counter = 0n;
  cipher: CurveCipher | undefined;

  constructor(keys: { publicKey: Uint8Array; secretKey: Uint8Array }, metadata: Record<string, Uint8Array>) {
    this.#publicKey = keys.publicKey;
    this.#secretKey = keys.secretKey;
    this.#metadata = encodeProperties(metadata);
  }

  /** Handles HELLO (answering WELCOME) and INITIATE (answering READY: done). */
  receive(name: string, data: Uint8Array): CurveStep {
    if (name === 'HELLO' && this.#transient === undefined) {
      if (data.length !== 2 + 72 + 32 + 8 + 80) return { send: [], error: 'malformed CURVE HELLO' };
      const clientTransient = data.subarray(74, 106);
      const opened = nacl.box.open(
        data.subarray(114),
        nonce(HELLO_NONCE, data.subarray(106, 114)),
        clientTransient,
        this.#secretKey,
      );
      if (opened === null) {
        return { send: [], error: "the client's HELLO did not decrypt: it does not know this side's public key" };
      }
      this.#clientTransient = new Uint8Array(clientTransient);
      this.#transient = nacl.box.keyPair();
      const cookieNonce = nacl.randomBytes(16);
      const cookie = concat([
        cookieNonce,
        nacl.secretbox(
          concat([this.#clientTransient, this.#transient.secretKey]),
          nonce(COOKIE_NONCE, cookieNonce),
          this.#cookieKey,
        ),
      ]);
      const welcomeNonce = nacl.randomBytes(16);
      const box = nacl.box(
        concat([this.#transient.publicKey, cookie]),
        nonce(WELCOME_NONCE, welcomeNonce),
        this.#clientTransient,
        this.#secretKey,
      );
      return { send: [concat([commandBody('WELCOME'), welcomeNonce, box])] };
    }
    if (name === 'INITIATE' && this.#transient !== undefined && this.#clientTransient !== undefined) {
      if (data.length < 96 + 8 + 16 + 32 + 16 + 80) return { send: [], error: 'malformed CURVE INITIATE' };
      const cookie = nacl.secretbox.open(
        data.subarray(16, 96),
        nonce(COOKIE_NONCE, data.subarray(0, 16)),
        this.#cookieKey,
      );
      if (cookie === null || !equal(cookie.subarray(0, 32), this.#clientTransient)) {
        return { send: [], error: 'the CURVE INITIATE carried a cookie this side did not make' };
      }
      const key = nacl.box.before(this.#clientTransient, this.#transient.secretKey);
      const opened = nacl.box.open.after(data.subarray(104), nonce(INITIATE_NONCE, data.subarray(96, 104)), key);
      if (opened === null) return { send: [], error: 'the CURVE INITIATE did not decrypt' };
      const clientKey = opened.subarray(0, 32);
      const vouch = nacl.box.open(
        opened.subarray(48, 128),
        nonce(VOUCH_NONCE, opened.subarray(32, 48)),
        clientKey,
        this.#transient.secretKey,
      );
      if (
        vouch === null ||
        !equal(vouch.subarray(0, 32), this.#clientTransient) ||
        !equal(vouch.subarray(32, 64), this.#publicKey)
      ) {
        return { send: [], error: "the client's vouch does not match its keys" };
      }
      const metadata = parseProperties(opened.subarray(128));
      if (metadata === undefined) return { send: [], error: 'malformed metadata in CURVE INITIATE' };
      this.#counter += 1n;
      const short = shortNonce(this.#counter);
      const box = nacl.box.after(this.#metadata, nonce(READY_NONCE, short), key);
      this.cipher = new CurveCipher(key, true, this.#counter);
      return { send: [concat([commandBody('READY'), short, box])], done: metadata };
    }
    return { send: [], error: `unexpected ${name} command during the CURVE handshake` };
  }
}

/** The reason of an ERROR command. */
export function errorReason(data: Uint8Array): string {
  const length = data[0] ?? 0;
  return new TextDecoder().decode(data.subarray(1, 1 + length)) || 'no reason given';
}
