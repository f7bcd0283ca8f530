import { commands } from '@improv/core';
import { describe, expect, it } from 'vitest';
import {
  commandHelpText,
  completions,
  parseCommandLine,
  resolveCommandWord,
  suggestCommand,
} from '../src/command-line.ts';

const actors = ['Generator', 'Processor'];

function errorOf(line: string, names?: readonly string[]): string {
  const parsed = parseCommandLine(line, names);
  if (parsed.kind !== 'error') throw new Error(`expected an error for "${line}", got ${JSON.stringify(parsed)}`);
  return parsed.message;
}

describe('parseCommandLine', () => {
  it('reads every command, whatever its case and the space around it', () => {
    for (const command of commands) expect(parseCommandLine(command)).toEqual({ kind: 'command', command });
    expect(parseCommandLine('RUN')).toEqual({ kind: 'command', command: 'run' });
    expect(parseCommandLine('  Pause \t')).toEqual({ kind: 'command', command: 'pause' });
  });

  it('takes exit for quit, ? and help for help, and a blank line for nothing', () => {
    expect(parseCommandLine('exit')).toEqual({ kind: 'command', command: 'quit' });
    expect(parseCommandLine('EXIT')).toEqual({ kind: 'command', command: 'quit' });
    expect(parseCommandLine('?')).toEqual({ kind: 'help' });
    expect(parseCommandLine('Help')).toEqual({ kind: 'help' });
    expect(parseCommandLine('')).toEqual({ kind: 'empty' });
    expect(parseCommandLine('   ')).toEqual({ kind: 'empty' });
  });

  it('answers a typo with "did you mean"', () => {
    expect(errorOf('pasue')).toBe('unknown command "pasue"; did you mean "pause"? (help lists the commands)');
    expect(errorOf('stpo')).toMatch(/did you mean "stop"\?/);
    expect(errorOf('Setpu')).toMatch(/did you mean "setup"\?/);
    expect(errorOf('stat')).toMatch(/did you mean "status"\?/);
    expect(errorOf('reviev Processor')).toMatch(/did you mean "revive Processor"\?/);
  });

  it('answers a word like no command with the help listing', () => {
    expect(errorOf('jump')).toBe(`unknown command "jump"\n${commandHelpText()}`);
  });

  it('says wait is for scripts, and that at the prompt the next command is typed when ready', () => {
    const message = errorOf('wait 2s');
    expect(message).toMatch(/^wait is for scripts only \(improv run --script "setup; run; wait 2s; stop; quit"\)/);
    expect(message).toMatch(/at the prompt, just type the next command when you are ready$/);
    expect(errorOf('Sleep 1s')).toMatch(/^sleep is for scripts only/);
  });

  it('refuses words after a command that takes none', () => {
    expect(errorOf('setup run')).toBe(
      'setup takes nothing after it; give one command per line ("setup", then "run" when it is done)',
    );
    expect(errorOf('exit now')).toMatch(/^quit takes nothing after it/);
  });

  it('reads revive <actor>, passing the name on as typed without the actor list', () => {
    expect(parseCommandLine('revive Processor')).toEqual({ kind: 'revive', actor: 'Processor' });
    expect(parseCommandLine('REVIVE Nobody')).toEqual({ kind: 'revive', actor: 'Nobody' });
  });

  it('explains revive without a name or with too many', () => {
    expect(errorOf('revive')).toBe('revive takes the name of the actor to start again: revive <actor>');
    expect(errorOf('revive', actors)).toBe(
      'revive takes the name of the actor to start again: revive <actor>; the actors are Generator, Processor',
    );
    expect(errorOf('revive Generator Processor')).toBe(
      'revive takes one actor name, not 2 ("Generator Processor"): revive <actor>, one per line',
    );
  });

  it('with the actor list: corrects the case of a name, and answers an unknown one with did you mean and the list', () => {
    expect(parseCommandLine('revive processor', actors)).toEqual({ kind: 'revive', actor: 'Processor' });
    expect(errorOf('revive Procesor', actors)).toBe(
      'there is no actor "Procesor" (the actors are Generator, Processor); did you mean "revive Processor"?',
    );
    expect(errorOf('revive Camera', actors)).toBe('there is no actor "Camera" (the actors are Generator, Processor)');
  });
});

describe('resolveCommandWord and suggestCommand', () => {
  it('resolve a word case aside, and suggest the closest or the only command it starts', () => {
    expect(resolveCommandWord('Status')).toBe('status');
    expect(resolveCommandWord('exit')).toBe('quit');
    expect(resolveCommandWord('jump')).toBeUndefined();
    expect(suggestCommand('rnu')).toBe('run');
    expect(suggestCommand('q')).toBe('quit');
    // "s" starts setup, stop and status: no guess.
    expect(suggestCommand('s')).toBeUndefined();
    expect(suggestCommand('wiat')).toBeUndefined();
    expect(suggestCommand('wiat', ['wait'])).toBe('wait');
  });
});

describe('completions', () => {
  it('completes command words, case aside', () => {
    expect(completions('')).toEqual([...commands, 'revive', 'help']);
    expect(completions('s')).toEqual(['setup', 'stop', 'status']);
    expect(completions('R')).toEqual(['run', 'resume', 'revive']);
    expect(completions('  pau')).toEqual(['  pause']);
    expect(completions('jump')).toEqual([]);
  });

  it('completes actor names after revive', () => {
    expect(completions('revive ', actors)).toEqual(['revive Generator', 'revive Processor']);
    expect(completions('revive pro', actors)).toEqual(['revive Processor']);
    expect(completions('Revive G', actors)).toEqual(['revive Generator']);
    expect(completions('revive X', actors)).toEqual([]);
    expect(completions('pause ', actors)).toEqual([]);
    expect(completions('revive Generator x', actors)).toEqual([]);
  });
});

describe('commandHelpText', () => {
  it('lists every command with what it does, then revive, help and exit', () => {
    const text = commandHelpText();
    expect(text.startsWith('commands:\n')).toBe(true);
    for (const command of commands) expect(text).toMatch(new RegExp(`^ {2}${command} +\\S`, 'm'));
    expect(text).toMatch(/^ {2}revive <actor> +start a failed actor again/m);
    expect(text).toMatch(/^ {2}help +this list \(\? does the same\)$/m);
    expect(text).toMatch(/^ {2}exit +the same as quit$/m);
  });
});
