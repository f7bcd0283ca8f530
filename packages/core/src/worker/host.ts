/**
 * The actor host: the module every actor's worker runs. It loads the actor class, rebuilds the
 * links and the store from their descriptors, and drives the actor through the signals Nexus sends.
 * @module
 */
import { type Actor, isActorClass } from '../actor.ts';
import { InterruptedError, serializeError } from '../errors.ts';
import type { Link, LinkDescriptor, OpenLink } from '../link/transport.ts';
import { createLogRecord, type Logger, type LogLevel } from '../log.ts';
import type { WorkerEndpoint } from '../runtime/adapter.ts';
import type { ActorState, Signal } from '../signals.ts';
import type { ConnectStore, StoreClient, StoreDescriptor } from '../store/driver.ts';
import type { FromWorker, InitMessage, ToWorker } from './protocol.ts';

/** How often a runStep loop that never awaits a macrotask still lets control messages and timers in. */
const YIELD_EVERY_MS = 5;
/** Identical runStep errors in a row are summarised instead of logged one by one. */
const ERROR_SUMMARY_EVERY_MS = 1000;

const yieldToEventLoop: () => Promise<void> =
  typeof setImmediate === 'function'
    ? () => new Promise((resolve) => setImmediate(resolve))
    : () => new Promise((resolve) => setTimeout(resolve, 0));

/** Entry point called by the runtime adapter's worker bootstrap. */
export function runWorker(endpoint: WorkerEndpoint): void {
  const host = new ActorHost(endpoint);
  // Signals are handled strictly in order; each waits for the one before it.
  let queue: Promise<void> = Promise.resolve();
  endpoint.onMessage((message) => {
    queue = queue.then(() => host.handle(message as ToWorker));
  });
}

class ActorHost {
  private readonly endpoint: WorkerEndpoint;
  private name = '(loading)';
  private state: ActorState = 'starting';
  private actor: Actor<unknown> | undefined;
  private links: Link[] = [];
  private store: StoreClient | undefined;
  private control: Int32Array | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  private setUp = false;

  constructor(endpoint: WorkerEndpoint) {
    this.endpoint = endpoint;
  }

  async handle(message: ToWorker): Promise<void> {
    if (message.type === 'init') await this.init(message);
    else await this.signal(message.signal);
  }

  private post(message: FromWorker): void {
    this.endpoint.postMessage(message);
  }

  private setState(
    state: ActorState,
    extra: Partial<Pick<Extract<FromWorker, { type: 'state' }>, 'error' | 'phase'>> = {},
  ) {
    this.state = state;
    this.post({ type: 'state', state, ...extra });
  }

  private emit(level: LogLevel, message: string, details: unknown[]): void {
    this.post({ type: 'log', record: createLogRecord(this.name, level, message, details) });
  }

  private readonly log: Logger = {
    debug: (message, ...details) => this.emit('debug', message, details),
    info: (message, ...details) => this.emit('info', message, details),
    warn: (message, ...details) => this.emit('warn', message, details),
    error: (message, ...details) => this.emit('error', message, details),
  };

