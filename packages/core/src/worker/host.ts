/**
 * The actor host: the module every actor's worker runs. It loads the actor class, rebuilds the
 * links and the store from their descriptors, and drives the actor through the signals Nexus sends.
 * @module
 */
import { LogBudget } from '../_log-budget.ts';
import { type Actor, isActorClass } from '../actor.ts';
import type { OnError } from '../config/types.ts';
import { LinkClosedError, serializeError } from '../errors.ts';
import { openLink } from '../link/open.ts';
import type { Link, LinkHooks } from '../link/transport.ts';
import { createLogRecord, type Logger, type LogLevel } from '../log.ts';
import { formatLogArguments } from '../runtime/_node-format.ts';
import type { WorkerEndpoint } from '../runtime/adapter.ts';
import type { ActorState, Signal } from '../signals.ts';
import type { ConnectStore, StoreClient, StoreDescriptor } from '../store/driver.ts';
import { releaseKeys } from '../store/keys.ts';
import { ErrorLog } from './_error-log.ts';
import { ActorMeter } from './_meter.ts';
import { ModuleNotHereError, notHere } from './_module-not-here.ts';
import { nextTurn } from './_next-turn.ts';
import { Publisher } from './_publisher.ts';
import { StoreLinks } from './_store-links.ts';
import {
  CONTROL_HEARTBEAT,
  CONTROL_SIGNALS,
  type FromWorker,
  type InitMessage,
  type PublishRequestMessage,
  type TapRequestMessage,
  type ToWorker,
} from './protocol.ts';

/** How often a runStep loop that never awaits a macrotask still lets control messages and timers in. */
const YIELD_EVERY_MS = 5;
/** Back-off after a runStep() that threw: the first wait, doubled per error in a row up to the last. */
const BACKOFF_FIRST_MS = 1;
const BACKOFF_MAX_MS = 1000;
/** How often changed counters (steps, errors) and what was measured are reported to Nexus, on heartbeats: twice a second. */
const COUNTERS_EVERY_MS = 500;
/** How long quit waits for a step to settle once the links are closed, before closing the store. */
const QUIT_STEP_GRACE_MS = 1000;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => nextTurn(resolve));

/** Entry point called by the runtime adapter's worker bootstrap. */
export function runWorker(endpoint: WorkerEndpoint): void {
  const host = new ActorHost(endpoint);
  // Signals are handled strictly in order; each waits for the one before it.
  let queue: Promise<void> = Promise.resolve();
  endpoint.onMessage((message) => {
    const request = message as ToWorker;
    // A tap or publish request is no signal: it applies at once, also while a signal is under way (a long setup()).
    if (request.type === 'tap') host.tap(request);
    else if (request.type === 'publish') host.publisher.set(request.on);
    else queue = queue.then(() => host.handle(request));
  });
}

class ActorHost {
  private readonly endpoint: WorkerEndpoint;
  private name = '(loading)';
  private state: ActorState = 'starting';
  private actor: Actor<unknown> | undefined;
  private links: Link[] = [];
  private store: StoreClient | undefined;
  /** Store keys in the actor's messages: flush, holds, in-flight counts (`_store-links.ts`). */
  private storeLinks: StoreLinks | undefined;
  private control: Int32Array | undefined;
  private onError: OnError = 'continue';
  /** True while runStep() is to be called; false from pause/stop/quit on. */
  private running = false;
  /** The runStep loop while it runs — also while its step is parked in a held link call. */
  private loop: Promise<void> | undefined;
  /** Ends a back-off wait early (a signal came). */
  private wakeBackoff: (() => void) | undefined;
  private setUp = false;
  private readonly errorLog: ErrorLog;
  private steps = 0;
  private errors = 0;
  private reported = { steps: 0, errors: 0 };
  /** Step times, latency, load and taps (`_meter.ts`). */
  private readonly meter = new ActorMeter((message) => this.post(message));
  /** `this.publish()`: kept while watched and sent up (`_publisher.ts`). */
  readonly publisher = new Publisher(
    (message, transfer) => this.post(message, transfer),
    (message) => this.log.warn(message),
  );
  private heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  /** At most so many log lines a second go up: a flood must not hold up the states and signals behind it. */
  private readonly logBudget = new LogBudget(
    () => this.name,
    (record) => this.post({ type: 'log', record }),
  );
  /** Key releases under way, awaited before the store client closes. */
  private readonly releasing = new Set<Promise<unknown>>();

  constructor(endpoint: WorkerEndpoint) {
    this.endpoint = endpoint;
    this.errorLog = new ErrorLog(this.log, 'runStep()');
  }

