/**
 * A typed command line — at the `improv run` prompt, in the TUI's command line, sent to the control
 * server — read the same way everywhere: `pause`, `revive Processor`, `help`. Commands are not
 * case-sensitive (`RUN`, `Pause`), `exit` is `quit` and `?` is `help`; a typo gets a "did you mean",
 * and a line that cannot work says why and what to type instead.
 * @module
 */
import { type Command, closest, commandHelp, commands } from '@improv/core';

/** What a command line asks for. */
export type ParsedCommandLine =
  /** One of the pipeline's commands (`exit` is `quit`). */
  | { kind: 'command'; command: Command }
  /** `revive <actor>`: the actor as typed, or as the pipeline spells it when `actors` were given. */
  | { kind: 'revive'; actor: string }
  /** `help` or `?`. */
  | { kind: 'help' }
  /** Nothing but white space. */
  | { kind: 'empty' }
  /** Not a command: `message` says why and what to type (one or more lines). */
  | { kind: 'error'; message: string };

/** Words a command line may start with, besides the commands: what `completions` offers. */
const extraWords = ['revive', 'help'] as const;

/**
 * Reads one command line. `actors` (the pipeline's actor names), when given, lets `revive` correct
 * the case of a name (`revive processor` → `Processor`) and answer an unknown one with "did you
 * mean" and the list; without it, `revive X` is passed on as typed and Nexus refuses an unknown actor.
 */
export function parseCommandLine(line: string, actors?: readonly string[]): ParsedCommandLine {
  const [word, ...rest] = line.trim().split(/\s+/);
  if (word === undefined || word === '') return { kind: 'empty' };
  const resolved = resolveCommandWord(word);
  if (resolved === 'help') return { kind: 'help' };
  if (resolved === 'revive') return parseRevive(rest, actors);
  if (resolved !== undefined) {
    if (rest.length === 0) return { kind: 'command', command: resolved };
    return {
      kind: 'error',
      message: `${resolved} takes nothing after it; give one command per line ("${resolved}", then "${rest.join(' ')}" when it is done)`,
    };
  }
  const lower = word.toLowerCase();
  if (lower === 'wait' || lower === 'sleep') {
    return {
      kind: 'error',
      message: `${lower} is for scripts only (improv run --script "setup; run; wait 2s; stop; quit"); at the prompt, just type the next command when you are ready`,
    };
  }
  const suggestion = suggestCommand(word);
  if (suggestion !== undefined) {
    const typed = suggestion === 'revive' && rest.length > 0 ? `revive ${rest.join(' ')}` : suggestion;
    return { kind: 'error', message: `unknown command "${word}"; did you mean "${typed}"? (help lists the commands)` };
  }
  return { kind: 'error', message: `unknown command "${word}"\n${commandHelpText()}` };
}

/**
 * The command a word names, case aside: one of {@link commands}, `exit` → `quit`, `revive`, and
 * `help` or `?` → `help`; `undefined` for any other word. `--script` reads its steps with it too.
 */
export function resolveCommandWord(word: string): Command | 'revive' | 'help' | undefined {
  const lower = word.toLowerCase();
  if (lower === 'exit') return 'quit';
  if (lower === '?' || lower === 'help') return 'help';
  if (lower === 'revive') return 'revive';
  return (commands as readonly string[]).includes(lower) ? (lower as Command) : undefined;
}

/**
 * What an unknown `word` probably meant: the closest command by edit distance (`pasue` → `pause`,
 * `stpo` → `stop`), else the one command it is the start of (`stat` → `status`), else `undefined`.
 * `extra` adds words to choose from (`--script` adds `wait`).
 */
export function suggestCommand(word: string, extra: readonly string[] = []): string | undefined {
  const candidates = [...commands, ...extraWords, ...extra];
  const lower = word.toLowerCase();
  const near = closest(lower, candidates);
  if (near !== undefined) return near;
  const starting = candidates.filter((candidate) => candidate.startsWith(lower));
  return starting.length === 1 ? starting[0] : undefined;
}

function parseRevive(rest: string[], actors: readonly string[] | undefined): ParsedCommandLine {
  const list = actors && actors.length > 0 ? `; the actors are ${actors.join(', ')}` : '';
  if (rest.length === 0) {
    return { kind: 'error', message: `revive takes the name of the actor to start again: revive <actor>${list}` };
  }
  if (rest.length > 1) {
    return {
      kind: 'error',
      message: `revive takes one actor name, not ${rest.length} ("${rest.join(' ')}"): revive <actor>, one per line${list}`,
    };
  }
  const actor = rest[0]!;
  if (actors === undefined || actors.includes(actor)) return { kind: 'revive', actor };
  const sameLetters = actors.filter((name) => name.toLowerCase() === actor.toLowerCase());
  if (sameLetters.length === 1) return { kind: 'revive', actor: sameLetters[0]! };
  const near = closest(actor, actors);
  const known = actors.length > 0 ? ` (the actors are ${actors.join(', ')})` : ' (the pipeline has no actors)';
  return {
    kind: 'error',
    message: `there is no actor "${actor}"${known}${near === undefined ? '' : `; did you mean "revive ${near}"?`}`,
  };
}

/**
 * Completions of a partly typed line, whole lines that start with it (case aside; leading space
 * kept): command words (`ru` → `run`), and actor names after `revive ` (`revive Pro` →
 * `revive Processor`). For Node's readline: `completer: (line) => [completions(line, actors), line]`
 * (`startPrompt({ complete })` does that).
 */
export function completions(prefix: string, actors: readonly string[] = []): string[] {
  const line = prefix.trimStart();
  const lead = prefix.slice(0, prefix.length - line.length);
  const match = /^(\S*)(\s+)?(\S*)$/.exec(line);
  if (match === null) return [];
  const [, word = '', space, argument = ''] = match;
  const lower = word.toLowerCase();
  if (space === undefined) {
    return [...commands, ...extraWords].filter((candidate) => candidate.startsWith(lower)).map((hit) => lead + hit);
  }
  if (lower !== 'revive') return [];
  const start = argument.toLowerCase();
  return actors.filter((actor) => actor.toLowerCase().startsWith(start)).map((actor) => `${lead}revive ${actor}`);
}

/** The help listing: every command and what it does, then `revive`, `help` and `exit`. */
export function commandHelpText(): string {
  return [
    'commands:',
    ...commands.map((name) => `  ${name.padEnd(8)} ${commandHelp[name]}`),
    "  revive <actor>  start a failed actor again (its links reattached, brought to the pipeline's state)",
    '  help     this list (? does the same)',
    '  exit     the same as quit',
  ].join('\n');
}
