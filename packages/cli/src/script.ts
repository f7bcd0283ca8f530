/**
 * Command scripts: `setup; run; wait 2s; stop; quit`, for non-interactive runs.
 * @module
 */
import { type Command, commands } from '@improv/core';
import { resolveCommandWord, suggestCommand } from './command-line.ts';

/** One step of a script. */
export type ScriptStep =
  | { kind: 'command'; command: Command }
  | { kind: 'wait'; ms: number; text: string }
  | { kind: 'revive'; actor: string };

/**
 * Parses a script; throws a `SyntaxError` naming the step and the fix. Steps are read as the prompt
 * reads a command line (`RUN` is `run`, `exit` is `quit`, a typo gets "did you mean"), plus `wait`.
 */
export function parseScript(script: string): ScriptStep[] {
  const steps: ScriptStep[] = [];
  const parts = script
    .split(/[;\n]/)
    .map((part) => part.trim())
    .filter((part) => part.length > 0);
  const allSteps = `${commands.join(', ')}, "revive <actor>" or "wait <duration>"`;
  parts.forEach((part, index) => {
    const [word = '', ...rest] = part.split(/\s+/);
    const where = `--script step ${index + 1} ("${part}")`;
    const lower = word.toLowerCase();
    if (lower === 'wait' || lower === 'sleep') {
      if (rest.length !== 1) throw new SyntaxError(`${where}: wait takes one duration, e.g. "wait 2s" or "wait 500ms"`);
      steps.push({ kind: 'wait', ms: parseDuration(rest[0]!, where), text: rest[0]! });
      return;
    }
    const resolved = resolveCommandWord(word);
    if (resolved === 'revive') {
      if (rest.length !== 1) throw new SyntaxError(`${where}: revive takes one actor name, e.g. "revive Processor"`);
      steps.push({ kind: 'revive', actor: rest[0]! });
      return;
    }
    if (resolved === 'help')
      throw new SyntaxError(`${where}: help is for the prompt; a script's steps are ${allSteps}`);
    if (resolved !== undefined) {
      if (rest.length > 0) {
        throw new SyntaxError(
          `${where}: ${resolved} takes nothing after it; separate steps with ";", e.g. "${resolved}; ${rest.join(' ')}"`,
        );
      }
      steps.push({ kind: 'command', command: resolved });
      return;
    }
    const suggestion = suggestCommand(word, ['wait']);
    const hint = suggestion === undefined || suggestion === 'help' ? '' : `did you mean "${suggestion}"? `;
    throw new SyntaxError(`${where}: unknown step; ${hint}use ${allSteps}`);
  });
  if (steps.length === 0) throw new SyntaxError('--script is empty; e.g. --script "setup; run; wait 2s; stop; quit"');
  return steps;
}

/** `2s`, `500ms`, `1.5m`, `1h` → milliseconds. */
export function parseDuration(text: string, where: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.toLowerCase());
  if (!match) throw new SyntaxError(`${where}: "${text}" is not a duration; write e.g. 500ms, 2s, 1.5m or 1h`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}

/** The longest single timer: setTimeout holds a 32-bit signed count of ms, and fires at once beyond it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * A script's `wait`: waits `ms`, or until `done` settles, whichever comes first; the timer never
 * outlives the wait. A wait longer than one timer can hold (`wait 600h`, beyond ~24.8 days) is
 * waited in parts, so it lasts as long as written instead of ending at once.
 */
export function sleepUnless(ms: number, done: Promise<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const slept = new Promise<void>((resolve) => {
    let left = ms;
    const next = () => {
      if (left <= 0) return resolve();
      const part = Math.min(left, MAX_TIMER_MS);
      left -= part;
      timer = setTimeout(next, part);
    };
    next();
  });
  return Promise.race([slept, done.then(() => {})]).finally(() => clearTimeout(timer));
}
