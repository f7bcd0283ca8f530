/**
 * The live terminal UI (`improv run`'s screen, `improv client`, `improv top`): Ink over a
 * {@link LiveSource}. `full` shows the header, the actors and links tables, the store, the log with
 * its filters and the command line; `top` the tables only.
 * @module
 */
import process from 'node:process';
import type { LogLevel } from '@improv/core';
import { render } from 'ink';
import React from 'react';
import type { LiveSource } from '../control/protocol.ts';
import { endOfInputError, isHangUpError } from '../prompt.ts';
import { App } from './app.ts';
import { TuiController, type TuiExit } from './controller.ts';

export type { TuiExit } from './controller.ts';
export { TuiController } from './controller.ts';
export { decodeKeys, type Key } from './keys.ts';
export { LiveModel, LOG_LIMIT } from './model.ts';
export { type Line, renderScreen, type Segment, screenText, type ViewState } from './view.ts';

/** Options of {@link startTui}. */
export interface TuiOptions {
  /** `full`: the whole UI with the log and the command line; `top`: the actors and links tables only. */
  mode: 'full' | 'top';
  /** Where keys come from (default `process.stdin`; tests pass a fake with `setRawMode`). */
  stdin?: NodeJS.ReadStream | undefined;
  /** Where the UI is drawn (default `process.stdout`; its `columns`/`rows` and `resize` events size it). */
  stdout?: NodeJS.WriteStream | undefined;
  /** The lowest log level shown at first (F8 changes it). Default `info`. */
  logLevel?: LogLevel | undefined;
  /** What the header calls the run (default: its id). */
  title?: string | undefined;
  /**
   * Write every frame whole, unthrottled, without the alternate screen (Ink's debug mode): for
   * tests, which read the last frame written. Ink writes nothing while it runs when the `CI`
   * environment variable is set, except in this mode.
   */
  debug?: boolean | undefined;
  /** Whether to colour; default: when stdout is a terminal and `NO_COLOR` is not set (`FORCE_COLOR` forces). */
  colour?: boolean | undefined;
  /** Receives the controller (tests look at its frame count and model). */
  onController?: ((controller: TuiController) => void) | undefined;
}

/**
 * Shows the live UI until the user leaves (top: q or Ctrl-C; full: Ctrl-D detaches and leaves the
 * pipeline running, `quit`/F10/Ctrl-C quits the pipeline and the UI ends with the connection, a
 * second Ctrl-C leaves at once) or the source closes. Does not close the source.
 */
export async function startTui(source: LiveSource, options: TuiOptions): Promise<void> {
  await runTui(source, options);
}

/** Colours on a terminal, unless `NO_COLOR` (or `TERM=dumb`) says not; `FORCE_COLOR` (not 0) forces them. */
function wantsColour(stdout: NodeJS.WriteStream): boolean {
  const env = process.env;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '0' && env.FORCE_COLOR !== 'false') return true;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return stdout.isTTY === true && env.TERM !== 'dumb';
}

/** {@link startTui}, resolving to how the UI ended. */
export async function runTui(source: LiveSource, options: TuiOptions): Promise<TuiExit> {
  const stdout = options.stdout ?? process.stdout;
  const stdin = options.stdin ?? process.stdin;
  const debug = options.debug === true;
  // The controller listens before the source is asked for its stream, so the log's history is not missed.
  const controller = new TuiController(source, {
    mode: options.mode,
    title: options.title,
    logLevel: options.logLevel,
    columns: stdout.columns,
    rows: stdout.rows,
    colour: options.colour ?? wantsColour(stdout),
  });
  options.onController?.(controller);
  // Nothing streams until asked; asked only now that the controller listens, so no history is missed.
  source.subscribe(options.mode === 'full' ? { metrics: true, logs: true, history: 200 } : { metrics: true });

  const left = new Promise<TuiExit>((resolve) => controller.onLeave(resolve));
  // A terminal gets the alternate screen (what was there before comes back at the end).
  const fullScreen = !debug && stdout.isTTY === true;
  // A closed terminal fails reads with EIO while its SIGHUP quits the pipeline: not a crash.
  // Left on after the UI: the error may come while the pipeline still quits.
  if (!stdin.listeners('error').includes(endOfInputError)) stdin.on('error', endOfInputError);
  // A terminal can go without a SIGHUP reaching us (a tmux pane or ssh session killed while improv is
  // in another process group or ignores SIGHUP): reads and writes then fail with EIO, or the input
  // ends (a terminal's input has no end of its own: Ctrl-D is a key). The UI ends, saying so.
  const terminalGone = () => controller.leave('terminal-gone');
  const failed = (error: { code?: string }) => {
    if (isHangUpError(error)) terminalGone();
  };
  stdin.on('end', terminalGone);
  stdin.on('error', failed);
  stdout.on('error', failed);
  if (fullScreen) stdout.write('\x1b[?1049h\x1b[H');
  const instance = render(React.createElement(App, { controller }), {
    stdout,
    stdin,
    exitOnCtrlC: false,
    // Stray console output goes above the UI on a real terminal; tests keep their console.
    patchConsole: options.stdout === undefined,
    debug,
  });
  // Asked for now: the promise is made on the first call, and an unmount before it would never settle it.
  const exited = instance.waitUntilExit().catch(() => {});
  source.closed.then(
    () => controller.leave('closed'),
    () => controller.leave('closed'),
  );
  let why: TuiExit;
  try {
    why = await left;
  } finally {
    stdin.off('end', terminalGone);
    stdin.off('error', failed);
    stdout.off('error', failed);
    controller.dispose();
    instance.unmount();
    await exited;
    if (fullScreen && controller.exit !== 'terminal-gone') stdout.write('\x1b[?1049l');
  }
  return why;
}
