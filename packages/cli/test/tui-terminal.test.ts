// The live UI in a real terminal: `improv run apps/minimal/minimal.yaml` inside tmux (80×24), driven
// by keys sent to it, its screen read back — as a person sees it. A second "terminal" (improv list)
// sees the same run. tmux's own server is private to the test (-L) and ends with it.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { alive, until } from './_run.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');
const socket = `improv-test-${process.pid}`;
const session = 'ui';
const home = mkdtempSync(join(tmpdir(), 'improv-home-'));
const exitFile = join(home, 'exit-code');

const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const screen = () => tmux('capture-pane', '-p', '-t', session);
const open = () => spawnSync('tmux', ['-L', socket, 'has-session', '-t', session]).status === 0;

afterAll(() => {
  spawnSync('tmux', ['-L', socket, 'kill-server']);
});

/** The numbers of an actor's row: IN/S OUT/S STEP/S ERR … */
function row(text: string, actor: string): string[] {
  const line = text.split('\n').find((each) => each.startsWith(`${actor} `));
  return line?.trim().split(/\s+/) ?? [];
}

describe('the live UI in a terminal', () => {
  it('shows the running pipeline with changing rates, takes keys and typed commands, and quits', async () => {
    // CI=true makes Ink draw nothing live: the UI is for a person, so the test's terminal is not "CI".
    const command = `env -u CI IMPROV_HOME=${home} NO_COLOR=1 ${process.execPath} ${bin} run ${minimal} --no-log-files; echo $? > ${exitFile}`;
    tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '24', command);
    await until(() => open() && /Generator/.test(screen()) && /Processor/.test(screen()), 'the UI to draw', 30_000);
    const first = screen();
    expect(first).toMatch(/^improv minimal-[0-9a-f]{4}\s+waiting/m);
    expect(first).toMatch(/ACTOR\s+STATE/);
    expect(first).toContain('Generator.q_out → Processor.q_in');
    expect(first).toMatch(/F2 setup/);
    expect(Math.max(...first.split('\n').map((line) => line.length))).toBeLessThanOrEqual(80);

    tmux('send-keys', '-t', session, 'F2');
    await until(() => /^improv \S+\s+ready/m.test(screen()), 'ready after F2 (setup)');
    tmux('send-keys', '-t', session, 'F3');
    await until(() => /^improv \S+\s+running/m.test(screen()), 'running after F3 (run)');
    // Rates: the generator's steps/s goes from nothing to its 200 Hz pace, and keeps being redrawn.
    await until(() => Number(row(screen(), 'Generator')[4]) > 50, 'Generator steps/s above 50', 20_000);
    const early = row(screen(), 'Processor').join(' ');
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const later = row(screen(), 'Processor').join(' ');
    expect(later).not.toBe(early);

    // A second terminal sees the same run.
    const list = spawnSync(process.execPath, [bin, 'list'], {
      env: { ...process.env, IMPROV_HOME: home },
      encoding: 'utf8',
    });
    expect(list.stdout).toMatch(/minimal-[0-9a-f]{4}\s+\S+\s+running/);

    // Typed commands: case does not matter; a refusal is shown, not fatal.
    tmux('send-keys', '-t', session, 'PAUSE', 'Enter');
    await until(() => /pause: done, the pipeline is paused/.test(screen()), 'the typed pause');
    tmux('send-keys', '-t', session, 'pause', 'Enter');
    await until(() => /refused: cannot pause/.test(screen()), 'the refusal of a second pause');
    tmux('send-keys', '-t', session, 'F5');
    await until(() => /^improv \S+\s+running/m.test(screen()), 'running again after F5 (resume)');

    tmux('send-keys', '-t', session, 'F10');
    await until(() => existsSync(exitFile), 'improv to exit after F10 (quit)', 30_000);
    expect(readFileSync(exitFile, 'utf8').trim()).toBe('0');
  });

  it('quits cleanly when its terminal goes and no SIGHUP reaches it: every stop() runs, exit 0', {
    timeout: 120_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'improv-terminal-gone-'));
    const pidFile = join(dir, 'pid');
    const exit = join(dir, 'exit-code');
    const runDir = join(dir, 'run');
    // improv in a session of its own (setsid) on the pane's terminal (fd 3 to its stdin, since a
    // background job's stdin would be /dev/null): closing the terminal sends the kernel's SIGHUP to
    // the pane's session only, so improv learns of it from its reads and writes alone.
    const improv = `env -u CI IMPROV_HOME=${home} NO_COLOR=1 ${process.execPath} ${bin} run ${minimal} --run-dir ${runDir}`;
    const inner = `${improv} <&3 3<&- & echo $! > ${pidFile}; wait $!; echo $? > ${exit}`;
    tmux('new-session', '-d', '-s', 'gone', '-x', '80', '-y', '24', `setsid sh -c '${inner}' 3<&0; sleep 600`);
    const pane = () => tmux('capture-pane', '-p', '-t', 'gone');
    await until(() => existsSync(pidFile) && /^Processor /m.test(pane()), 'the UI to draw', 30_000);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    try {
      tmux('send-keys', '-t', 'gone', 'F2');
      await until(() => /^improv \S+\s+ready/m.test(pane()), 'ready after F2 (setup)');
      // The pane's terminal goes away (its master closed); improv's process gets no SIGHUP.
      tmux('kill-session', '-t', 'gone');
      await until(() => existsSync(exit), 'improv to quit once its terminal is gone', 30_000);
      expect(readFileSync(exit, 'utf8').trim()).toBe('0');
      const log = readFileSync(join(runDir, 'improv.log'), 'utf8');
      expect(log).toContain('command quit (given by the live UI: its terminal is gone, closed without a SIGHUP)');
      expect(log).toMatch(/Processor: processed \d+ frames/);
      expect(log).toContain('nexus: pipeline exited');
    } finally {
      if (alive(pid)) process.kill(pid, 'SIGKILL');
    }
  });
});
