// Actors in OS processes of their own: the whole pipeline conformance suite again, with every actor
// in its own process (method: process) on the runtime this file runs in, the store in LMDB (which
// every process of the host reaches) and every link between processes over zmq ipc, picked by
// placement. Runs on Node, Bun and Deno alike.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentRuntimeName, detectRuntime } from '@improv/core';
import { describePipelineConformance } from '@improv/core/testing';
import { createLmdbStore } from '@improv/store/lmdb';
import { createLocalTransport } from '@improv/transport-local';
import { createZmqTransport } from '@improv/transport-zmq';
import { afterAll } from 'vitest';

const folder = mkdtempSync(join(tmpdir(), 'improv-process-actors-'));
let runs = 0;
afterAll(() => rmSync(folder, { recursive: true, force: true }));

describePipelineConformance({
  name: `${currentRuntimeName()}: every actor in its own process + lmdb store + zmq ipc links`,
  runtime: await detectRuntime(),
  createStore: () => createLmdbStore({ path: join(folder, `run-${++runs}`) }),
  createTransport: () => [createLocalTransport(), createZmqTransport()],
  actorKeys: { method: 'process' },
  drainsAtQuit: false,
});
