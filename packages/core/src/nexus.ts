/**
 * Nexus: loads a pipeline, starts every actor in its own worker, wires links and store, and drives
 * the actors through setup → run → pause/resume → stop → quit. It gathers every actor's log records
 * into one log (a file in the run folder plus a live stream) and shuts down cleanly on quit, SIGINT,
 * SIGTERM and SIGHUP (the terminal closed).
 *
 * @example
 * ```ts
 * import { createNexus } from '@improv/core';
 * import { createMemoryStore } from '@improv/store';
 * import { createLocalTransport } from '@improv/transport-local';
 *
 * const nexus = await createNexus({
 *   config: 'pipeline.yaml',
 *   store: createMemoryStore(),
 *   transport: createLocalTransport(),
 * });
 * nexus.on((event) => { if (event.type === 'log') console.log(event.record.message) });
 * await nexus.setup();
 * await nexus.run();
 * await new Promise((resolve) => setTimeout(resolve, 2000));
 * await nexus.stop();
 * await nexus.quit();
 * ```
 * @module
 */

import { runtimeOf } from './_actor-spawn.ts';
import { type ActorEntry, ActorTable, describeFailures } from './_actor-table.ts';
import { ActorWorkers } from './_actor-workers.ts';
import { Conditions } from './_conditions.ts';
import { describeConfig, describeEdges, givenBy, mebibytes, msSince, summarizeTransports } from './_debug-log.ts';
import { EventStream } from './_event-stream.ts';
import { HostAgents } from './_host-agents.ts';
import { HostChannels } from './_host-channels.ts';
import { PipelineMeter } from './_metrics.ts';
import { PublishedValues } from './_published.ts';
import { type Ending, isGone, Restarts } from './_restarts.ts';
import { RunLog } from './_run-log.ts';
import { Taps } from './_taps.ts';
import { closest } from './config/_suggest.ts';
import { assertConfig, loadConfig, resolveConfig, toLinkGraph } from './config/load.ts';
import { type ActorConfig, ConfigError, type PipelineConfig } from './config/types.ts';
import { ActorFailedError, CommandRefusedError } from './errors.ts';
import { openPipelineTransport, planError } from './link/combine.ts';
import { MAX_GET_TIMEOUT_MS } from './link/edges.ts';
import { HOST_ACTOR, HostLinks, hostEdges } from './link/host.ts';
import { LinkMonitor } from './link/monitor.ts';
import { placeEdges } from './link/placement.ts';
import type { InputLink, LinkEdge, LinkPlan, OutputLink, Transport } from './link/transport.ts';
import { createLogRecord, escapeLogRecord, type LogLevel, type LogRecord } from './log.ts';
import type {
  ActorStatus,
  CommandOptions,
  Nexus,
  NexusEvent,
  NexusOptions,
  PipelineMetrics,
  PipelineStatus,
  Published,
  TapRecord,
} from './nexus-api.ts';
import type { ProcessHandle, RuntimeAdapter } from './runtime/adapter.ts';
import { detectRuntime } from './runtime/detect.ts';
import { type PipelineState, refusalAdvice, refusedWhileFailed, type Signal, signalGates } from './signals.ts';
import { openPipelineStore, sizeLimitsOf } from './store/_open.ts';
import type { OpenStore, StoreClient, StoreDriver } from './store/driver.ts';
import { releaseKeys } from './store/keys.ts';
import { formatMs, Supervisor } from './supervisor.ts';

/** How often a setup that goes on is reported in the log (which actors' setup() has not returned). */
const SETUP_NEWS_EVERY_MS = 15_000;

export type { ActorStatus, Nexus, NexusEvent, NexusOptions, PipelineStatus } from './nexus-api.ts';

