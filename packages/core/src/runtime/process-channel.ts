/**
 * The control channel of an actor in another OS process, for code that carries it further than
 * this package does: `@improv/transport-zmq/agent` runs one per actor between a Nexus and the
 * `improv agent` of another host, over any {@link ByteStream}. Framing is `u32le length` + msgpack;
 * `SharedArrayBuffer`s in messages are mirrored (each side sends the 32-bit words it changed), so a
 * buffer that passes through two channels (Nexus → agent → actor process) stays alike on all three.
 * @module
 */
export { type ByteStream, EXT_SHARED, MIRROR_EVERY_MS, ProcessChannel } from './_node-process-channel.ts';
export { createWorkerEvents, type WorkerEvents } from './_worker-events.ts';
