/**
 * Signals, states and the gates between them.
 *
 * Per actor: `starting → waiting → ready → running ⇄ paused → stopped`, plus `failed` and `exited`.
 * The pipeline moves through the same states as a whole; commands are gated as in improv (setup once
 * every actor is waiting, run once every actor is ready) and a command given in the wrong state is
 * refused with a message that says what state the pipeline is in and what to do.
 *
 * No imports, so a browser bundle can take it (`@improv/core/signals`: the dashboard's page greys
 * out the commands the gates refuse).
 * @module
 */

/** State of one actor. */
export type ActorState = 'starting' | 'waiting' | 'ready' | 'running' | 'paused' | 'stopped' | 'failed' | 'exited';

/** State of the pipeline as a whole. */
export type PipelineState =
  | 'starting'
  | 'waiting'
  | 'setting-up'
  | 'ready'
  | 'running'
  | 'pausing'
  | 'paused'
  | 'resuming'
  | 'stopping'
  | 'stopped'
  | 'quitting'
  | 'exited';

/** Signals Nexus sends to actors. */
export type Signal = 'setup' | 'run' | 'pause' | 'resume' | 'stop' | 'quit';

/** Commands a client gives Nexus. */
export type Command = Signal | 'status';

/** Every command, in the order `help` lists them. */
export const commands: readonly Command[] = ['setup', 'run', 'pause', 'resume', 'stop', 'quit', 'status'];

/** What each command does, for help texts. */
export const commandHelp: Readonly<Record<Command, string>> = {
  setup: 'call every actor’s setup() (once all actors are loaded)',
  run: 'start calling runStep() in every actor (once all are set up)',
  pause: 'stop calling runStep() until resume',
  resume: 'go on after pause',
  stop: 'stop the run and call every actor’s stop(); run starts again',
  quit: 'stop if needed, end every actor and exit',
  status: 'show the state of the pipeline and of every actor',
};

/** For each signal: the pipeline states it is accepted in, the state while it acts, and the target. */
export const signalGates: Readonly<
  Record<Exclude<Signal, 'quit'>, { from: readonly PipelineState[]; during: PipelineState; to: ActorState }>
> = {
  setup: { from: ['waiting'], during: 'setting-up', to: 'ready' },
  run: { from: ['ready', 'stopped'], during: 'running', to: 'running' },
  pause: { from: ['running'], during: 'pausing', to: 'paused' },
  resume: { from: ['paused'], during: 'resuming', to: 'running' },
  stop: { from: ['running', 'paused'], during: 'stopping', to: 'stopped' },
};

/**
 * Whether a failed actor keeps `signal` from being given: setup and run are refused while any actor
 * has failed (it must be fixed, or revived); pause, resume and stop still apply to the rest.
 */
export function refusedWhileFailed(signal: Exclude<Signal, 'quit'>): boolean {
  return signal === 'setup' || signal === 'run';
}

/** What to do instead, when `signal` is given while the pipeline is `state`. */
export function refusalAdvice(signal: Exclude<Signal, 'quit'>, state: PipelineState): string {
  switch (state) {
    case 'starting':
      return 'the actors are still loading; wait until the pipeline is waiting (see status), then setup';
    case 'waiting':
      return 'run setup first';
    case 'setting-up':
    case 'pausing':
    case 'resuming':
    case 'stopping':
      return 'another command is still in progress; wait for it to finish (see status)';
    case 'ready':
      return signal === 'setup' ? 'setup is done; run starts it' : 'run starts it';
    case 'running':
      return signal === 'run' || signal === 'resume' ? 'it is already running' : 'pause or stop it first';
    case 'paused':
      return signal === 'pause' ? 'it is already paused' : 'resume goes on; stop stops it';
    case 'stopped':
      return signal === 'setup' ? 'setup runs once per pipeline; run starts it again' : 'run starts it again';
    case 'quitting':
    case 'exited':
      return 'the pipeline is shutting down; start it again to run';
  }
}