/** Loads and validates the pipeline, starts every actor's worker, and resolves once all are loaded. */
export async function createNexus(options: NexusOptions): Promise<Nexus> {
  const quitTimeout = options.quitTimeoutMs;
  if (quitTimeout !== undefined && !(quitTimeout >= 0 && quitTimeout <= MAX_GET_TIMEOUT_MS)) {
    // A timer beyond 2^31 − 1 ms fires at once: quit would end every worker without waiting.
    throw new RangeError(
      `createNexus: quitTimeoutMs must be a number of milliseconds from 0 to ${MAX_GET_TIMEOUT_MS} (about 24.8 days), not ${String(quitTimeout)}`,
    );
  }
  const runtime = options.runtime ?? (await detectRuntime());
  const storeSizeLimits = sizeLimitsOf(options.store);
  const loadStarted = performance.now();
  const checks = {
    adapter: runtime,
    ...(storeSizeLimits ? { storeSizeLimits } : {}),
    ...(options.hostsLocal ? { hostsLocal: true } : {}),
    ...(options.storeOverride === undefined ? {} : { storeOverride: options.storeOverride }),
  };
  const config =
    typeof options.config === 'string'
      ? assertConfig(await loadConfig(options.config, checks))
      : assertConfig(await resolveConfig(options.config, { ...checks, baseDir: options.baseDir ?? runtime.cwd() }));
  // Before anything starts: a bad host endpoint is a config error, like a bad connection.
  const extraEdges = hostEdges(config, options.host);
  const nexus = new NexusImpl(config, runtime, options, extraEdges);
  nexus.configLoadMs = performance.now() - loadStarted;
  await nexus.start();
  return nexus;
}

class NexusImpl implements Nexus {
  readonly config: PipelineConfig;
  runDir: string | undefined;
  readonly closed: Promise<void>;
  private readonly runtime: RuntimeAdapter;
  private readonly options: NexusOptions;
  /** Every actor's entry and what its host says (`_actor-table.ts`). */
  private readonly actors = new ActorTable({
    log: (level, message, ...details) => this.log(level, message, ...details),
    record: (record) => this.record(record),
    emit: (event) => this.stream.emit(event),
    changed: () => this.conditions.changed(),
    deliver: (actor, message) => this.channels.deliver(actor, message),
    gone: (entry, ending) => void this.actorGone(entry, ending),
    store: () => this.openStore,
  });
  /** Each actor's worker or process from its start to its end (`_actor-workers.ts`). */
  private readonly workers: ActorWorkers;
  private readonly stream = new EventStream<NexusEvent>();
  /** Re-checked on every actor state change: what commands and start wait for. */
  private readonly conditions = new Conditions();
  private pipelineState: PipelineState = 'starting';
  private openStore: OpenStore | undefined;
  private storeDriver: StoreDriver | undefined;
  private transport: Transport | undefined;
  private monitor: LinkMonitor | undefined;
  /** Rates, step times, load, latency and the store's use for `metrics()` (`_metrics.ts`). */
  private meter: PipelineMeter | undefined;
  /** The features that tell actor hosts something and hear back: meter, taps, published (`_host-channels.ts`). */
  private readonly channels = new HostChannels({
    send: (actor, message) => {
      const entry = this.actors.get(actor);
      if (entry) this.actors.send(entry, message);
    },
    warn: (message) => this.log('warn', message),
  });
  /** `tap()`: summaries from the hosts of a connection's sinks (`_taps.ts`). */
  private taps: Taps | undefined;
  /** `watchPublished()`: what actors publish, while somebody watches (`_published.ts`). */
  private published: PublishedValues | undefined;
  private supervisor: Supervisor | undefined;
  private runLog: RunLog | undefined;
  private hostLinks: HostLinks | undefined;
  /** The agents of the hosts actors run on (`host:`). */
  private hosts: HostAgents | undefined;
  private readonly hostEdges: LinkEdge[];
  private removeSignalHandler: (() => void) | undefined;
  private busy: Signal | undefined;
  /** The links of every actor, kept to open them again for an actor that restarts. */
  private plan: LinkPlan | undefined;
  /** Restart policies and `revive`: when and how a failed actor starts again. */
  private readonly restarts = new Restarts({
    entry: (name) => this.actors.get(name),
    start: async (actor) => {
      if (this.plan) await this.workers.start(actor, this.plan);
    },
    signal: (entry, signal) => this.actors.send(entry as ActorEntry, { type: 'signal', signal }),
    detach: (name, options) =>
      this.supervisor?.detach(name, (other) => isGone(this.actors.get(other)?.state ?? 'exited'), options),
    pipelineState: () => this.pipelineState,
    busy: () => this.busy !== undefined,
    quitting: () => this.quitting !== undefined,
    conditions: this.conditions,
    quitTimeoutMs: () => this.quitTimeoutMs,
    log: (level, message) => this.log(level, message),
  });
  private quitting: Promise<void> | undefined;
  private resolveClosed!: () => void;
  /** How long loading and checking the config took, for the debug log. */
  configLoadMs: number | undefined;

