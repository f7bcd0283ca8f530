/**
 * ZMTP 3.1 frame and command codecs (RFC 23): the frame flags, command bodies (a length-prefixed
 * name, then data), the metadata properties READY and INITIATE carry, and the ERROR and PING
 * commands. The streaming parts — reading frames off a socket and writing them in batches — are in
 * `decoder.ts` and `writer.ts`.
 * @module
 */

/** Frame flag: more frames of this message follow. */
export const FLAG_MORE = 0x01;
/** Frame flag: the size is 8 bytes (network order), not 1. */
export const FLAG_LONG = 0x02;
/** Frame flag: the frame is a command, not message data. */
export const FLAG_COMMAND = 0x04;

/** The largest frame size a short (1-byte size) header can hold. */
export const SHORT_FRAME_MAX = 255;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A command's body: the name's length, the name, then `data`. */
export function encodeCommand(name: string, data?: Uint8Array): Uint8Array {
  const nameBytes = encoder.encode(name);
  const body = new Uint8Array(1 + nameBytes.length + (data?.length ?? 0));
  body[0] = nameBytes.length;
  body.set(nameBytes, 1);
  if (data !== undefined) body.set(data, 1 + nameBytes.length);
  return body;
}

/** A parsed command: its name and the bytes after it (a view of the body). */
export interface Command {
  name: string;
  data: Uint8Array;
}

/** The name and data of a command body, or undefined when the body is too short for its name. */
export function parseCommand(body: Uint8Array): Command | undefined {
  const length = body[0];
  if (length === undefined || length === 0 || body.length < 1 + length) return undefined;
  return { name: decoder.decode(body.subarray(1, 1 + length)), data: body.subarray(1 + length) };
}

/** Whether `body` is the command `name` (`name` given with its length byte, e.g. `\x07MESSAGE`). */
export function isCommand(body: Uint8Array, prefixed: Uint8Array): boolean {
  if (body.length < prefixed.length) return false;
  for (let index = 0; index < prefixed.length; index++) if (body[index] !== prefixed[index]) return false;
  return true;
}

/** Metadata properties: each a 1-byte name length, the name, a 4-byte value length, the value. */
export function encodeProperties(properties: ReadonlyArray<readonly [string, Uint8Array]>): Uint8Array {
  let length = 0;
  const names = properties.map(([name]) => encoder.encode(name));
  for (let index = 0; index < properties.length; index++) {
    length += 1 + names[index]!.length + 4 + properties[index]![1].length;
  }
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  let at = 0;
  for (let index = 0; index < properties.length; index++) {
    const name = names[index]!;
    const value = properties[index]![1];
    out[at] = name.length;
    out.set(name, at + 1);
    view.setUint32(at + 1 + name.length, value.length);
    out.set(value, at + 5 + name.length);
    at += 5 + name.length + value.length;
  }
  return out;
}

/** Metadata properties by lower-cased name (names are case-insensitive), or undefined when malformed. */
export function parseProperties(data: Uint8Array): Map<string, Uint8Array> | undefined {
  const properties = new Map<string, Uint8Array>();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at < data.length) {
    const nameLength = data[at]!;
    if (nameLength === 0 || at + 1 + nameLength + 4 > data.length) return undefined;
    const name = decoder.decode(data.subarray(at + 1, at + 1 + nameLength)).toLowerCase();
    const valueLength = view.getUint32(at + 1 + nameLength);
    const start = at + 5 + nameLength;
    if (start + valueLength > data.length) return undefined;
    properties.set(name, data.subarray(start, start + valueLength));
    at = start + valueLength;
  }
  return properties;
}

/** The metadata a socket of `socketType` announces: its type and, for routing, its `Identity`. */
export function socketMetadata(socketType: string, identity: Uint8Array): Uint8Array {
  return encodeProperties([
    ['Socket-Type', encoder.encode(socketType)],
    ['Identity', identity],
  ]);
}

/** An ERROR command: the reason as a 1-byte length and at most 255 bytes of text. */
export function encodeError(reason: string): Uint8Array {
  const text = encoder.encode(reason).subarray(0, 255);
  const data = new Uint8Array(1 + text.length);
  data[0] = text.length;
  data.set(text, 1);
  return encodeCommand('ERROR', data);
}

/** The reason an ERROR command's data gives. */
export function errorReason(data: Uint8Array): string {
  const length = data[0] ?? 0;
  return decoder.decode(data.subarray(1, 1 + length)) || 'no reason given';
}

/** The PONG answering a PING's data (a 2-byte TTL, then up to 16 bytes of context to echo). */
export function pongFor(pingData: Uint8Array): Uint8Array {
  return encodeCommand('PONG', pingData.subarray(2, 18));
}

/** The socket types a peer of `ours` may be (RFC 28 and libzmq's compatibility table). */
export function compatibleTypes(ours: 'ROUTER' | 'DEALER'): readonly string[] {
  return ours === 'ROUTER' ? ['DEALER', 'REQ', 'ROUTER'] : ['ROUTER', 'REP', 'DEALER'];
}

/** Bytes → text for messages and keys (UTF-8, invalid bytes replaced). */
export function bytesToText(bytes: Uint8Array): string {
  return decoder.decode(bytes);
}

/** Text → UTF-8 bytes. */
export function textToBytes(text: string): Uint8Array {
  return encoder.encode(text);
}
