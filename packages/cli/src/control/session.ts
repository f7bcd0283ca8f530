/**
 * A run's control plane, as `improv run` and `improv server` start it: a token (written readable by
 * this user only, in the run folder or beside the registry entry), the control server, and the
 * registry entry that `improv list` reads — all removed again when the pipeline has quit.
 * @module
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { currentRuntimeName, type Nexus } from '@improv/core';
import { ownManifest } from '../own-package.ts';
import type { LogHistory } from './log-history.ts';
import type { RunInfo } from './protocol.ts';
import { newRunId, newToken, register, registryDir, unregister, writeToken } from './registry.ts';
import { type ControlServer, startControlServer } from './server.ts';

/** Options of {@link startControlSession}. */
export interface ControlSessionOptions {
  /** The pipeline file as given. */
  pipeline: string;
  /** Address to bind (default 127.0.0.1; another address must be asked for with --bind). */
  bind?: string;
  /** Port (default: a free one). */
  port?: number;
}

/** A run's control server with its token and registry entry. */
export interface ControlSession {
  readonly info: RunInfo;
  readonly token: string;
  /** Stops the server and removes the token file and the registry entry (done by itself once the pipeline has quit). */
  close(): Promise<void>;
}

export async function startControlSession(
  nexus: Nexus,
  logs: LogHistory,
  options: ControlSessionOptions,
): Promise<ControlSession> {
  const id = newRunId(options.pipeline);
  const token = newToken();
  const tokenFile =
    nexus.runDir !== undefined ? path.join(nexus.runDir, 'control.token') : path.join(registryDir(), `${id}.token`);
  writeToken(tokenFile, token);
  let version = 'unknown';
  try {
    version = String(ownManifest().version ?? 'unknown');
  } catch {
    // a package.json that cannot be read says nothing about the run
  }
  const base: Omit<RunInfo, 'url'> = {
    id,
    pipeline: path.resolve(options.pipeline),
    pid: process.pid,
    tokenFile,
    startedAt: Date.now(),
    runtime: currentRuntimeName(),
    version,
  };
  if (nexus.runDir !== undefined) base.runDir = nexus.runDir;
  const serverOptions: Parameters<typeof startControlServer>[0] = { nexus, logs, info: base, token };
  if (options.bind !== undefined) serverOptions.host = options.bind;
  if (options.port !== undefined) serverOptions.port = options.port;
  let server: ControlServer;
  try {
    server = await startControlServer(serverOptions);
  } catch (error) {
    rmSync(tokenFile, { force: true });
    throw error;
  }
  register(server.info);
  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      unregister(id);
      rmSync(tokenFile, { force: true });
      await server.close();
    })();
    return closing;
  };
  // The pipeline has quit: clients are told, and the run leaves the registry.
  void nexus.closed.then(close);
  return { info: server.info, token, close };
}