  constructor(config: PipelineConfig, runtime: RuntimeAdapter, options: NexusOptions, hostEdges: LinkEdge[]) {
    this.config = config;
    this.hostEdges = hostEdges;
    this.runtime = runtime;
    this.options = options;
    this.closed = new Promise((resolve) => {
      this.resolveClosed = resolve;
    });
    if (options.onEvent) this.stream.on(options.onEvent);
    this.workers = new ActorWorkers({
      runtime,
      config,
      actors: this.actors,
      metrics: options.metrics !== false,
      store: () => this.openStore,
      storeDriver: () => this.storeDriver,
      launcherOf: (actor) => this.hosts?.launcherOf(actor),
      started: (actor) => this.restarts.started(actor),
      initialized: (actor) => this.channels.actorStarted(actor),
      gone: (entry, ending) => this.actorGone(entry, ending),
      quitting: () => this.quitting !== undefined,
      changed: () => this.conditions.changed(),
      record: (record) => this.record(record),
      log: (level, message, ...details) => this.log(level, message, ...details),
    });
  }

  input<T = unknown>(endpoint: string): InputLink<T> {
    if (!this.hostLinks) throw new Error('the links are not open (the pipeline has not started)');
    return this.hostLinks.input<T>(endpoint);
  }

  output<T = unknown>(endpoint: string): OutputLink<T> {
    if (!this.hostLinks) throw new Error('the links are not open (the pipeline has not started)');
    return this.hostLinks.output<T>(endpoint);
  }

  get store(): StoreClient {
    if (!this.openStore) throw new Error('the store is not open (the pipeline has not started or has quit)');
    return this.openStore.client;
  }

