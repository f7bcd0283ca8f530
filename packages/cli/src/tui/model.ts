/**
 * What the live UI knows of the run: the latest metrics, states from events in between, and the
 * log (records and the UI's own notes), kept as plain data outside React. Messages only change
 * this model and bump its `version`; the UI redraws from it on a timer (at most ~10 times a
 * second), never per message.
 * @module
 */
import type {
  ActorMetrics,
  ActorState,
  LinkMetrics,
  LogLevel,
  LogRecord,
  PipelineMetrics,
  PipelineState,
  PipelineStatus,
} from '@improv/core';
import type { LiveSource, ServerMessage } from '../control/protocol.ts';

/** How many log lines the UI keeps (older ones are forgotten). */
export const LOG_LIMIT = 1000;

/** What a UI note is: the echo of a typed command, its result, a refusal, a hint. */
export type NoteTone = 'command' | 'ok' | 'error' | 'hint';

/** One line of the log area: a log record's line, or a note of the UI itself. */
export interface LogLine {
  time: number;
  level: LogLevel;
  source: string;
  text: string;
  /** Set for the UI's own lines; they are shown whatever the filters. */
  note?: NoteTone;
  /** A second or later line of one record or note (shown indented, without time and source). */
  cont?: boolean;
}

/** One actor's row: the metrics when there are some, else what the hello and events said. */
export interface ActorRow {
  name: string;
  state: ActorState | string;
  metrics: Partial<ActorMetrics> | undefined;
  /** Messages per second into and out of it: the sums over its incoming and outgoing links. */
  inRate: number | undefined;
  outRate: number | undefined;
}

export class LiveModel {
  readonly source: LiveSource;
  /** Bumped by every change; the UI redraws when it moved. */
  version = 0;
  metrics: PipelineMetrics | undefined;
  /** The status of the hello, when the source kept it. */
  status: PipelineStatus | undefined;
  /** The pipeline's state as last heard (metrics or event). */
  pipelineState: PipelineState | string | undefined;
  /** Actor states from events newer than the last metrics. */
  readonly actorStates = new Map<string, ActorState>();
  readonly log: LogLine[] = [];
  /** Log lines forgotten since the start (so scrolling can stay put). */
  dropped = 0;
  closed = false;

  constructor(source: LiveSource) {
    this.source = source;
    // The hello's status shows until the first metrics arrive.
    const { status } = source;
    if (status !== undefined && Array.isArray(status.actors)) {
      this.status = status;
      this.pipelineState = this.status.state;
    }
    let latest: PipelineMetrics | undefined;
    try {
      latest = source.latest();
    } catch {
      latest = undefined;
    }
    if (latest) this.setMetrics(latest);
  }

  /** Takes one server message into the model. */
  handle(message: ServerMessage): void {
    switch (message?.type) {
      case 'metrics':
        if (message.metrics) this.setMetrics(message.metrics);
        return;
      case 'event': {
        const event = message.event;
        if (event?.type === 'pipeline-state') this.pipelineState = event.state;
        else if (event?.type === 'actor-state') this.actorStates.set(event.actor, event.state);
        else return;
        this.version += 1;
        return;
      }
      case 'logs':
        for (const record of message.records ?? []) this.addRecord(record);
        return;
      case 'hello':
        this.status = message.status;
        if (message.status?.state) this.pipelineState = message.status.state;
        this.version += 1;
        return;
      case 'closed':
        this.closed = true;
        this.version += 1;
        return;
      default:
    }
  }

  setMetrics(metrics: PipelineMetrics): void {
    this.metrics = metrics;
    if (metrics.state) this.pipelineState = metrics.state;
    // The snapshot is newer than the events before it.
    this.actorStates.clear();
    this.version += 1;
  }

  addRecord(record: LogRecord): void {
    if (!record || typeof record !== 'object') return;
    const text = String(record.message ?? '');
    const level: LogLevel = ['debug', 'info', 'warn', 'error'].includes(record.level) ? record.level : 'info';
    const time = typeof record.time === 'number' ? record.time : Date.now();
    const source = String(record.source ?? '');
    text.split('\n').forEach((line, index) => {
      this.push(index === 0 ? { time, level, source, text: line } : { time, level, source, text: line, cont: true });
    });
  }

  /** A line of the UI's own (a command, its result), possibly several lines. */
  addNote(text: string, tone: NoteTone): void {
    const time = Date.now();
    const level: LogLevel = tone === 'error' ? 'error' : 'info';
    text.split('\n').forEach((line, index) => {
      const entry: LogLine = { time, level, source: '', text: line, note: tone };
      if (index > 0) entry.cont = true;
      this.push(entry);
    });
  }

  private push(line: LogLine): void {
    this.log.push(line);
    if (this.log.length > LOG_LIMIT) {
      // Trim in batches, so a busy log costs one splice per hundred lines.
      const excess = this.log.length - LOG_LIMIT + 100;
      this.log.splice(0, excess);
      this.dropped += excess;
    }
    this.version += 1;
  }

  /** The pipeline state to show. */
  state(): string {
    return this.pipelineState ?? 'connecting';
  }

  /** Every actor: the graph's order, with metrics (or the hello's status) and newer event states. */
  actors(): ActorRow[] {
    const metrics = this.metrics;
    const links = this.links();
    const byName = new Map<string, Partial<ActorMetrics>>();
    for (const actor of asArray<Partial<ActorMetrics>>(metrics?.actors)) if (actor?.name) byName.set(actor.name, actor);
    const fromStatus = new Map<string, Partial<ActorMetrics>>();
    for (const actor of asArray<Partial<ActorMetrics>>(this.status?.actors))
      if (actor?.name) fromStatus.set(actor.name, actor);
    const names: string[] = [];
    for (const actor of asArray<{ name?: string }>(this.source.graph?.actors)) if (actor?.name) names.push(actor.name);
    for (const name of [...byName.keys(), ...fromStatus.keys()]) if (!names.includes(name)) names.push(name);
    return names.map((name) => {
      const row = byName.get(name) ?? fromStatus.get(name);
      const state = this.actorStates.get(name) ?? row?.state ?? '-';
      let inRate: number | undefined;
      let outRate: number | undefined;
      for (const link of links) {
        const rate = typeof link.messagesPerSecond === 'number' ? link.messagesPerSecond : undefined;
        if (rate === undefined) continue;
        if (link.to?.actor === name) inRate = (inRate ?? 0) + rate;
        if (link.from?.actor === name) outRate = (outRate ?? 0) + rate;
      }
      return { name, state, metrics: byName.has(name) ? row : undefined, inRate, outRate };
    });
  }

  /** Every edge (from the metrics, else the hello's status). */
  links(): Partial<LinkMetrics>[] {
    const links = asArray<Partial<LinkMetrics>>(this.metrics?.links);
    return links.length > 0 || this.metrics ? links : asArray<Partial<LinkMetrics>>(this.status?.links);
  }

  /** The actors that `revive` can start again: failed or ended. */
  revivable(): string[] {
    return this.actors()
      .filter((actor) => actor.state === 'failed' || actor.state === 'exited')
      .map((actor) => actor.name);
  }

  /** Names of the actors, for completion. */
  actorNames(): string[] {
    return this.actors().map((actor) => actor.name);
  }
}

function asArray<T>(value: unknown): T[] {
  return Array.isArray(value) ? (value as T[]) : [];
}
