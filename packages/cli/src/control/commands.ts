/**
 * Carries out a typed command line on a Nexus — the one place where the prompt, the TUI, the control
 * server and `improv cmd` turn `pause` or `revive Processor` into a call and a {@link CommandResult}.
 * @module
 */
import { CommandRefusedError, type Nexus } from '@improv/core';
import { commandHelpText, parseCommandLine } from '../command-line.ts';
import { formatStatus } from '../output.ts';
import type { CommandResult } from './protocol.ts';

/** What a person can type next, after each command that went through. */
const nextHints: Record<string, string> = {
  setup: 'run to start',
  run: 'pause, stop or status',
  pause: 'resume to go on, or stop',
  resume: 'pause, stop or status',
  stop: 'run to start again, or quit',
};

/**
 * Gives `line` to `nexus`. `by` says who gave it (`prompt`, `client 127.0.0.1:51234`, `script`),
 * for the run log. Never throws for a refused or failed command: the result says so.
 */
export async function executeCommandLine(nexus: Nexus, line: string, by: string): Promise<CommandResult> {
  // No actor list: `revive` of an unknown actor goes to Nexus, whose refusal (with "did you mean") is in the run log.
  const parsed = parseCommandLine(line);
  switch (parsed.kind) {
    case 'empty':
      return { ok: true, message: '' };
    case 'help':
      return { ok: true, message: commandHelpText() };
    case 'error':
      return { ok: false, code: 'unknown', message: parsed.message };
    case 'revive':
      return settle(
        () => nexus.revive(parsed.actor, { by }),
        () => `revived ${parsed.actor}`,
      );
    case 'command': {
      const { command } = parsed;
      if (command === 'status') return { ok: true, message: formatStatus(nexus.status()) };
      const hint = nextHints[command];
      return settle(
        () => nexus.command(command, { by }),
        () => `${command}: done, the pipeline is ${nexus.status().state}${hint ? `; type ${hint}` : ''}`,
      );
    }
  }
}

/** Runs `call`; a refusal or a failure becomes the result, any other error too (with its message). */
async function settle(call: () => Promise<void>, done: () => string): Promise<CommandResult> {
  try {
    await call();
    return { ok: true, message: done() };
  } catch (error) {
    if (CommandRefusedError.isInstance(error)) return { ok: false, code: 'refused', message: (error as Error).message };
    return { ok: false, code: 'failed', message: (error as Error).message };
  }
}
