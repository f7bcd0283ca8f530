/**
 * One ZMTP 3.1 connection over a connected stream socket (TCP or a unix socket): the greeting, the
 * NULL or CURVE handshake with the socket types' metadata, then multipart messages both ways, with
 * PING answered by PONG. A failed handshake tells the peer why (an ERROR command) where that helps,
 * and reports the reason once; `close()` drops whatever was not written yet (linger 0).
 * @module
 */
import type { Socket } from 'node:net';
import { clearTimeout, setTimeout } from 'node:timers';
import type { HandshakeStage } from '../_socket.ts';
import {
  CURVE_COMMAND,
  CURVE_MORE,
  type CurveCipher,
  CurveClient,
  type CurveClientKeys,
  CurveServer,
  type CurveServerKeys,
  MESSAGE_PREFIX,
} from './curve.ts';
import { FrameDecoder } from './decoder.ts';
import {
  bytesToText,
  compatibleTypes,
  encodeCommand,
  encodeError,
  errorReason,
  FLAG_COMMAND,
  FLAG_MORE,
  isCommand,
  parseCommand,
  parseProperties,
  pongFor,
  socketMetadata,
} from './frames.ts';
import { encodeGreeting, parseGreeting } from './greeting.ts';
import { FrameWriter } from './writer.ts';

/** Which side of CURVE a connection plays, with its keys; absent: NULL. */
export type CurveRole = ({ server: true } & CurveServerKeys) | ({ server: false } & CurveClientKeys);

/** How a connection behaves. */
export interface ConnectionOptions {
  socketType: 'ROUTER' | 'DEALER';
  /** Our routing id, sent as the `Identity` property (empty for a ROUTER). */
  identity: Uint8Array;
  curve?: CurveRole;
  /** A handshake not done within this time fails (libzmq's ZMQ_HANDSHAKE_IVL). */
  handshakeTimeoutMs: number;
  /** The largest frame taken from the peer. */
  maxFrameBytes: number;
}

/** The limits every connection of a socket shares. */
export type Limits = Pick<ConnectionOptions, 'handshakeTimeoutMs' | 'maxFrameBytes'>;

/** Why a handshake failed, and how far it got. */
export interface HandshakeFailure {
  reason: string;
  stage: HandshakeStage;
}

/** What a connection reports to its socket. */
export interface ConnectionHandlers {
  /**
   * The handshake passed; `identity` is the peer's `Identity` property (empty when it sent none).
   * The returned frame, if any, is put first in every message from this peer (a ROUTER's routing id).
   */
  ready(identity: Uint8Array): Uint8Array | undefined;
  /** One whole multipart message. */
  message(frames: Uint8Array[]): void;
  /**
   * The connection ended (reported once, also after `close()`): `failure` is undefined when its
   * handshake had passed, else why and where it failed.
   */
  closed(failure: HandshakeFailure | undefined): void;
}

type State = 'greeting' | 'handshake' | 'ready' | 'closed';

/** The largest frame taken before the handshake is done (its commands are a few hundred bytes). */
const HANDSHAKE_FRAME_BYTES = 64 * 1024;
/** Delay before a connection that sent ERROR is torn down if the peer does not close it first. */
const ERROR_LINGER_MS = 1000;

/**
 * A peer that sends its last messages and closes with our credit still unread in its buffer resets
 * the connection; our next write then fails (EPIPE, ECONNRESET), and node:net destroys the socket at
 * once — dropping the peer's last messages, still unread in the kernel. libzmq goes on reading to the
 * end; so does this: a write error only stops writing (`stopWriting`), and the socket is destroyed
 * when reading ends: the peer's end of stream, a read error, or {@link ERROR_LINGER_MS} without any
 * data. Errors node:net does not mark as a write's (`syscall`) are handled as before.
 */
