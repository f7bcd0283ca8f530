/**
 * One ZMTP 3.1 connection over a stream socket (TCP or a unix socket): the greeting, the NULL or
 * CURVE handshake with the socket types' metadata, then multipart messages both ways. Writes made
 * in one turn of the event loop go out together.
 * @module
 */
import type { Socket } from 'node:net';
import { type CurveCipher, CurveClient, CurveServer, errorReason } from './curve.ts';
import {
  commandBody,
  concat,
  encodeProperties,
  FLAG_COMMAND,
  FLAG_MORE,
  frameHeader,
  GREETING_BYTES,
  greeting,
  parseCommand,
  parseGreeting,
  parseProperties,
  readFrame,
} from './frames.ts';
import { ChunkReader } from './reader.ts';

const ascii = new TextEncoder();
const text = new TextDecoder();

/** The keys of a CURVE connection, as 32-byte keys. */
export interface CurveKeys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  /** The server's public key (clients only). */
  serverKey?: Uint8Array;
}

export interface ConnectionOptions {
  socketType: 'ROUTER' | 'DEALER';
  /** The routing id a DEALER sends as its `Identity`. */
  identity?: Uint8Array;
  curve?: CurveKeys;
  /** Largest frame taken from the peer. */
  maxFrameBytes: number;
  /** The handshake passed; `identity` is the peer's `Identity` (empty when it sent none). */
  onReady(identity: Uint8Array): void;
  onMessage(frames: Uint8Array[]): void;
  /** The connection ended; `handshake` says why when it never got through the handshake. */
  onClose(handshake: string | undefined): void;
}

/** Frames this large or larger are written as they are, not copied into a batch. */
const COPY_LIMIT = 16 * 1024;

export class ZmtpConnection {
  readonly #socket: Socket;
  readonly #options: ConnectionOptions;
  readonly #reader = new ChunkReader();
  #state: 'greeting' | 'handshake' | 'ready' | 'closed' = 'greeting';
  #client: CurveClient | undefined;
  #server: CurveServer | undefined;
  #cipher: CurveCipher | undefined;
  #parts: Uint8Array[] = [];
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  #flushScheduled = false;
  #failure: string | undefined;