  async start(): Promise<void> {
    const runtime = this.runtime;
    if (this.options.runDir !== false) {
      this.runLog = await RunLog.open(runtime, this.config, this.options.runDir);
      this.runDir = this.runLog.dir;
      this.log('debug', `run folder ${this.runDir}: ${this.runLog.files.join(', ')}`);
    }
    if (this.options.handleSignals !== false) {
      let signals = 0;
      this.removeSignalHandler = runtime.onShutdownSignal((signal) => {
        signals += 1;
        if (signals === 1) {
          this.log(
            'warn',
            signal === 'SIGHUP'
              ? 'SIGHUP received: quitting (the terminal was closed; SIGINT or SIGTERM ends every actor at once)'
              : `${signal} received: quitting (send it again to end every actor at once)`,
          );
          void this.quit();
        } else if (signal === 'SIGHUP') {
          // One closed terminal sends several: the shell passes its SIGHUP on to its jobs, and the
          // kernel sends one to the foreground group when the shell has gone. Never the "again".
          this.log('debug', 'SIGHUP received again: still quitting (a closed terminal sends several)');
        } else {
          this.log('warn', `${signal} received again: ending every actor now`);
          this.workers.endNow();
        }
      });
    }
    const { config } = this;
    this.log(
      'info',
      `pipeline ${config.source}: ${config.actors.length} actor(s), ${config.connections.length} connection(s); runtime ${runtime.name} ${runtime.version}${this.runDir ? `; log in ${this.runDir}` : ''}`,
    );
    const apart = config.actors.filter((actor) => actor.process !== undefined);
    if (apart.length > 0) {
      this.log(
        'info',
        `in processes of their own: ${apart.map((actor) => `${actor.name} (${runtimeOf(actor, runtime)}${actor.process?.host ? ` on ${actor.process.host}` : ''})`).join(', ')}; their links go over zmq`,
      );
    }
    for (const line of describeConfig(config, runtime, this.configLoadMs)) this.log('debug', line);
    try {
      // Hosts first: the store and the links must know where the hosts are and what reaches them.
      this.hosts = await HostAgents.connect(config, this.options.agents, (level, message) => this.log(level, message));
      const reachableAt = this.hosts.reachableAt;
      const storeStarted = performance.now();
      const opened = await openPipelineStore(this.options.store, config, reachableAt ? { reachableAt } : {});
      this.storeDriver = opened.driver;
      this.openStore = opened.store;
      // Only when it is the store the settings chose (not one `--store` or the program named instead).
      const { chosenFor, driver } = config.settings.store;
      if (chosenFor !== undefined && opened.driver.name === driver) {
        this.log('info', `store: ${driver}, because ${chosenFor}`);
      }
      this.log(
        'debug',
        `store opened: ${opened.driver.name}, store_size ${mebibytes(config.settings.storeSizeBytes)}, eviction ${config.settings.store.eviction} (${msSince(storeStarted)})`,
      );
      if (opened.warning !== undefined) this.log('warn', opened.warning);
      const transport = await openPipelineTransport(this.options.transport, config);
      this.transport = transport;
      const graph = toLinkGraph(config);
      graph.edges.push(...this.hostEdges);
      // Edges into and out of actors in their own processes go over zmq, decided here from the graph.
      placeEdges(config, graph.edges);
      const placement = this.hosts.placement();
      if (placement) graph.placement = placement;
      const plan = await transport.plan(graph).catch((error: unknown) => {
        throw planError(error, config);
      });
      this.plan = plan;
      if (transport.name !== 'local' && graph.edges.length > 0) {
        this.log('info', `links: ${summarizeTransports(graph.edges, transport.name, config.settings.transport.name)}`);
      }
      for (const line of describeEdges(graph.edges, transport.name, config.settings.transport.name)) {
        this.log('debug', line);
      }
      this.hostLinks = await HostLinks.open(plan.endpoints.get(HOST_ACTOR), {
        dropped: (message) => {
          const store = this.openStore?.client;
          if (store) void releaseKeys(message, store).catch(() => undefined);
        },
        warn: (message) => this.log('warn', `host link: ${message}`),
      });
      this.monitor = new LinkMonitor({
        transport,
        active: () => this.pipelineState === 'running',
        actorState: (name) =>
          this.actors.get(name)?.state ?? (name === HOST_ACTOR ? 'the embedding program' : 'unknown'),
        warn: (message) => this.log('warn', message),
        warnAfterMs: this.options.linkWarningMs ?? 5000,
        everyMs: Math.min(1000, Math.max(50, (this.options.linkWarningMs ?? 5000) / 5)),
      });
      this.monitor.start();
      this.meter = new PipelineMeter({
        status: () => this.status(),
        store: () => this.openStore?.client,
        storeDriver: () => this.storeDriver?.name,
        sampling: this.options.metrics !== false,
      });
      this.meter.start();
      this.channels.add('counters', this.meter.channel);
      const { line } = this.channels;
      this.taps = this.channels.add(
        'tap',
        new Taps({
          ...line,
          edges: graph.edges.map((edge) => ({ ...edge })),
          refused: () => (this.quitting ? 'the pipeline is quitting or has quit' : undefined),
        }),
      );
      this.published = this.channels.add(
        'published',
        new PublishedValues({ ...line, actors: config.actors.map((actor) => actor.name) }),
      );
      this.supervisor = new Supervisor({
        config,
        transport,
        store: () => this.openStore?.client,
        actors: () => this.actors.values(),
        watching: () => this.busy === undefined && !this.quitting,
        unresponsive: (name, what) => {
          const entry = this.actors.get(name);
          if (entry && !isGone(entry.state)) void this.workers.endUnresponsive(entry, what);
        },
        silentFor: (name) => this.hosts?.silentFor(name) ?? 0,
        log: (level, message, ...details) => this.log(level, message, ...details),
      });
      this.supervisor.start();
      await Promise.all(config.actors.map((actor) => this.workers.start(actor, plan)));
    } catch (error) {
      // A config error (a store that cannot open, at its setting) is the caller's to show, once.
      if (ConfigError.isInstance(error)) {
        // shown by the caller
      } else if (this.hosts === undefined && error instanceof Error) {
        // A host whose agent could not be reached: the message says which and what to do; no stack.
        this.log('error', `the pipeline could not start: ${error.message}`);
      } else {
        this.log('error', 'the pipeline could not start', error);
      }
      // A config error: the caller says the pipeline was not started, so its end is no news.
      await this.shutdown(ConfigError.isInstance(error) ? 'debug' : 'info');
      throw error;
    }
    await this.conditions.until(() => [...this.actors.values()].every((entry) => entry.state !== 'starting'));
    if (this.quitting) return;
    this.setPipelineState('waiting');
    const failed = this.actors.failedActors();
    if (failed.length > 0) {
      this.log('error', `${describeFailures(failed)}; setup is refused until the pipeline is restarted`);
    } else {
      this.log('info', 'all actors loaded');
    }
  }

