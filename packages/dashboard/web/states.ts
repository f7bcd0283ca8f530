/**
 * The colours of states, one palette for the whole page (graph boxes, badges, tables, the status),
 * and which command applies in which pipeline state.
 * @module
 */
import { type ActorState, type PipelineState, refusedWhileFailed, signalGates } from '@improv/core/signals';

/** What the page's connection can be in, besides the pipeline's own states. */
export type ConnectionState = 'connecting' | 'closed' | 'lost' | 'refused' | 'no-token';

export const stateColours: Readonly<Record<ActorState | PipelineState | ConnectionState, string>> = {
  starting: '#8b949e',
  waiting: '#39c5cf',
  ready: '#58a6ff',
  running: '#3fb950',
  paused: '#d29922',
  stopped: '#bc8cff',
  failed: '#f85149',
  exited: '#6e7681',
  // A pipeline between two states has the colour of where it goes.
  'setting-up': '#58a6ff',
  pausing: '#d29922',
  resuming: '#3fb950',
  stopping: '#bc8cff',
  quitting: '#6e7681',
  connecting: '#8b949e',
  closed: '#6e7681',
  lost: '#f85149',
  refused: '#f85149',
  'no-token': '#f85149',
};

export function colourOf(state: string): string {
  return (stateColours as Record<string, string>)[state] ?? '#8b949e';
}

/** States a pipeline passes through while a command acts. */
export const transitional: ReadonlySet<string> = new Set([
  'starting',
  'setting-up',
  'pausing',
  'resuming',
  'stopping',
  'quitting',
]);

/** The command buttons, in the order of the header. */
export const commandButtons = ['setup', 'run', 'pause', 'resume', 'stop', 'quit'] as const;
export type CommandButton = (typeof commandButtons)[number];

/**
 * Whether `command` is accepted in pipeline `state`, as core's `signalGates` say (the server decides;
 * this only greys out the buttons that it would refuse): setup and run not while an actor has failed
 * (`anyFailed`). `quit` is accepted until the pipeline quits.
 */
export function commandApplies(command: CommandButton, state: string, anyFailed = false): boolean {
  if (command === 'quit') return state !== 'quitting' && state !== 'exited';
  if (anyFailed && refusedWhileFailed(command)) return false;
  return (signalGates[command].from as readonly string[]).includes(state);
}

/** An actor that `revive` can start again. */
export function revivable(state: string): boolean {
  return state === 'failed' || state === 'exited';
}