  constructor(socket: Socket, options: ConnectionOptions) {
    this.#socket = socket;
    this.#options = options;
    socket.setNoDelay(true);
    const curve = options.curve;
    const server = options.socketType === 'ROUTER';
    this.#writeRaw(greeting(curve ? 'CURVE' : 'NULL', curve !== undefined && server));
    socket.on('data', (chunk: Uint8Array) => {
      this.#reader.push(chunk);
      this.#parse();
    });
    socket.on('error', (error) => {
      this.#failure ??= this.#state === 'ready' ? undefined : error.message;
    });
    socket.on('close', () => this.#closed());
  }

  get ready(): boolean {
    return this.#state === 'ready';
  }

  /** Queues one multipart message (after the handshake). */
  send(frames: Uint8Array[]): void {
    if (this.#state !== 'ready') return;
    const last = frames.length - 1;
    frames.forEach((frame, index) => {
      const more = index < last;
      if (this.#cipher) {
        const body = this.#cipher.encrypt(frame, more);
        this.#queue(frameHeader(body.length, 0), body);
      } else this.#queue(frameHeader(frame.length, more ? FLAG_MORE : 0), frame);
    });
  }

  /** Ends the connection at once; what was not written is dropped. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#socket.destroy();
  }

  #queue(header: Uint8Array, body: Uint8Array): void {
    if (body.length >= COPY_LIMIT) {
      this.#pending.push(header, body);
    } else {
      const framed = new Uint8Array(header.length + body.length);
      framed.set(header, 0);
      framed.set(body, header.length);
      this.#pending.push(framed);
    }
    this.#pendingBytes += header.length + body.length;
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const pending = this.#pending;
    const bytes = this.#pendingBytes;
    this.#pending = [];
    this.#pendingBytes = 0;
    if (this.#state === 'closed' || pending.length === 0) return;
    if (pending.length === 1) this.#writeRaw(pending[0] as Uint8Array);
    else if (bytes <= 4 * COPY_LIMIT || pending.every((part) => part.length < COPY_LIMIT)) {
      this.#writeRaw(concat(pending));
    } else {
      this.#socket.cork();
      for (const part of pending) this.#writeRaw(part);
      this.#socket.uncork();
    }
  }

  #writeRaw(bytes: Uint8Array): void {
    if (!this.#socket.destroyed) this.#socket.write(bytes);
  }

  #sendCommand(body: Uint8Array): void {
    this.#writeRaw(concat([frameHeader(body.length, FLAG_COMMAND), body]));
  }

  #fail(reason: string, tellPeer: boolean): void {
    if (this.#state === 'closed') return;
    this.#failure ??= reason;
    if (tellPeer && this.#state !== 'ready') {
      const why = ascii.encode(reason.slice(0, 255));
      this.#sendCommand(commandBody('ERROR', concat([Uint8Array.of(why.length), why])));
      this.#socket.end();
      setTimeout(() => this.#socket.destroy(), 100);
    } else this.#socket.destroy();
    this.#state = 'closed';
    this.#reader.read(this.#reader.available);
    this.#options.onClose(this.#failure);
  }

  #closed(): void {
    if (this.#state === 'closed') return;
    const handshake =
      this.#state === 'ready' ? undefined : (this.#failure ?? 'the peer closed the connection during the handshake');
    this.#state = 'closed';
    this.#options.onClose(handshake);
  }

  #parse(): void {
    if (this.#state === 'greeting') {
      if (this.#reader.available < GREETING_BYTES) return;
      const peer = parseGreeting(this.#reader.read(GREETING_BYTES));
      if ('error' in peer) {
        this.#fail(peer.error, false);
        return;
      }
      const ours = this.#options.curve ? 'CURVE' : 'NULL';
      if (peer.mechanism !== ours) {
        this.#fail(`the peer uses the ${peer.mechanism} security mechanism, this side ${ours}`, true);
        return;
      }
      this.#state = 'handshake';
      this.#startHandshake();
    }
    while (this.#state === 'handshake' || this.#state === 'ready') {
      const frame = readFrame(this.#reader, this.#options.maxFrameBytes + 64);
      if (frame === undefined) return;
      if ('error' in frame) {
        this.#fail(frame.error, false);
        return;
      }
      if (this.#state === 'handshake') {
        if ((frame.flags & FLAG_COMMAND) === 0) {
          this.#fail('a message came before the handshake ended', true);
          return;
        }
        this.#handshake(frame.body);
      } else if ((frame.flags & FLAG_COMMAND) !== 0) this.#command(frame.body);
      else this.#message(frame.body, (frame.flags & FLAG_MORE) !== 0);
    }
  }

  #metadata(): Record<string, Uint8Array> {
    const properties: Record<string, Uint8Array> = { 'Socket-Type': ascii.encode(this.#options.socketType) };
    if (this.#options.identity) properties.Identity = this.#options.identity;
    return properties;
  }

  #startHandshake(): void {
    const curve = this.#options.curve;
    if (curve === undefined) {
      this.#sendCommand(commandBody('READY', encodeProperties(this.#metadata())));
      return;
    }
    if (this.#options.socketType === 'ROUTER') {
      this.#server = new CurveServer(curve, this.#metadata());
    } else {
      this.#client = new CurveClient({ ...curve, serverKey: curve.serverKey as Uint8Array }, this.#metadata());
      this.#sendCommand(this.#client.hello());
    }
  }

  #handshake(body: Uint8Array): void {
    const command = parseCommand(body);
    if (command === undefined) {
      this.#fail('a malformed command during the handshake', true);
      return;
    }
    if (command.name === 'ERROR') {
      this.#fail(`the peer refused: ${errorReason(command.data)}`, false);
      return;
    }
    if (this.#options.curve === undefined) {
      if (command.name !== 'READY') {
        this.#fail(`unexpected ${command.name} during the handshake`, true);
        return;
      }
      const metadata = parseProperties(command.data);
      if (metadata === undefined) {
        this.#fail('malformed metadata in READY', true);
        return;
      }
      this.#ready(metadata);
      return;
    }
    const mechanism = this.#server ?? this.#client;
    const step = mechanism?.receive(command.name, command.data);
    if (step === undefined) return;
    for (const reply of step.send) this.#sendCommand(reply);
    if (step.error !== undefined) {
      this.#fail(step.error, this.#server !== undefined);
      return;
    }
    if (step.done) {
      this.#cipher = mechanism?.cipher;
      this.#ready(step.done);
    }
  }

  #ready(metadata: Map<string, Uint8Array>): void {
    const type = text.decode(metadata.get('socket-type') ?? new Uint8Array(0));
    const wanted = this.#options.socketType === 'ROUTER' ? 'DEALER' : 'ROUTER';
    const fits = this.#options.socketType === 'ROUTER' ? ['DEALER', 'REQ', 'ROUTER'] : ['ROUTER', 'REP', 'DEALER'];
    if (!fits.includes(type)) {
      this.#fail(
        `the peer is a ${type || 'socket of no type'}; a ${this.#options.socketType} talks to a ${wanted}`,
        true,
      );
      return;
    }
    this.#state = 'ready';
    this.#options.onReady(new Uint8Array(metadata.get('identity') ?? new Uint8Array(0)));
  }

  #command(body: Uint8Array): void {
    const command = parseCommand(body);
    if (command?.name === 'PING') {
      // PONG carries the PING's context back (after its 2-byte TTL).
      this.#sendCommand(commandBody('PONG', command.data.subarray(2)));
    } else if (command?.name === 'MESSAGE' && this.#cipher) {
      this.#encrypted(body);
    } else if (command?.name === 'ERROR') {
      this.#fail(`the peer ended the connection: ${errorReason(command.data)}`, false);
    }
  }

  #encrypted(body: Uint8Array): void {
    const opened = this.#cipher?.decrypt(body);
    if (opened === undefined) return;
    if ('error' in opened) {
      this.#fail(opened.error, false);
      return;
    }
    this.#collect(opened.data, opened.more);
  }

  #message(body: Uint8Array, more: boolean): void {
    if (this.#cipher) {
      // CURVE messages arrive as MESSAGE commands (ZMTP 3.1 sends them with or without the command flag).
      this.#encrypted(body);
      return;
    }
    this.#collect(body, more);
  }

  #collect(data: Uint8Array, more: boolean): void {
    this.#parts.push(data);
    if (more) return;
    const frames = this.#parts;
    this.#parts = [];
    this.#options.onMessage(frames);
  }
}