  async handle(message: Exclude<ToWorker, TapRequestMessage | PublishRequestMessage>): Promise<void> {
    if (message.type === 'init') await this.init(message);
    else await this.signal(message.signal);
  }

  /** `nexus.tap()`: start or stop summarising what an input link returns. */
  tap(message: TapRequestMessage): void {
    this.meter.tap(message.link, message.on);
  }

  private post(message: FromWorker, transfer?: readonly ArrayBuffer[]): void {
    this.endpoint.postMessage(message, transfer);
  }

  private setState(
    state: ActorState,
    extra: Partial<Pick<Extract<FromWorker, { type: 'state' }>, 'error' | 'phase'>> = {},
  ) {
    this.reportCounters();
    this.state = state;
    this.post({ type: 'state', state, ...extra });
  }

  /**
   * Reports changed counters; `periodic` (the twice-a-second report) also ends the measuring window
   * and reports what it measured, when that says something new.
   */
  private reportCounters(periodic = false): void {
    const changed = this.steps !== this.reported.steps || this.errors !== this.reported.errors;
    const message = periodic
      ? this.meter.report(this.steps, this.errors, changed)
      : changed
        ? ({ type: 'counters', steps: this.steps, errors: this.errors } as const)
        : undefined;
    if (message === undefined) return;
    this.reported = { steps: this.steps, errors: this.errors };
    this.post(message);
  }

  private emit(level: LogLevel, message: string, details: unknown[]): void {
    if (!this.logBudget.take()) return;
    // Details as the runtime's console shows them (NaN, Map, class names), like console.* in an actor.
    const record = createLogRecord(this.name, level, message, details, (detail) => formatLogArguments([detail]));
    this.post({ type: 'log', record });
  }

  private readonly log: Logger = {
    debug: (message, ...details) => this.emit('debug', message, details),
    info: (message, ...details) => this.emit('info', message, details),
    warn: (message, ...details) => this.emit('warn', message, details),
    error: (message, ...details) => this.emit('error', message, details),
  };

  /** What the links report: dropped messages release their store keys; warnings go to the log. */
  private readonly linkHooks: LinkHooks = {
    dropped: (message) => {
      const store = this.store;
      if (store === undefined) return;
      const release = releaseKeys(message, store)
        .catch((error: unknown) => this.log.warn('could not release the store keys of a dropped message', error))
        .finally(() => this.releasing.delete(release));
      this.releasing.add(release);
    },
    warn: (message) => this.log.warn(message),
  };

  private async init(message: InitMessage): Promise<void> {
    this.name = message.actor.name;
    this.onError = message.actor.onError;
    this.control = new Int32Array(message.control);
    this.meter.start(message.measure);
    captureConsole((level, text) => this.emit(level, text, []));
    try {
      const storeModule = (await import(message.store.module)) as { connectStore?: ConnectStore };
      if (typeof storeModule.connectStore !== 'function') {
        throw new TypeError(`store module ${message.store.module} does not export connectStore()`);
      }
      // Deletes and puts are batched where that saves commits: the store links flush them before a
      // message leaves (a flood's messages share one flush).
      this.store = await storeModule.connectStore(message.store as StoreDescriptor, {
        batchDeletes: true,
        batchPuts: true,
      });
      if (this.store.ownerId !== undefined) this.post({ type: 'store-owner', ownerId: this.store.ownerId });
      const store = this.store;
      this.meter.isKey = (value) => store.isKey(value);
      const storeLinks = new StoreLinks(this.store, message.storeUse);
      this.storeLinks = storeLinks;
      const hooks = { ...this.linkHooks, ...storeLinks.hooks() };
      const links: Record<string, Link> = {};
      for (const [linkName, descriptor] of Object.entries(message.links)) {
        links[linkName] = await openLink(descriptor, hooks);
      }
      this.links = Object.values(links);
      for (const [linkName, link] of Object.entries(links)) links[linkName] = this.meter.wrap(storeLinks.wrap(link));
      const module = (await import(message.actor.moduleUrl).catch((error: unknown) => {
        throw notHere(error, message.actor.moduleUrl);
      })) as Record<string, unknown>;
      const ActorClass = module[message.actor.className];
      if (!isActorClass(ActorClass)) {
        throw new TypeError(
          `export "${message.actor.className}" of ${message.actor.moduleUrl} is not a class that extends Actor`,
        );
      }
      this.actor = new ActorClass({
        name: this.name,
        options: message.actor.options as never,
        links,
        store: this.store,
        log: this.log,
        publisher: this.publisher,
      }) as Actor<unknown>;
      if (typeof (this.actor as { runStep?: unknown }).runStep !== 'function') {
        throw new TypeError(`actor class "${message.actor.className}" has no runStep() method; add one`);
      }
      let beats = 0;
      const countersEvery = Math.max(1, Math.round(COUNTERS_EVERY_MS / message.heartbeatMs));
      this.heartbeatTimer = setInterval(() => {
        Atomics.add(this.control!, CONTROL_HEARTBEAT, 1);
        if (++beats % countersEvery !== 0) return;
        this.reportCounters(true);
        this.errorLog.flush(false);
      }, message.heartbeatMs);
      this.setState('waiting');
    } catch (error) {
      // A module that is not there needs no stack: the message says it all.
      if (error instanceof ModuleNotHereError) this.log.error(`failed to load: ${error.message}`);
      else this.log.error('failed to load', error);
      this.setState('failed', { error: serializeError(error), phase: 'load' });
    }
  }