  private setPipelineState(state: PipelineState): void {
    const previous = this.pipelineState;
    if (previous === state) return;
    this.pipelineState = state;
    this.stream.emit({ type: 'pipeline-state', state, previous });
  }

  status(): PipelineStatus {
    return {
      state: this.pipelineState,
      actors: [...this.actors.values()].map((entry) => {
        const status: ActorStatus = {
          name: entry.name,
          state: entry.state,
          steps: entry.steps,
          errors: entry.errors,
          restarts: this.restarts.count(entry.name),
        };
        if (entry.error) status.error = entry.error;
        const worker = entry.worker as Partial<ProcessHandle> | undefined;
        if (worker?.pid !== undefined && worker.runtime !== undefined) {
          const host = this.hosts?.hostOf(entry.name);
          status.process = { runtime: worker.runtime, pid: worker.pid, ...(host === undefined ? {} : { host }) };
        }
        return status;
      }),
      links: this.monitor?.status() ?? [],
    };
  }

  metrics(): PipelineMetrics {
    if (!this.meter) throw new Error('the pipeline has not started');
    return this.meter.metrics(this.status());
  }

  tap(connection: string, listener: (record: TapRecord) => void): () => void {
    if (!this.taps) throw new CommandRefusedError(`cannot tap "${connection}": the pipeline's links are not open`);
    return this.taps.tap(connection, listener);
  }

  watchPublished(listener: (published: Published) => void): () => void {
    if (!this.published)
      throw new CommandRefusedError("cannot watch what actors publish: the pipeline's links are not open");
    return this.published.watch(listener);
  }

  setup(): Promise<void> {
    return this.command('setup');
  }
  run(): Promise<void> {
    return this.command('run');
  }
  pause(): Promise<void> {
    return this.command('pause');
  }
  resume(): Promise<void> {
    return this.command('resume');
  }
  stop(): Promise<void> {
    return this.command('stop');
  }

