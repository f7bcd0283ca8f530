// Runs apps/python-analysis as `improv run` does (its YAML, the CLI's default store and transports)
// with the Python interpreter a user would have first on PATH: the Debian one, which has numpy, pyzmq
// and msgpack (IMPROV_TEST_PYTHON to use another). Skipped when that interpreter lacks them.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createDefaultNexus } from '@improv/cli';
import type { Nexus } from '@improv/core';
import { describe, expect, it } from 'vitest';

const python = process.env.IMPROV_TEST_PYTHON ?? '/usr/bin/python3';
const hasPython = spawnSync(python, ['-c', 'import numpy, zmq, msgpack'], { encoding: 'utf8' }).status === 0;
const config = fileURLToPath(new URL('../python_analysis.yaml', import.meta.url));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The `(x, y)` points in `text`. */
function points(text: string | undefined): [number, number][] {
  return [...(text ?? '').matchAll(/\((\d+), (\d+)\)/g)].map((m) => [Number(m[1]), Number(m[2])]);
}

/** The same cell: the analysis finds a cell's centre to within a pixel or two of where the camera drew it. */
const near = (a: [number, number], b: [number, number]) => Math.hypot(a[0] - b[0], a[1] - b[1]) <= 2;

/** Whether process `pid` is alive. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!hasPython)('apps/python-analysis', () => {
  it('closes the loop camera (TypeScript) → analysis (Python) → stimulus (TypeScript) → camera', async () => {
    const lines: string[] = [];
    const log = () => lines.join('\n');
    // The YAML names no interpreter: python3 from PATH, as a user runs it.
    const path = process.env.PATH;
    process.env.PATH = `${dirname(python)}:${path}`;
    let nexus: Nexus | undefined;
    try {
      nexus = await createDefaultNexus({
        config,
        runDir: false,
        handleSignals: false,
        onEvent: (event) => {
          if (event.type === 'log') lines.push(`${event.record.source}: ${event.record.message}`);
        },
      });
      await nexus.setup();
      await nexus.run();
      // Until every cell was tried once (the silent one is then left out) and the next trial began. Trials
      // are counted in frames by the analysis, so a slow machine only takes longer; the cap only ends a hung run.
      const everyCellTried = () => {
        const found = Number(/Analysis: found (\d+) cells/.exec(log())?.[1] ?? Number.NaN);
        const tried = log().match(/Analysis: cell \d+ at \(\d+, \d+\) (responds|does not respond)/g)?.length ?? 0;
        return tried >= found && /Stimulus: .*frames\/s/.test(log().slice(log().lastIndexOf('Analysis: cell ')));
      };
      for (let i = 0; i < 1800 && !everyCellTried(); i++) await sleep(50);
      const status = nexus.status();
      const analysis = status.actors.find((actor) => actor.name === 'Analysis')!;
      const link = (from: string, to: string) =>
        status.links.find((entry) => entry.from.actor === from && entry.to.actor === to)!;
      await nexus.stop();
      const pid = analysis.process?.pid;
      await nexus.quit();
      nexus = undefined;
      const text = log();

      // The analysis ran in a Python process of its own, and frames went through it and back.
      expect(text).toContain('nexus: in processes of their own: Analysis (python)');
      expect(analysis.process?.runtime).toBe('python');
      expect(pid).toBeTypeOf('number');
      expect(pid).not.toBe(process.pid);
      expect(text).toMatch(/Analysis: numpy \d+\.\d+/);
      expect(link('Camera', 'Analysis').sent, text).toBeGreaterThan(0);
      expect(link('Analysis', 'Stimulus').sent, text).toBeGreaterThan(0);
      expect(link('Stimulus', 'Camera').sent, text).toBeGreaterThan(1);
      const [, analysed] = /Stimulus: analysed (\d+) frames/.exec(text) ?? [];
      expect(Number(analysed), text).toBeGreaterThan(0);

      // The loop closes: the analysis found the camera's cells; each stimulus it decided reached the
      // camera, which lit that cell; the analysis saw the responses and left out exactly the cell that
      // the camera made unresponsive — and then went on choosing other cells.
      const cameraCells = points(/Camera: .*; \d+ cells at ((?:\(\d+, \d+\) ?)+)/.exec(text)?.[1]);
      const [silent] = points(/not responding to the stimulus: (\(\d+, \d+\))/.exec(text)?.[1]);
      const found = points(
        /Analysis: found \d+ cells in the mean of \d+ frames: ((?:\(\d+, \d+\) ?)+)/.exec(text)?.[1],
      );
      expect(cameraCells.length, text).toBeGreaterThan(1);
      expect(found.length, text).toBe(cameraCells.length);
      expect(
        cameraCells.every((cell) => found.some((spot) => near(spot, cell))),
        text,
      ).toBe(true);
      const leftOut = [...text.matchAll(/Analysis: cell \d+ at (\(\d+, \d+\)) does not respond/g)].flatMap((m) =>
        points(m[1]),
      );
      expect(leftOut, text).toHaveLength(1);
      expect(near(leftOut[0]!, silent!), text).toBe(true);
      const responses = [...text.matchAll(/Analysis: cell \d+ at \(\d+, \d+\) responds: \+(\d+\.\d+)/g)];
      expect(responses.length, text).toBe(cameraCells.length - 1);
      for (const [, value] of responses) expect(Number(value)).toBeGreaterThanOrEqual(0.4);
      const [, changed] = /Stimulus: .* the stimulus changed (\d+) times/.exec(text) ?? [];
      const [, applied] = /Camera: made \d+ frames; the stimulus changed (\d+) times/.exec(text) ?? [];
      expect(Number(changed), text).toBeGreaterThanOrEqual(cameraCells.length + 1);
      expect(Number(applied), text).toBeGreaterThanOrEqual(cameraCells.length);
      expect(text).toMatch(/Analysis: analysed \d+ frames; cell 0 at/);

      // Nothing is left: the Python process ended with the pipeline, and the temporary LMDB store is gone.
      expect(alive(pid!)).toBe(false);
      expect(readdirSync(tmpdir()).filter((name) => name.startsWith(`improv-${process.pid}-`))).toEqual([]);
    } finally {
      process.env.PATH = path;
      await nexus?.quit();
    }
  });
});