  private async signal(signal: Signal): Promise<void> {
    const actor = this.actor;
    if (signal === 'quit') return this.quit();
    if (!actor || this.state === 'failed') return;
    switch (signal) {
      case 'setup':
        if (this.state !== 'waiting') return this.ignored(signal);
        try {
          await actor.setup();
          await this.storeStepEnded('setup()');
          this.setUp = true;
          this.setState('ready');
        } catch (error) {
          this.log.error('setup() failed', error);
          this.setState('failed', { error: serializeError(error), phase: 'setup' });
        }
        return;
      case 'run':
        if (this.state !== 'ready' && this.state !== 'stopped') return this.ignored(signal);
        this.errorLog.reset();
        // Report first: a runStep() that never yields must not keep the state change from Nexus.
        this.setState('running');
        this.startLoop(actor);
        return;
      case 'pause':
        if (this.state !== 'running') return this.ignored(signal);
        await this.park();
        this.setState('paused');
        return;
      case 'resume':
        if (this.state !== 'paused') return this.ignored(signal);
        this.setState('running');
        this.startLoop(actor);
        return;
      case 'stop':
        if (this.state !== 'running' && this.state !== 'paused') return this.ignored(signal);
        await this.park();
        this.post({ type: 'ack', signal });
        await this.callStop(actor);
        this.setState('stopped');
        return;
    }
  }

  private ignored(signal: Signal): void {
    this.log.warn(`ignored signal "${signal}" in state ${this.state}`);
  }

  /** Lets the links move again and calls runStep() — going on with a step parked by pause or stop. */
  private startLoop(actor: Actor<unknown>): void {
    this.running = true;
    for (const link of this.links) link.release();
    this.loop ??= this.runLoop(actor);
  }

  /**
   * Stops calling runStep() and holds every link, then resolves once the actor is parked: its step
   * has returned, or it waits in a held get()/put(). Nothing is interrupted, so no message an actor
   * has in hand is lost: a parked step goes on where it stood on resume or the next run.
   */
  private async park(): Promise<void> {
    this.running = false;
    this.wakeBackoff?.();
    const loop = this.loop;
    // Messages of a flood that wait for the store's next commit go into their links first.
    await this.storeLinks?.handOver().catch((error: unknown) => {
      this.log.warn(
        'the store could not write what messages waiting to leave the actor carry; they leave once it can',
        error,
      );
    });
    return new Promise((resolve) => {
      let parked = false;
      const done = () => {
        if (parked) return;
        parked = true;
        this.errorLog.flush(true);
        resolve();
      };
      for (const link of this.links) link.hold(done);
      if (loop === undefined) done();
      else loop.then(done, done);
    });
  }