function keepReadingAfterWriteErrors(socket: Socket, stopWriting: () => void): void {
  const destroy = socket.destroy.bind(socket);
  let writesFailed = false;
  socket.destroy = (error?: Error) => {
    const syscall = (error as NodeJS.ErrnoException | undefined)?.syscall;
    if (!writesFailed && (syscall === 'write' || syscall === 'writev') && !socket.readableEnded) {
      writesFailed = true;
      stopWriting();
      socket.once('end', () => destroy());
      // A peer that reset the connection has nothing more on its way, but what it sent may still be
      // unread in the kernel: the socket ends once nothing has come for ERROR_LINGER_MS, judged after
      // a poll phase (setImmediate). A fixed deadline lost a peer's last messages on a loaded machine:
      // an event loop blocked past it runs its timers before it reads the socket again.
      let lastData = performance.now();
      socket.on('data', () => {
        lastData = performance.now();
      });
      const check = () =>
        setImmediate(() => {
          if (socket.destroyed) return;
          const quiet = performance.now() - lastData;
          if (quiet >= ERROR_LINGER_MS) destroy();
          else setTimeout(check, ERROR_LINGER_MS - quiet).unref();
        });
      setTimeout(check, ERROR_LINGER_MS).unref();
      return socket;
    }
    return destroy(error);
  };
}
const PING = new Uint8Array([4, 0x50, 0x49, 0x4e, 0x47]);
const ERROR = new Uint8Array([5, 0x45, 0x52, 0x52, 0x4f, 0x52]);

/** One ZMTP connection. */
export class ZmtpConnection {
  readonly #socket: Socket;
  readonly #options: ConnectionOptions;
  readonly #handlers: ConnectionHandlers;
  readonly #writer: FrameWriter;
  readonly #decoder: FrameDecoder;
  #state: State = 'greeting';
  #client: CurveClient | undefined;
  #server: CurveServer | undefined;
  #cipher: CurveCipher | undefined;
  /** Frames of the message being received. */
  #parts: Uint8Array[] = [];
  /** Put first in every incoming message (a ROUTER's routing id of this peer). */
  #prefix: Uint8Array | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** Why the handshake failed, once known. */
  #failure: HandshakeFailure | undefined;
  #socketError: string | undefined;

