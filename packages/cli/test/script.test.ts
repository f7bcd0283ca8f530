import { describe, expect, it, vi } from 'vitest';
import { parseDuration, parseScript, sleepUnless } from '../src/script.ts';

describe('--script', () => {
  it('parses commands and waits separated by ; or newlines', () => {
    expect(parseScript('setup; run; wait 2s; stop\nquit')).toEqual([
      { kind: 'command', command: 'setup' },
      { kind: 'command', command: 'run' },
      { kind: 'wait', ms: 2000, text: '2s' },
      { kind: 'command', command: 'stop' },
      { kind: 'command', command: 'quit' },
    ]);
  });

  it('reads durations in ms, s, m and h', () => {
    expect(parseDuration('500ms', 'x')).toBe(500);
    expect(parseDuration('1.5m', 'x')).toBe(90_000);
    expect(parseDuration('1h', 'x')).toBe(3_600_000);
  });

  it('names the bad step and the fix', () => {
    expect(() => parseScript('setup; jump')).toThrow(/step 2 \("jump"\): unknown step; use setup, run/);
    expect(() => parseScript('wait 2 seconds')).toThrow(/wait takes one duration/);
    expect(() => parseScript('wait soon')).toThrow(/"soon" is not a duration; write e.g. 500ms/);
    expect(() => parseScript(' ; ')).toThrow(/--script is empty/);
  });
});

describe('--script reads steps as the prompt reads commands', () => {
  it('takes any case, and exit for quit', () => {
    expect(parseScript('Setup; RUN; Wait 1s; exit')).toEqual([
      { kind: 'command', command: 'setup' },
      { kind: 'command', command: 'run' },
      { kind: 'wait', ms: 1000, text: '1s' },
      { kind: 'command', command: 'quit' },
    ]);
    expect(parseScript('REVIVE Processor')).toEqual([{ kind: 'revive', actor: 'Processor' }]);
  });

  it('answers a typo with did you mean, and a missing ; with how to separate steps', () => {
    expect(() => parseScript('setup; rnu')).toThrow(/step 2 \("rnu"\): unknown step; did you mean "run"\? use setup/);
    expect(() => parseScript('wiat 2s')).toThrow(/unknown step; did you mean "wait"\?/);
    expect(() => parseScript('setup run')).toThrow(
      /step 1 \("setup run"\): setup takes nothing after it; separate steps with ";", e\.g\. "setup; run"/,
    );
    expect(() => parseScript('help')).toThrow(/help is for the prompt/);
  });
});

describe('wait', () => {
  it('waits as long as written beyond the 32-bit timer (wait 600h), and ends early when the run ends', async () => {
    vi.useFakeTimers();
    try {
      let waited = false;
      const wait = sleepUnless(parseDuration('600h', 'x'), new Promise(() => {})).then(() => {
        waited = true;
      });
      await vi.advanceTimersByTimeAsync(1000);
      expect(waited).toBe(false);
      await vi.advanceTimersByTimeAsync(600 * 3_600_000 - 1001);
      expect(waited).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await wait;
      expect(waited).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
      let quit!: () => void;
      const early = sleepUnless(3_600_000, new Promise<void>((resolve) => (quit = resolve)));
      quit();
      await early;
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