  private async runLoop(actor: Actor<unknown>): Promise<void> {
    const control = this.control!;
    const storeLinks = this.storeLinks!;
    const meter = this.meter;
    let seenControl = Atomics.load(control, CONTROL_SIGNALS);
    let lastYield = performance.now();
    let backoff = 0;
    try {
      while (this.running) {
        try {
          // Timed: every step of a slow actor, a random sample of a fast one's (see _meter.ts).
          const started = meter.stepStarts();
          let threw = true;
          try {
            const step = actor.runStep();
            if (step !== undefined) await step;
            threw = false;
          } finally {
            meter.stepEnded(started);
            // Written, counted out and released also after a step that threw; what it sent goes
            // into its links before the actor parks or fails.
            const ended = storeLinks.stepEnded(this.running && !threw ? undefined : { handOver: true });
            if (ended !== undefined) await ended;
          }
          this.steps += 1;
          backoff = 0;
        } catch (error) {
          // Quitting closed the links under a step: that is the end, not an error.
          if (!this.running && LinkClosedError.isInstance(error)) break;
          this.errors += 1;
          if (this.onError === 'fail') {
            this.failRun(error);
            break;
          }
          this.errorLog.record(error, 'the loop goes on after a back-off (on_error: fail makes it fail instead)');
          backoff = backoff === 0 ? BACKOFF_FIRST_MS : Math.min(backoff * 2, BACKOFF_MAX_MS);
          // The wait also lets control messages in: a step that throws at once would starve them.
          await this.backoff(backoff);
          lastYield = performance.now();
          continue;
        }
        const current = Atomics.load(control, CONTROL_SIGNALS);
        const now = performance.now();
        if (current !== seenControl || now - lastYield >= YIELD_EVERY_MS) {
          seenControl = current;
          await yieldToEventLoop();
          lastYield = performance.now();
        }
      }
    } finally {
      this.loop = undefined;
    }
  }

  /** Waits `ms`, or less when a signal comes. */
  private backoff(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      this.wakeBackoff = finish;
    }).finally(() => {
      this.wakeBackoff = undefined;
    });
  }

  /** `on_error: fail`: the first error of runStep() fails the actor; its links close so the rest flows on. */
  private failRun(error: unknown): void {
    this.running = false;
    this.log.error('runStep() threw; the actor fails (on_error: fail)', error);
    for (const link of this.links) link.close();
    this.setState('failed', { error: serializeError(error), phase: 'run' });
  }

  private async callStop(actor: Actor<unknown>): Promise<void> {
    try {
      await actor.stop();
    } catch (error) {
      this.log.error('stop() threw', error);
    }
    await this.storeStepEnded('stop()');
  }

  /** After setup() and stop(), as after each step: what they allocated is written, what they read released. */
  private async storeStepEnded(after: string): Promise<void> {
    try {
      await this.storeLinks?.stepEnded({ commitDeletes: true });
    } catch (error) {
      this.log.warn(`the store could not write or release what ${after} left`, error);
    }
  }

  /**
   * Messages of a flood that still wait for the store at quit (its last flushes failed: the store
   * is full or gone) never leave: said as an error, with how many and on which links, not lost in silence.
   */
  private async reportDroppedHeld(): Promise<void> {
    const dropped = await this.storeLinks?.dropHeld();
    if (dropped === undefined || dropped.size === 0) return;
    const counts = [...dropped].map(([link, count]) => `${count} on ${link}`).join(', ');
    this.log.error(
      `quit dropped messages the actor had sent (${counts}): the store never wrote the values they carry (see the warnings before), so they did not leave the actor`,
    );
  }

  private async quit(): Promise<void> {
    if (this.actor && this.setUp && ['ready', 'running', 'paused'].includes(this.state)) {
      await this.park();
      await this.callStop(this.actor);
    }
    this.running = false;
    await this.reportDroppedHeld();
    // Closing rejects a parked get() and ends a parked put() (its message counted as dropped), so
    // the step settles; one that waits on something else is given a moment, then left behind.
    const closed = Promise.all(this.links.map((link) => link.close()));
    if (this.loop) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([this.loop, new Promise((resolve) => (timer = setTimeout(resolve, QUIT_STEP_GRACE_MS)))]);
      clearTimeout(timer);
    }
    clearInterval(this.heartbeatTimer);
    this.errorLog.flush(true);
    this.logBudget.flush();
    this.publisher.flush();
    await Promise.all(this.releasing);
    // Sockets must be released before the worker ends (an open zeromq socket aborts Node then).
    await closed;
    try {
      await this.store?.close();
    } catch (error) {
      this.log.warn('closing the store client failed', error);
    }
    this.setState('exited');
    this.endpoint.close();
  }
}

/**
 * Routes the actor's console output into the pipeline log, so a `console.log` is not lost. The
 * arguments are formatted as the runtime's console formats them (specifiers, `Map`s, `NaN`, an
 * `Error`'s stack in the message), so the record carries no separate stack.
 */
function captureConsole(emit: (level: LogLevel, text: string) => void): void {
  const route =
    (level: LogLevel) =>
    (...args: unknown[]) =>
      emit(level, formatLogArguments(args));
  console.log = route('info');
  console.info = route('info');
  console.debug = route('debug');
  console.warn = route('warn');
  console.error = route('error');
}