  /** Starts the greeting on `socket`, which must be connected. */
  constructor(socket: Socket, options: ConnectionOptions, handlers: ConnectionHandlers) {
    this.#socket = socket;
    this.#options = options;
    this.#handlers = handlers;
    this.#writer = new FrameWriter(socket);
    this.#decoder = new FrameDecoder(
      {
        greeting: (bytes) => this.#greeting(bytes),
        frame: (flags, body) => this.#frame(flags, body),
        error: (reason) => this.#fail(reason, false, this.#state === 'greeting' ? 'greeting' : 'refused'),
      },
      Math.min(HANDSHAKE_FRAME_BYTES, options.maxFrameBytes),
    );
    socket.setNoDelay(true);
    keepReadingAfterWriteErrors(socket, () => this.#writer.close());
    // As a plain Uint8Array: frames are views of the chunk, and a Buffer's subarray() is a slower,
    // species-built Buffer; a `bin` value decoded from a message is then a Uint8Array, as on a local link.
    socket.on('data', (chunk: Uint8Array) =>
      this.#decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)),
    );
    socket.on('error', (error: Error) => {
      this.#socketError ??= error.message;
    });
    socket.on('close', () => this.#closed());
    this.#timer = setTimeout(
      () =>
        this.#fail(
          `no ZMTP handshake within ${options.handshakeTimeoutMs} ms`,
          false,
          this.#state === 'greeting' ? 'greeting' : 'cut',
        ),
      options.handshakeTimeoutMs,
    );
    const curve = options.curve;
    this.#writer.raw(encodeGreeting(curve ? 'CURVE' : 'NULL', curve?.server === true));
    this.#writer.flush();
  }

  /** Whether the handshake passed and the connection is open. */
  get ready(): boolean {
    return this.#state === 'ready';
  }

  /** Queues one multipart message, from `frames[from]` on (after the handshake; dropped otherwise). */
  send(frames: readonly Uint8Array[], from = 0): void {
    if (this.#state !== 'ready') return;
    const writer = this.#writer;
    const last = frames.length - 1;
    const cipher = this.#cipher;
    if (cipher === undefined) {
      for (let index = from; index < last; index++) writer.frame(FLAG_MORE, frames[index]!);
      if (last >= from) writer.frame(0, frames[last]!);
      return;
    }
    for (let index = from; index <= last; index++) {
      writer.frame(0, cipher.seal(index < last ? CURVE_MORE : 0, frames[index]!));
    }
  }

  /** Ends the connection at once; what was not written is dropped. Reports `closed` if not yet. */
  close(): void {
    if (this.#state === 'closed') return;
    this.#failure ??= { reason: 'this side closed the connection during the handshake', stage: 'cut' };
    this.#teardown();
    this.#socket.destroy();
  }

  #closed(): void {
    if (this.#state === 'closed') return;
    this.#failure ??=
      this.#state === 'greeting'
        ? {
            reason: `the peer closed the connection before its greeting${this.#socketError ? ` (${this.#socketError})` : ''}`,
            stage: 'greeting',
          }
        : {
            reason:
              this.#options.curve?.server === false
                ? 'the server closed the connection during the CURVE handshake: serverKey is likely not its public key (or it refused this client)'
                : `the peer closed the connection during the handshake${this.#socketError ? ` (${this.#socketError})` : ''}`,
            stage: 'cut',
          };
    this.#teardown();
  }

  /** Marks the connection closed, stops reading and writing, and reports it once. */
  #teardown(): void {
    const wasReady = this.#state === 'ready';
    this.#state = 'closed';
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#decoder.stop();
    this.#writer.close();
    this.#handlers.closed(wasReady ? undefined : (this.#failure ?? { reason: 'the handshake failed', stage: 'cut' }));
  }

  /**
   * Fails the connection; during the handshake, `tellPeer` sends an ERROR with the reason first.
   * `stage` says how far the handshake got (see `HandshakeStage`).
   */
  #fail(reason: string, tellPeer: boolean, stage: HandshakeStage): void {
    if (this.#state === 'closed') return;
    this.#failure ??= { reason, stage };
    if (tellPeer && this.#state === 'handshake' && !this.#socket.destroyed) {
      this.#writer.frame(FLAG_COMMAND, encodeError(reason));
      this.#writer.flush();
      const socket = this.#socket;
      this.#teardown();
      socket.end();
      setTimeout(() => socket.destroy(), ERROR_LINGER_MS).unref();
      return;
    }
    this.#teardown();
    this.#socket.destroy();
  }

  #greeting(bytes: Uint8Array): void {
    const peer = parseGreeting(bytes);
    if ('error' in peer) {
      this.#fail(peer.error, false, 'greeting');
      return;
    }
    const curve = this.#options.curve;
    const ours = curve ? 'CURVE' : 'NULL';
    this.#state = 'handshake';
    if (peer.mechanism !== ours) {
      const hint =
        ours === 'CURVE' ? 'give both ends CURVE keys, or neither' : 'the peer wants CURVE: give this side its keys';
      this.#fail(
        `the peer uses the ${peer.mechanism} security mechanism and this side ${ours}; ${hint}`,
        true,
        'greeting',
      );
      return;
    }
    const metadata = socketMetadata(this.#options.socketType, this.#options.identity);
    if (curve === undefined) this.#command(encodeCommand('READY', metadata));
    else if (curve.server) this.#server = new CurveServer(curve, metadata);
    else {
      this.#client = new CurveClient(curve, metadata);
      this.#command(this.#client.hello());
    }
  }

  /** Sends a command during the handshake, at once. */
  #command(body: Uint8Array): void {
    this.#writer.frame(FLAG_COMMAND, body);
    this.#writer.flush();
  }

  #frame(flags: number, body: Uint8Array): void {
    if (this.#state === 'ready') {
      if (this.#cipher !== undefined) this.#sealed(body);
      else if ((flags & FLAG_COMMAND) !== 0) this.#readyCommand(body, false);
      else this.#collect(body, (flags & FLAG_MORE) !== 0);
      return;
    }
    if ((flags & FLAG_COMMAND) === 0) {
      this.#fail('the peer sent a message before its handshake was done', true, 'refused');
      return;
    }
    const command = parseCommand(body);
    if (command === undefined) {
      this.#fail('the peer sent a malformed command during the handshake', true, 'refused');
      return;
    }
    if (command.name === 'ERROR') {
      this.#fail(`the peer refused the handshake: ${errorReason(command.data)}`, false, 'refused');
      return;
    }
    if (this.#server !== undefined) this.#serverStep(command.name, command.data);
    else if (this.#client !== undefined) this.#clientStep(command.name, command.data);
    else if (command.name === 'READY') this.#peerReady(command.data);
    else this.#fail(`the peer sent ${command.name} where READY was due`, true, 'refused');
  }

  #serverStep(name: string, data: Uint8Array): void {
    const server = this.#server!;
    if (name === 'HELLO') {
      const welcome = server.hello(data);
      if (welcome.ok) this.#command(welcome.value);
      else this.#fail(welcome.error, true, 'refused');
    } else if (name === 'INITIATE') {
      const done = server.initiate(data);
      if (!done.ok) {
        this.#fail(done.error, true, 'refused');
        return;
      }
      this.#command(done.value.ready);
      this.#server = undefined;
      this.#cipher = done.value.cipher;
      this.#ready(done.value.metadata);
    } else this.#fail(`the peer sent ${name} during the CURVE handshake`, true, 'refused');
  }

  #clientStep(name: string, data: Uint8Array): void {
    const client = this.#client!;
    if (name === 'WELCOME') {
      const initiate = client.welcome(data);
      if (initiate.ok) this.#command(initiate.value);
      else this.#fail(initiate.error, false, 'refused');
    } else if (name === 'READY') {
      const done = client.ready(data);
      if (!done.ok) {
        this.#fail(done.error, false, 'refused');
        return;
      }
      this.#client = undefined;
      this.#cipher = done.value.cipher;
      this.#ready(done.value.metadata);
    } else this.#fail(`the peer sent ${name} during the CURVE handshake`, true, 'refused');
  }

  #peerReady(data: Uint8Array): void {
    const metadata = parseProperties(data);
    if (metadata === undefined) this.#fail('the peer sent malformed metadata in READY', true, 'refused');
    else this.#ready(metadata);
  }

  /** Checks the peer's socket type, then the connection is ready. */
  #ready(metadata: Map<string, Uint8Array>): void {
    const ours = this.#options.socketType;
    const type = bytesToText(metadata.get('socket-type') ?? new Uint8Array(0));
    if (!compatibleTypes(ours).includes(type)) {
      this.#fail(
        `the peer is a ${type || 'socket of no type'} socket, which cannot talk to a ${ours}`,
        true,
        'refused',
      );
      return;
    }
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state = 'ready';
    this.#decoder.maxFrameBytes = this.#options.maxFrameBytes;
    const identity = metadata.get('identity');
    this.#prefix = this.#handlers.ready(identity === undefined ? new Uint8Array(0) : identity.slice());
    this.#parts = this.#prefix === undefined ? [] : [this.#prefix];
  }

  /**
   * A command after the handshake: PING is answered, ERROR ends the connection, the rest are
   * ignored. Under CURVE, `sealed` says it came boxed; an unboxed one other than ERROR is refused.
   */
  #readyCommand(body: Uint8Array, sealed: boolean): void {
    const cipher = this.#cipher;
    if (isCommand(body, ERROR)) {
      this.#fail(`the peer ended the connection: ${errorReason(body.subarray(ERROR.length))}`, false, 'refused');
    } else if (cipher !== undefined && !sealed) {
      this.#fail('the peer sent a command outside a CURVE MESSAGE', false, 'refused');
    } else if (isCommand(body, PING)) {
      const pong = pongFor(body.subarray(PING.length));
      if (cipher !== undefined) this.#writer.frame(0, cipher.seal(CURVE_COMMAND, pong));
      else this.#writer.frame(FLAG_COMMAND, pong);
    }
  }

  /** A CURVE MESSAGE (libzmq sends them without the command flag, others with it). */
  #sealed(body: Uint8Array): void {
    if (!isCommand(body, MESSAGE_PREFIX)) {
      this.#readyCommand(body, false);
      return;
    }
    const opened = this.#cipher!.open(body);
    if (!opened.ok) {
      this.#fail(opened.error, false, 'refused');
      return;
    }
    const { flags, data } = opened.value;
    if ((flags & CURVE_COMMAND) !== 0) this.#readyCommand(data, true);
    else this.#collect(data, (flags & CURVE_MORE) !== 0);
  }

  #collect(frame: Uint8Array, more: boolean): void {
    this.#parts.push(frame);
    if (more) return;
    const frames = this.#parts;
    this.#parts = this.#prefix === undefined ? [] : [this.#prefix];
    this.#handlers.message(frames);
  }
}