  /**
   * setup() has no time limit: while it goes on, the log says every {@link SETUP_NEWS_EVERY_MS} whose
   * setup() has not returned. Returns the function that stops it.
   */
  #reportSetup(live: readonly ActorEntry[]): () => void {
    const started = performance.now();
    const timer = setInterval(() => {
      const waiting = live.filter((entry) => entry.state !== signalGates.setup.to && !isGone(entry.state));
      if (waiting.length === 0 || this.quitting !== undefined) return;
      this.log(
        'info',
        `setup: waiting for ${waiting.map((entry) => `"${entry.name}"`).join(', ')}: setup() has not returned after ${Math.round((performance.now() - started) / 1000)} s (quit ends it)`,
      );
    }, SETUP_NEWS_EVERY_MS);
    return () => clearInterval(timer);
  }

  /**
   * Gives a command; `options.by` says who gave it (`prompt`, `client 127.0.0.1:51234`, `script`)
   * for the run log, which records every command, its result and every refusal.
   */
  async command(signal: Signal, options: CommandOptions = {}): Promise<void> {
    this.log('info', `command ${signal}${givenBy(options)}`);
    if (signal === 'quit') return this.quit();
    const gate = signalGates[signal];
    const state = this.pipelineState;
    if (this.busy !== undefined) {
      throw this.refused(
        signal,
        `"${this.busy}" is still in progress (the pipeline is ${state}); wait for it to finish`,
      );
    }
    if (!gate.from.includes(state)) {
      throw this.refused(signal, `the pipeline is ${state}; ${refusalAdvice(signal, state)}`);
    }
    const failed = this.actors.failedActors();
    if (refusedWhileFailed(signal) && failed.length > 0) {
      throw this.refused(signal, `${describeFailures(failed)}. Fix the actor, then quit and start the pipeline again`);
    }
    this.busy = signal;
    this.setPipelineState(gate.during);
    const live = [...this.actors.values()].filter((entry) => entry.state !== 'failed' && entry.state !== 'exited');
    for (const entry of live) {
      entry.acked = undefined;
      this.actors.send(entry, { type: 'signal', signal });
    }
    const sentAt = performance.now();
    const unseenAtSend = this.supervisor?.unseenMs() ?? 0;
    const setupNews = signal === 'setup' ? this.#reportSetup(live) : undefined;
    try {
      const done = (entry: ActorEntry) => entry.state === gate.to || isGone(entry.state);
      // setup() may take as long as it needs (loading a model, opening a device), and so may stop()
      // once the actor acknowledged stop; quit ends either.
      const acknowledged = (entry: ActorEntry) => done(entry) || entry.acked === signal;
      const timeout = signal === 'setup' ? undefined : this.config.settings.signalTimeoutMs;
      if (!(await this.conditions.until(() => live.every(acknowledged), timeout)) && !this.quitting) {
        await this.#endUnacknowledged(signal, live, acknowledged, { sentAt, unseenAtSend }, timeout!);
      }
      await this.conditions.until(() => live.every(done));
    } finally {
      setupNews?.();
      this.busy = undefined;
      this.conditions.changed();
    }
    if (this.quitting) {
      this.log('info', `${signal}: cut short by quit`);
      return;
    }
    // The actor states a command leads to are pipeline states too (ready, running, paused, stopped).
    this.setPipelineState(gate.to as PipelineState);
    const newlyFailed = live.filter((entry) => entry.state === 'failed');
    if (newlyFailed.length > 0) {
      // Never "all actors ready" when one is not: the message says what the state is.
      const message = `${signal} finished, but ${describeFailures(newlyFailed)}`;
      this.log('error', message);
      throw new ActorFailedError(message);
    }
    this.log('info', `${signal}: done (${pipelineMessage(signal)})`);
  }

  /**
   * The signal's time is up: an actor that has not acknowledged it within `timeoutMs` of being heard
   * from is unresponsive and ended. The time its host said nothing does not count (see
   * `HostAgent.silentForMs`): such an actor is waited for until its host is heard again (then it has
   * the rest of its time) or is lost (then it fails, as every actor of that host does). Nor does the
   * time Nexus's own process was stopped (Ctrl-Z) or blocked: its workers were stopped with it, and
   * their acknowledgements wait to be read (`Supervisor.unseenMs`, the heartbeat watch's clock).
   */
  async #endUnacknowledged(
    signal: Signal,
    live: readonly ActorEntry[],
    acknowledged: (entry: ActorEntry) => boolean,
    sent: { sentAt: number; unseenAtSend: number },
    timeoutMs: number,
  ): Promise<void> {
    const what = `it did not acknowledge "${signal}" within ${formatMs(timeoutMs)}`;
    const heardFor = (entry: ActorEntry) =>
      performance.now() -
      sent.sentAt -
      // Both count time nothing could be heard; a stopped Nexus heard its hosts no more than its workers.
      Math.max((this.supervisor?.unseenMs() ?? 0) - sent.unseenAtSend, this.hosts?.silentFor(entry.name) ?? 0);
    for (;;) {
      const late = live.filter((entry) => !acknowledged(entry));
      const waiting = late.filter((entry) => heardFor(entry) < timeoutMs);
      await Promise.all(
        late.filter((entry) => !waiting.includes(entry)).map((entry) => this.workers.endUnresponsive(entry, what)),
      );
      if (waiting.length === 0 || this.quitting !== undefined) return;
      const left = Math.max(10, timeoutMs - Math.max(...waiting.map(heardFor)));
      await this.conditions.until(() => this.quitting !== undefined || waiting.every(acknowledged), left);
    }
  }

  /** Logs a refused command at warn and returns the error to throw: `cannot <subject>: <reason>`. */
  private refused(command: string, reason: string, subject: string = command): CommandRefusedError {
    this.log('warn', `${command} refused: ${reason}`);
    return new CommandRefusedError(`cannot ${subject}: ${reason}`);
  }

  /**
   * A failed or dead actor no longer takes part: the supervisor detaches it from its links, unless
   * its restart policy starts it again (then its sinks wait for it).
   */
  private async actorGone(entry: ActorEntry, ending: Ending): Promise<void> {
    if (this.quitting) return;
    await this.restarts.gone(entry, this.actorConfig(entry.name), ending);
  }

  /** `revive`; `options.by` says who gave it, for the run log (see {@link command}). */
  async revive(name: string, options: CommandOptions = {}): Promise<void> {
    const command = `revive ${name}`;
    const subject = `revive "${name}"`;
    this.log('info', `command ${command}${givenBy(options)}`);
    const entry = this.actors.get(name);
    if (!entry) {
      const actors = [...this.actors.keys()];
      const near = closest(name, actors);
      const hint = near === undefined ? '' : `did you mean "${near}"? `;
      throw this.refused(command, `there is no such actor; ${hint}the actors are ${actors.join(', ')}`, subject);
    }
    if (this.quitting) throw this.refused(command, 'the pipeline is quitting', subject);
    const refusal = this.restarts.reviveRefusal(entry);
    if (refusal !== undefined) throw this.refused(command, refusal, subject);
    await this.restarts.revive(entry, this.actorConfig(name));
    const state = this.actors.get(name)?.state ?? 'exited';
    if (this.quitting) this.log('info', `${command}: cut short by quit`);
    else if (isGone(state)) this.log('warn', `${command}: done, but the actor is ${state} again (see above)`);
    else this.log('info', `${command}: done (actor ${state})`);
  }

  private actorConfig(name: string): ActorConfig {
    const actor = this.config.actors.find((candidate) => candidate.name === name);
    if (!actor) throw new Error(`no actor named "${name}" in the config`);
    return actor;
  }

  private get quitTimeoutMs(): number {
    return this.options.quitTimeoutMs ?? 10_000;
  }

  quit(): Promise<void> {
    this.quitting ??= this.shutdown();
    this.conditions.changed();
    return this.quitting;
  }

  /** Ends everything; `exitedLevel` is the level of the closing "pipeline exited". */
  private async shutdown(exitedLevel: 'info' | 'debug' = 'info'): Promise<void> {
    this.setPipelineState('quitting');
    this.log('info', 'quitting: stopping every actor');
    await this.workers.quit(this.quitTimeoutMs);
    // The program's own links close once every actor has ended: a get() waiting on one rejects.
    await this.hostLinks?.close();
    this.monitor?.stop();
    this.meter?.stop();
    this.channels.close();
    this.supervisor?.stop();
    await this.supervisor?.drain();
    this.log('debug', 'quit: every actor ended; supervisor and link monitor stopped');
    try {
      await this.transport?.close();
      if (this.transport) this.log('debug', `quit: links closed (${this.transport.name})`);
    } catch (error) {
      this.log('warn', 'closing the links failed', error);
    }
    await this.hosts?.close();
    if (this.config.actors.some((actor) => actor.process?.host !== undefined)) {
      this.log('debug', 'quit: host agents closed');
    }
    // A store recovery after an actor died at quit (a host lost meanwhile) ends before the store closes.
    await this.actors.recoveries();
    try {
      await this.openStore?.close();
      if (this.openStore) this.log('debug', `quit: store closed (${this.storeDriver?.name ?? 'store'})`);
    } catch (error) {
      this.log('warn', 'closing the store failed', error);
    }
    this.removeSignalHandler?.();
    this.setPipelineState('exited');
    this.log(exitedLevel, 'pipeline exited');
    await this.runLog?.close();
    this.resolveClosed();
    this.stream.end();
  }

  on(listener: (event: NexusEvent) => void): () => void {
    return this.stream.on(listener);
  }

  events(): AsyncIterableIterator<NexusEvent> {
    return this.stream.iterate();
  }

  private log(level: LogLevel, message: string, ...details: unknown[]): void {
    this.record(createLogRecord('nexus', level, message, details));
  }

  /**
   * Every record, Nexus's and each actor's (its log, console and the output of its process), is
   * logged and sent from here, its terminal control characters escaped: an actor's output must not
   * clear the screen of the live UI or a terminal showing the log.
   */
  private record(record: LogRecord): void {
    const safe = escapeLogRecord(record);
    this.runLog?.write(safe);
    this.stream.emit({ type: 'log', record: safe });
  }
}

function pipelineMessage(signal: Exclude<Signal, 'quit'>): string {
  switch (signal) {
    case 'setup':
      return 'all actors ready';
    case 'run':
      return 'pipeline running';
    case 'pause':
      return 'pipeline paused';
    case 'resume':
      return 'pipeline running again';
    case 'stop':
      return 'pipeline stopped';
  }
}
