/**
 * ZMTP 3.1 framing (RFC 23): the 64-byte greeting, frames (short and long), commands and their
 * metadata properties.
 * @module
 */
import type { ChunkReader } from './reader.ts';

export const GREETING_BYTES = 64;
export const FLAG_MORE = 0x01;
export const FLAG_LONG = 0x02;
export const FLAG_COMMAND = 0x04;

const ascii = new TextEncoder();
const text = new TextDecoder();

/** Our greeting: signature, version 3.1, the mechanism's name, and whether we are its server. */
export function greeting(mechanism: 'NULL' | 'CURVE', asServer: boolean): Uint8Array {
  const bytes = new Uint8Array(GREETING_BYTES);
  bytes[0] = 0xff;
  bytes[9] = 0x7f;
  bytes[10] = 3;
  bytes[11] = 1;
  bytes.set(ascii.encode(mechanism), 12);
  bytes[32] = asServer ? 1 : 0;
  return bytes;
}

/** The peer's greeting: its mechanism, or why it is no ZMTP 3 peer. */
export function parseGreeting(bytes: Uint8Array): { mechanism: string; asServer: boolean } | { error: string } {
  if (bytes[0] !== 0xff || ((bytes[9] as number) & 1) !== 1) return { error: 'not a ZeroMQ peer (bad signature)' };
  if ((bytes[10] as number) < 3)
    return { error: `the peer speaks ZMTP ${bytes[10]}.${bytes[11]}; 3.0 or later is needed` };
  const name = text.decode(bytes.subarray(12, 32)).replace(/\0+$/, '');
  return { mechanism: name, asServer: bytes[32] === 1 };
}

/** One frame read off the wire. */
export interface Frame {
  flags: number;
  body: Uint8Array;
}

/** The next whole frame in `reader`, or undefined until more bytes arrive. */
export function readFrame(reader: ChunkReader, maxBytes: number): Frame | undefined | { error: string } {
  if (reader.available < 2) return undefined;
  const flags = reader.peek(0);
  let size: number;
  let header: number;
  if ((flags & FLAG_LONG) !== 0) {
    if (reader.available < 9) return undefined;
    let value = 0;
    for (let index = 1; index <= 8; index++) value = value * 256 + reader.peek(index);
    size = value;
    header = 9;
  } else {
    size = reader.peek(1);
    header = 2;
  }
  if (size > maxBytes) return { error: `a frame of ${size} bytes is more than the ${maxBytes} this link takes` };
  if (reader.available < header + size) return undefined;
  reader.read(header);
  return { flags, body: size === 0 ? new Uint8Array(0) : reader.read(size) };
}

/** The header of a frame of `size` bytes with `flags` (MORE, COMMAND). */
export function frameHeader(size: number, flags: number): Uint8Array {
  if (size <= 255) return Uint8Array.of(flags, size);
  const header = new Uint8Array(9);
  header[0] = flags | FLAG_LONG;
  new DataView(header.buffer).setBigUint64(1, BigInt(size));
  return header;
}

/** A command's body: its name (length-prefixed) then `data`. */
export function commandBody(name: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const nameBytes = ascii.encode(name);
  const body = new Uint8Array(1 + nameBytes.length + data.length);
  body[0] = nameBytes.length;
  body.set(nameBytes, 1);
  body.set(data, 1 + nameBytes.length);
  return body;
}

/** A command's name and data, or undefined when the body is malformed. */
export function parseCommand(body: Uint8Array): { name: string; data: Uint8Array } | undefined {
  const length = body[0];
  if (length === undefined || body.length < 1 + length) return undefined;
  return { name: text.decode(body.subarray(1, 1 + length)), data: body.subarray(1 + length) };
}

/** Metadata properties (`Socket-Type`, `Identity`), as READY and INITIATE carry them. */
export function encodeProperties(properties: Record<string, Uint8Array>): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [name, value] of Object.entries(properties)) {
    const nameBytes = ascii.encode(name);
    const head = new Uint8Array(1 + nameBytes.length + 4);
    head[0] = nameBytes.length;
    head.set(nameBytes, 1);
    new DataView(head.buffer).setUint32(1 + nameBytes.length, value.length);
    parts.push(head, value);
  }
  return concat(parts);
}

export function parseProperties(data: Uint8Array): Map<string, Uint8Array> | undefined {
  const properties = new Map<string, Uint8Array>();
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at < data.length) {
    const nameLength = data[at] as number;
    if (at + 1 + nameLength + 4 > data.length) return undefined;
    const name = text.decode(data.subarray(at + 1, at + 1 + nameLength)).toLowerCase();
    const valueLength = view.getUint32(at + 1 + nameLength);
    const start = at + 1 + nameLength + 4;
    if (start + valueLength > data.length) return undefined;
    properties.set(name, data.subarray(start, start + valueLength));
    at = start + valueLength;
  }
  return properties;
}

export function concat(parts: Uint8Array[]): Uint8Array {
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
