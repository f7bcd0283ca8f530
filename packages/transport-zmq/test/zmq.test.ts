import { detectRuntime } from '@improv/core';
import { describeTransportConformance } from '@improv/core/testing';
import { describe } from 'vitest';
import { createZmqTransport } from '../src/index.ts';

// The adapter of the runtime this file runs in: the suite runs on Node, Bun and Deno.
const runtime = await detectRuntime();

describe('ipc', () => {
  describeTransportConformance({ name: 'zmq', createTransport: () => createZmqTransport(), runtime });
});

describe('tcp', () => {
  describeTransportConformance({
    name: 'zmq',
    createTransport: () => createZmqTransport({ protocol: 'tcp' }),
    runtime,
  });
});

// libzmq itself through zeromq.js, which serves Node only (it aborts Bun, and never receives in a Deno worker).
('Bun' in globalThis || 'Deno' in globalThis ? describe.skip : describe)(
  'sockets: zeromq (zeromq.js, libzmq), tcp',
  () => {
    describeTransportConformance({
      name: 'zmq',
      createTransport: () => createZmqTransport({ protocol: 'tcp', sockets: 'zeromq' }),
      runtime,
    });
  },
);
