/**
 * The control protocol of a running pipeline: what `improv run` / `improv server` serve over HTTP and
 * WebSocket, and what the TUI, `improv list/cmd/logs/tap/top`, the dashboard and scripts speak. The
 * cli README documents it for other languages (curl examples); these types are its one definition.
 * @module
 */
import type { LogRecord, NexusEvent, PipelineMetrics, PipelineStatus, Published, TapRecord } from '@improv/core';
import type { GraphLayout } from '../graph.ts';

/** Every route is under this prefix. */
export const API_PREFIX = '/api/v1';

/** What the registry and `GET /api/v1/info` say about a run. */
export interface RunInfo {
  /** Short id that `improv list` shows and the other commands take (`minimal-3fa2`). */
  id: string;
  /** The pipeline file, absolute. */
  pipeline: string;
  /** The server's process id. */
  pid: number;
  /** Base URL of the control server (`http://127.0.0.1:41234`). */
  url: string;
  /** The file that holds the token (mode 0600). */
  tokenFile: string;
  /** When the run started, in milliseconds since the Unix epoch. */
  startedAt: number;
  /** The runtime Nexus runs in (node, bun, deno) and improv's version. */
  runtime: string;
  version: string;
  /** The run folder, when the run writes one. */
  runDir?: string;
}

/** The server process's own load, in `GET /api/v1/info` (actors in processes of their own are in the metrics). */
export interface RunUsage {
  /** CPU over the last second or so, in cores (1 = one core busy): Nexus and its workers. */
  cpu: number;
  /** Resident memory of the process, in bytes. */
  rssBytes: number;
}

/** The graph as clients draw it: actors and the edges between their links. */
export interface GraphInfo {
  /** `runtime`: set for an actor in a process of its own (node, bun, deno, python; `process` on Nexus's runtime); `host`: its machine. */
  actors: { name: string; className: string; package: string; runtime?: string; host?: string }[];
  connections: { name: string; sources: string[]; sinks: string[]; capacity: number; policy: string }[];
}

/** `GET /api/v1/graph?layout=1`: the graph with where to draw it (dagre's layout, as `improv graph -f svg` draws it). */
export interface GraphWithLayout extends GraphInfo {
  layout: GraphLayout;
}

/** The answer to a command. */
export type CommandResult =
  | { ok: true; message: string }
  | { ok: false; code: 'refused' | 'unknown' | 'failed' | 'bad-request'; message: string };

/** Server → client, over the WebSocket (`GET /api/v1/ws`), each a JSON text frame. */
export type ServerMessage =
  /** First message after connecting. */
  | { type: 'hello'; info: RunInfo; status: PipelineStatus; graph: GraphInfo }
  /** Every ~500 ms while subscribed to metrics. */
  | { type: 'metrics'; metrics: PipelineMetrics }
  /** A state change of the pipeline or of an actor. */
  | { type: 'event'; event: Exclude<NexusEvent, { type: 'log' }> }
  /** Log records, batched (at most ~10 batches a second); the first batch after subscribing holds the recent past. */
  | { type: 'logs'; records: LogRecord[] }
  /** A message seen by a tap this client opened. */
  | { type: 'tap'; tap: number; record: TapRecord }
  /** The answer to the client's `command` with the same `id`. */
  | { type: 'result'; id: number; result: CommandResult }
  /**
   * What actors published (`this.publish`), while this client asked for plots. The only message
   * sent as a **binary** frame: msgpack with improv's extension types (`@improv/core/codec`), so
   * typed arrays arrive as typed arrays. At most two unanswered: the client answers each with `drawn`
   * once it has drawn it, and what was published meanwhile waits, merged (series in full, other
   * values newest-only), for the next.
   */
  | { type: 'plots'; streams: Published[] }
  /** The pipeline has quit; the server closes the socket next. */
  | { type: 'closed' };

/** Client → server, over the WebSocket. */
export type ClientMessage =
  /** A command line as typed at the prompt: `pause`, `revive Processor`, `status`. */
  | { type: 'command'; id: number; line: string }
  /** What to stream: metrics, and logs (`history`: how many past records to send first; default 200). */
  | { type: 'subscribe'; metrics?: boolean; logs?: boolean; history?: number }
  /** Opens a tap on a connection; records come back with this `tap` number. */
  | { type: 'tap'; tap: number; connection: string }
  | { type: 'untap'; tap: number }
  /** Starts (`on: true`) or stops receiving `plots`. */
  | { type: 'plots'; on: boolean }
  /** The client has drawn one `plots` message (one `drawn` each): the server may send another. */
  | { type: 'drawn' };

/**
 * A connection to a running pipeline as the TUI and `improv top` use it: the WebSocket client
 * (`connectRun` in client.ts) implements it; tests give a fake.
 */
export interface LiveSource {
  readonly info: RunInfo;
  readonly graph: GraphInfo;
  /** The pipeline's status when this client connected (the hello's). */
  readonly status: PipelineStatus;
  /** Asks for metrics and/or logs (`history`: how many past records first); nothing streams until asked. */
  subscribe(options: { metrics?: boolean; logs?: boolean; history?: number }): void;
  /** The latest metrics (undefined until the first arrive). */
  latest(): PipelineMetrics | undefined;
  /** Every server message from now on (metrics, events, logs, closed); returns the unsubscribe function. */
  on(listener: (message: ServerMessage) => void): () => void;
  /** Gives a command line (`pause`, `revive Processor`) and resolves to its result. */
  command(line: string): Promise<CommandResult>;
  /** Resolves when the connection ends (the pipeline quit, or the server went away). */
  readonly closed: Promise<void>;
  /** Closes this client's connection (the pipeline goes on). */
  close(): void;
}