  private async init(message: InitMessage): Promise<void> {
    this.name = message.actor.name;
    this.control = new Int32Array(message.control);
    captureConsole(this.log);
    try {
      const storeModule = (await import(message.store.module)) as { connectStore?: ConnectStore };
      if (typeof storeModule.connectStore !== 'function') {
        throw new TypeError(`store module ${message.store.module} does not export connectStore()`);
      }
      this.store = await storeModule.connectStore(message.store as StoreDescriptor);
      if (this.store.ownerId !== undefined) this.post({ type: 'store-owner', ownerId: this.store.ownerId });
      const links: Record<string, Link> = {};
      for (const [linkName, descriptor] of Object.entries(message.links)) {
        links[linkName] = await openLink(descriptor);
      }
      this.links = Object.values(links);
      const module = (await import(message.actor.moduleUrl)) as Record<string, unknown>;
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
      }) as Actor<unknown>;
      if (typeof (this.actor as { runStep?: unknown }).runStep !== 'function') {
        throw new TypeError(`actor class "${message.actor.className}" has no runStep() method; add one`);
      }
      this.setState('waiting');
    } catch (error) {
      this.log.error('failed to load', error);
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
          this.setUp = true;
          this.setState('ready');
        } catch (error) {
          this.log.error('setup() failed', error);
          this.setState('failed', { error: serializeError(error), phase: 'setup' });
        }
        return;
      case 'run':
        if (this.state !== 'ready' && this.state !== 'stopped') return this.ignored(signal);
        // Report first: a runStep() that never yields must not keep the state change from Nexus.
        this.setState('running');
        this.startLoop(actor);
        return;
      case 'pause':
        if (this.state !== 'running') return this.ignored(signal);
        await this.endLoop();
        this.setState('paused');
        return;
      case 'resume':
        if (this.state !== 'paused') return this.ignored(signal);
        this.setState('running');
        this.startLoop(actor);
        return;
      case 'stop':
        if (this.state !== 'running' && this.state !== 'paused') return this.ignored(signal);
        await this.endLoop();
        await this.callStop(actor);
        this.setState('stopped');
        return;
    }
  }

  private ignored(signal: Signal): void {
    this.log.warn(`ignored signal "${signal}" in state ${this.state}`);
  }

  private startLoop(actor: Actor<unknown>): void {
    for (const link of this.links) link.clearInterrupt();
    this.running = true;
    this.loop = this.runLoop(actor);
  }

  /** Ends the runStep loop promptly: a pending get()/put() is interrupted, the current step settles. */
  private async endLoop(): Promise<void> {
    this.running = false;
    const reason = new InterruptedError(`actor "${this.name}": interrupted by a signal`);
    for (const link of this.links) link.interrupt(reason);
    await this.loop;
    this.loop = undefined;
  }

  private async runLoop(actor: Actor<unknown>): Promise<void> {
    const control = this.control!;
    let seenControl = Atomics.load(control, 0);
    let lastYield = performance.now();
    let lastError = '';
    let repeats = 0;
    let lastSummary = 0;
    while (this.running) {
      try {
        const step = actor.runStep();
        if (step !== undefined) await step;
        if (repeats > 0) this.summariseErrors(lastError, repeats);
        lastError = '';
        repeats = 0;
      } catch (error) {
        if (!this.running && InterruptedError.isInstance(error)) break;
        const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        const now = performance.now();
        if (text === lastError) {
          repeats += 1;
          if (now - lastSummary >= ERROR_SUMMARY_EVERY_MS) {
            this.summariseErrors(lastError, repeats);
            repeats = 0;
            lastSummary = now;
          }
        } else {
          if (repeats > 0) this.summariseErrors(lastError, repeats);
          this.log.error('runStep() threw; the loop goes on:', error);
          lastError = text;
          repeats = 0;
          lastSummary = now;
        }
        // A step that throws at once would otherwise starve the control channel.
        await yieldToEventLoop();
        lastYield = performance.now();
        continue;
      }
      const current = Atomics.load(control, 0);
      const now = performance.now();
      if (current !== seenControl || now - lastYield >= YIELD_EVERY_MS) {
        seenControl = current;
        await yieldToEventLoop();
        lastYield = performance.now();
      }
    }
  }

  private summariseErrors(text: string, repeats: number): void {
    this.log.error(`runStep() threw the same error ${repeats} more time${repeats === 1 ? '' : 's'}: ${text}`);
  }

  private async callStop(actor: Actor<unknown>): Promise<void> {
    try {
      await actor.stop();
    } catch (error) {
      this.log.error('stop() threw', error);
    }
  }

  private async quit(): Promise<void> {
    if (this.actor && this.setUp && ['ready', 'running', 'paused'].includes(this.state)) {
      await this.endLoop();
      await this.callStop(this.actor);
    }
    for (const link of this.links) link.close();
    try {
      await this.store?.close();
    } catch (error) {
      this.log.warn('closing the store client failed', error);
    }
    this.setState('exited');
    this.endpoint.close();
  }
}

async function openLink(descriptor: LinkDescriptor): Promise<Link> {
  const module = (await import(descriptor.module)) as { openLink?: OpenLink };
  if (typeof module.openLink !== 'function') {
    throw new TypeError(`transport module ${descriptor.module} does not export openLink()`);
  }
  return module.openLink(descriptor);
}

/** Routes the actor's console output into the pipeline log, so a `console.log` is not lost. */
function captureConsole(log: Logger): void {
  const route =
    (level: keyof Logger) =>
    (first?: unknown, ...rest: unknown[]) =>
      log[level](typeof first === 'string' ? first : '', ...(typeof first === 'string' ? rest : [first, ...rest]));
  console.log = route('info');
  console.info = route('info');
  console.debug = route('debug');
  console.warn = route('warn');
  console.error = route('error');
}
