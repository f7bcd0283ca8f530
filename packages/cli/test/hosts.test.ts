// Actors on other hosts, tested on one machine: each host is a network namespace with an
// `improv agent` in it (see @improv/cli/testing/hosts), the Nexus runs here, in the root namespace. Links to the
// hosts go over tcp with CURVE, the store is the Redis server improv starts (reachable from the
// hosts, with a password). A host whose cable is pulled is reported lost and the rest run on; a
// Nexus that dies takes its actors on the hosts with it; an agent refuses a Nexus without its token,
// and an agent or a Nexus suspended and continued is a host lost and reached again, not a token refused.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { canMakeHosts, type Host, type Hosts, makeHosts } from '@improv/cli/testing/hosts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDefaultNexus } from '../src/defaults.ts';
import { main } from '../src/main.ts';
import { alive, type Run, sleep, startRun, until } from './_run.ts';

const bin = fileURLToPath(new URL('../bin/improv.mjs', import.meta.url));
const actors = fileURLToPath(new URL('./fixtures/processes/actors.ts', import.meta.url));
const pythonActors = fileURLToPath(new URL('./fixtures/python/actors.py', import.meta.url));
const hasPython = spawnSync('/usr/bin/python3', ['-c', 'import numpy, zmq, msgpack, redis']).status === 0;
const folder = mkdtempSync(join(tmpdir(), 'improv-hosts-'));
const redisInstalled = spawnSync('redis-server', ['--version']).status === 0;
/**
 * Whether Sink has taken `count` messages from its link: sent, less what still waits or was dropped
 * (a message counts as sent once its socket has it, possibly before the connection to Sink is up).
 */
function sinkHasTaken(run: Run, count: number): boolean {
  return run.nexus
    .status()
    .links.some((link) => link.to.actor === 'Sink' && link.sent - link.depth - link.dropped >= count);
}

/** An agent running in `host`, and what it printed. */
interface Agent {
  child: ChildProcess;
  lines: string[];
}

async function startAgent(host: Host, tokenFile: string): Promise<Agent> {
  const child = host.spawn(
    process.execPath,
    [bin, 'agent', '--listen', `${host.address}:7310`, '--token-file', tokenFile],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const lines: string[] = [];
  let rest = '';
  const take = (chunk: Buffer) => {
    const parts = (rest + String(chunk)).split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  await until(() => lines.some((line) => line.includes('listening on')), `the agent in ${host.name}`);
  return { child, lines };
}

afterAll(() => rmSync(folder, { recursive: true, force: true }));

/**
 * Waits until `output()` says `restarted: running` `times` times, for as long as the Nexus keeps
 * trying: each restart it schedules (`restarts in <delay>`, doubling up to 30 s) moves the deadline
 * to that delay plus `startMs` for the start itself, so a loaded machine that needs a few more tries
 * is waited for, and a Nexus that gives up or stops trying is not. On timeout the error carries the
 * output, which says why.
 */
async function untilRestarted(output: () => string, times: number, what: string, startMs = 40_000): Promise<void> {
  const restarted = () => output().split('restarted: running').length - 1 >= times;
  let scheduled = -1;
  let end = Date.now() + startMs;
  while (!restarted()) {
    const delays = [...output().matchAll(/restarts in (\d+) (ms|s) /g)];
    if (delays.length !== scheduled) {
      scheduled = delays.length;
      const last = delays.at(-1);
      const delayMs = last === undefined ? 0 : Number(last[1]) * (last[2] === 's' ? 1000 : 1);
      end = Date.now() + delayMs + startMs;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}; the run said:\n${output()}`);
    await sleep(10);
  }
}

/** A pipeline YAML in the test folder, with `hosts` and the test actors. */
function pipeline(name: string, text: string): string {
  const file = join(folder, `${name}.yaml`);
  writeFileSync(file, text.replaceAll('ACTORS', actors));
  return file;
}

function start(file: string): Promise<Run> {
  return startRun((events) =>
    createDefaultNexus({ config: file, runDir: false, handleSignals: false, quitTimeoutMs: 3000, ...events }),
  );
}

/** {@link start}, then `setup()` and `run()`: the pipeline is running. */
async function startRunning(file: string): Promise<Run> {
  const run = await start(file);
  await run.nexus.setup();
  await run.nexus.run();
  return run;
}

describe.skipIf(!canMakeHosts() || !redisInstalled)('actors on other hosts (network namespaces)', () => {
  let lab: Hosts;
  let rig: Host;
  let scope: Host;
  const agents: Agent[] = [];
  let hostsYaml: string;

  beforeAll(async () => {
    lab = await makeHosts(2);
    [rig, scope] = lab.hosts as [Host, Host];
    // Each agent makes its token file; the Nexus side names a copy of each, as a user would.
    agents.push(await startAgent(rig, join(folder, 'rig-agent.token')));
    agents.push(await startAgent(scope, join(folder, 'scope-agent.token')));
    writeFileSync(join(folder, 'rig.token'), readFileSync(join(folder, 'rig-agent.token')));
    writeFileSync(join(folder, 'scope.token'), readFileSync(join(folder, 'scope-agent.token')));
    hostsYaml = `hosts:\n  rig: { address: ${rig.address}, token_file: rig.token }\n  scope: { address: ${scope.address}, token_file: scope.token }\n`;
  }, 60_000);
  afterAll(async () => {
    await lab?.dispose();
  });

  it('runs one pipeline across two hosts and this machine: every message arrives, over tcp with CURVE and a shared Redis', async () => {
    const run = await start(
      pipeline(
        'across',
        `${hostsYaml}actors:
  Source: { package: ACTORS, class: Ticker, host: rig, runtime: bun }
  Relay: { package: ACTORS, class: Hop, host: scope }
  Sink: { package: ACTORS, class: Tally }
connections:
  Source.q_out: [Relay.q_in]
  Relay.q_out: [Sink.q_in]
`,
      ),
    );
    const text = () => run.logs.map((record) => `${record.source}: ${record.message}`).join('\n');
    expect(text()).toContain('nexus: store: redis, because actor "Source" runs on host rig');
    expect(text()).toContain('nexus: in processes of their own: Source (bun on rig), Relay (node on scope)');
    expect(text()).toContain(
      `host rig: agent at ${rig.address}:7310 connected (links to it: ${lab.nexusAddress} here)`,
    );
    expect(text()).toContain(`host scope: agent at ${scope.address}:7310 connected`);
    await run.nexus.setup();
    await run.nexus.run();
    await until(() => sinkHasTaken(run, 100), '100 messages');
    const placed = [...run.where('Source'), ...run.where('Relay')];
    // Relay's input listens on scope's own address; Sink's, fed from scope, on this machine's
    // address on the hosts' network, as does the Redis server improv started (beside loopback).
    const listening = (where: string[]) =>
      spawnSync(where[0]!, [...where.slice(1), 'ss', '-ltnH'], { encoding: 'utf8' }).stdout;
    expect(listening(['ip', 'netns', 'exec', scope.name])).toMatch(
      new RegExp(`${scope.address.replaceAll('.', '\\.')}:(?!7310)\\d+`),
    );
    const here = listening(['env']);
    expect(
      here.match(new RegExp(`${lab.nexusAddress.replaceAll('.', '\\.')}:\\d+`, 'g'))?.length,
    ).toBeGreaterThanOrEqual(2);
    const status = run.nexus.status().actors;
    expect(status.find((actor) => actor.name === 'Source')?.process).toMatchObject({ runtime: 'bun', host: 'rig' });
    expect(run.where('Source')[0]!.runtime).toBe('bun');
    expect(run.where('Relay')[0]!.runtime).toBe('node');
    // The processes run in the hosts' namespaces, which the agents' logs name.
    expect(agents[0]!.lines.join('\n')).toContain(`started actor "Source" on bun (pid ${run.where('Source')[0]!.pid})`);
    expect(agents[1]!.lines.join('\n')).toContain(`started actor "Relay" on node (pid ${run.where('Relay')[0]!.pid})`);
    await run.nexus.stop();
    const tally = run.tally('Sink')!;
    expect(tally.counts.Source).toBeGreaterThanOrEqual(100);
    // In order, none lost: the last message Sink got is number count - 1 of the source.
    expect(tally.last).toEqual({ from: 'Source', n: tally.counts.Source! - 1, via: ['Relay@node'] });
    await run.nexus.quit();
    // No actor process is left on any host.
    await until(() => placed.every(({ pid }) => !alive(pid)), 'the actor processes on the hosts to end', 5000);
  }, 90_000);

  it.skipIf(!hasPython)(
    'runs a Python actor on a host: its agent starts the interpreter there, links and Redis as for any actor',
    async () => {
      const run = await startRunning(
        pipeline(
          'python',
          `${hostsYaml}settings: { python: /usr/bin/python3 }
actors:
  Source: { package: ACTORS, class: Ticker }
  Relay: { package: ${pythonActors}, class: Hop, host: rig }
  Sink: { package: ACTORS, class: Tally }
connections:
  Source.q_out: [Relay.q_in]
  Relay.q_out: [Sink.q_in]
`,
        ),
      );
      await until(() => sinkHasTaken(run, 100), '100 messages through Python on rig');
      const [relay] = run.where('Relay');
      expect(relay!.runtime).toBe('python');
      expect(run.nexus.status().actors.find((actor) => actor.name === 'Relay')?.process).toMatchObject({
        runtime: 'python',
        host: 'rig',
      });
      expect(agents[0]!.lines.join('\n')).toContain(`started actor "Relay" on python (pid ${relay!.pid})`);
      await run.nexus.stop();
      const tally = run.tally('Sink')!;
      expect(tally.last).toEqual({ from: 'Source', n: tally.counts.Source! - 1, via: ['Relay@python'] });
      await run.nexus.quit();
      await until(() => !alive(relay!.pid), 'the Python process on rig to end', 5000);
    },
    90_000,
  );

  it('reports the actors of a host whose link goes down as failed within a bound; the rest run on, and quit exits', async () => {
    const run = await startRunning(
      pipeline(
        'cable',
        `${hostsYaml}actors:
  Local: { package: ACTORS, class: Ticker }
  Counter: { package: ACTORS, class: Tally }
  Remote: { package: ACTORS, class: Ticker, host: rig }
  Watcher: { package: ACTORS, class: Tally }
connections:
  Local.q_out: [Counter.q_in]
  Remote.q_out: [Watcher.q_in]
`,
      ),
    );
    const sent = (actor: string) => run.nexus.status().links.find((link) => link.from.actor === actor)?.sent ?? 0;
    await until(() => sent('Remote') > 50 && sent('Local') > 50, 'messages on both links');
    const remotePid = run.where('Remote')[0]!.pid;
    const pulled = Date.now();
    rig.linkDown();
    try {
      await until(() => run.state('Remote') === 'failed', 'the actor on the lost host to fail', 15_000);
      const failedAt = run.changes.find((change) => change.actor === 'Remote' && change.state === 'failed')!.at;
      // Lost after 5 s of silence (the agent connection's bound), reported at once.
      expect(failedAt - pulled).toBeLessThan(9000);
      const why = run.nexus.status().actors.find((actor) => actor.name === 'Remote')?.error?.message ?? '';
      expect(why).toMatch(/host rig is lost/);
      expect(run.logs.map((record) => record.message).join('\n')).toMatch(/host rig \(198\.18\.64\.\d+\) lost:/);
      // The rest keep running and delivering.
      const before = sent('Local');
      await sleep(500);
      expect(sent('Local')).toBeGreaterThan(before);
      expect(run.state('Local')).toBe('running');
      expect(run.state('Counter')).toBe('running');
      // The agent ends what it started for a Nexus it no longer hears from.
      await until(() => !alive(remotePid), 'the agent to end the lost actor process', 10_000);
    } finally {
      rig.linkUp();
    }
    const quitStart = Date.now();
    await run.nexus.quit();
    expect(Date.now() - quitStart).toBeLessThan(10_000);
    // The agent is still there for the next Nexus.
    expect(agents[0]!.child.exitCode).toBeNull();
  }, 90_000);

  it('a host whose link goes down is reported lost, not its actors as stuck, also amid a command (signal_timeout shorter than the 5 s to lose a host)', async () => {
    const file = pipeline(
      'cable-not-stuck',
      `${hostsYaml}settings: { signal_timeout: 1s }
actors:
  Remote: { package: ACTORS, class: Ticker, host: rig }
  Watcher: { package: ACTORS, class: Tally }
  Local: { package: ACTORS, class: Ticker }
  RemoteSink: { package: ACTORS, class: Tally, host: rig }
connections:
  Remote.q_out: [Watcher.q_in]
  Local.q_out: [RemoteSink.q_in]
`,
    );
    // While the pipeline runs; then while a command waits for the actors on rig to acknowledge it.
    for (const during of ['run', 'pause'] as const) {
      const run = await startRunning(file);
      const sent = (actor: string) => run.nexus.status().links.find((link) => link.from.actor === actor)?.sent ?? 0;
      await until(() => sent('Remote') > 50 && sent('Local') > 50, 'messages on both links');
      rig.linkDown();
      try {
        const paused =
          during === 'pause'
            ? run.nexus.pause().then(
                () => 'done',
                (error: Error) => error.message,
              )
            : undefined;
        await until(
          () => run.logs.some((record) => /host rig \(198\.18\.64\.\d+\) lost:/.test(record.message)),
          'the host to be lost',
          15_000,
        );
        for (const actor of ['Remote', 'RemoteSink']) {
          await until(() => run.state(actor) === 'failed', `${actor} to fail`);
          expect(run.nexus.status().actors.find((entry) => entry.name === actor)?.error?.message).toMatch(
            /its host rig is lost: no answer for 5 s/,
          );
        }
        if (paused) {
          expect(await paused).toMatch(/^pause finished, but actor "Remote" failed: .*its host rig is lost/);
          expect(run.state('Local')).toBe('paused');
        } else expect(run.state('Local')).toBe('running');
        const text = run.logs.map((record) => record.message).join('\n');
        expect(text).not.toContain('has not returned to its event loop');
        expect(text).not.toContain('unresponsive');
        expect(text).not.toContain('did not acknowledge');
      } finally {
        rig.linkUp();
      }
      await run.nexus.quit();
    }
  }, 120_000);

  it('an actor stuck in a loop on a host that answers is still said stuck', async () => {
    const run = await startRunning(
      pipeline(
        'stuck-on-host',
        `${hostsYaml}settings: { signal_timeout: 1s }\nactors:\n  Spinner: { package: ACTORS, class: Crasher, how: spin, afterMs: 300, host: rig }\n`,
      ),
    );
    await until(
      () =>
        run.logs.some((record) =>
          record.message.startsWith('actor "Spinner": it has not returned to its event loop for 1 s'),
        ),
      'the stuck actor to be said stuck',
    );
    expect(run.logs.map((record) => record.message).join('\n')).not.toMatch(/host rig .* lost/);
    await run.nexus.quit();
  }, 60_000);

  it('brings the actor of a lost host back there once the host is back (restart: on-failure)', async () => {
    const run = await startRunning(
      pipeline(
        'comeback',
        `${hostsYaml}actors:
  Remote: { package: ACTORS, class: Ticker, host: rig, restart: on-failure, restart_backoff: 500ms, max_restarts: 20 }
  Watcher: { package: ACTORS, class: Tally }
connections:
  Remote.q_out: [Watcher.q_in]
`,
      ),
    );
    const sent = () => run.nexus.status().links.find((link) => link.from.actor === 'Remote')?.sent ?? 0;
    await until(() => sent() > 50, 'messages from the host');
    const first = run.where('Remote')[0]!.pid;
    rig.linkDown();
    try {
      await until(
        () => run.logs.some((record) => /host rig \(198\.18\.64\.\d+\) lost:/.test(record.message)),
        'the host to be lost',
        15_000,
      );
    } finally {
      rig.linkUp();
    }
    // Its restart policy tries again; once the agent answers, the actor runs there again.
    await until(
      () => run.where('Remote').length >= 2 && run.state('Remote') === 'running',
      'the actor back on its host',
      40_000,
    );
    expect(run.logs.map((record) => record.message).join('\n')).toContain(
      `host rig: agent at ${rig.address}:7310 reached again`,
    );
    expect(run.where('Remote').at(-1)!.pid).not.toBe(first);
    expect(alive(first)).toBe(false);
    const before = sent();
    await until(() => sent() > before + 50, 'messages from the actor back on its host', 20_000);
    expect(run.state('Watcher')).toBe('running');
  }, 120_000);

  it('keeps restarting the actor of a host whose agent is down at the first retries (restart: on-failure), with the backoff doubled', async () => {
    const run = await start(
      pipeline(
        'agent-down',
        `${hostsYaml}actors:
  Src: { package: ACTORS, class: Ticker, host: rig, restart: on-failure, restart_backoff: 300ms, max_restarts: 6 }
  Watcher: { package: ACTORS, class: Tally }
connections:
  Src.q_out: [Watcher.q_in]
`,
      ),
    );
    try {
      await run.nexus.setup();
      await run.nexus.run();
      await until(() => run.state('Src') === 'running', 'the actor on its host');
      // The agent ends (and its actor process with it); it comes back 3 s later.
      agents[0]!.child.kill('SIGTERM');
      await new Promise((resolve) => agents[0]!.child.once('exit', resolve));
      await until(
        () => run.logs.some((record) => record.message.includes('could not start its process')),
        'a failed restart',
      );
      await sleep(3000);
      agents[0] = await startAgent(rig, join(folder, 'rig-agent.token'));
      await until(
        () => run.where('Src').length >= 2 && run.state('Src') === 'running',
        'the actor back on its host',
        30_000,
      );
      const messages = run.logs.map((record) => record.message);
      // Each failed start is one more restart of the row, after twice the wait.
      expect(messages).toContain(
        'actor "Src" restarts in 300 ms (restart: on-failure; restart 1 of at most 6 in a row)',
      );
      expect(messages).toContain(
        'actor "Src" restarts in 600 ms (restart: on-failure; restart 2 of at most 6 in a row)',
      );
      expect(messages.join('\n')).not.toContain('is not restarted');
    } finally {
      await run.nexus.quit();
    }
  }, 90_000);

  it('quits cleanly while a host does not answer (its agent stopped), and says the host was lost', async () => {
    const run = await start(
      pipeline(
        'agent-stopped',
        `${hostsYaml}actors:
  Src: { package: ACTORS, class: Ticker, host: rig }
  Watcher: { package: ACTORS, class: Tally }
connections:
  Src.q_out: [Watcher.q_in]
`,
      ),
    );
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    const agent = agents[0]!.child;
    try {
      await run.nexus.setup();
      await run.nexus.run();
      await until(() => run.state('Src') === 'running', 'the actor on its host');
      agent.kill('SIGSTOP');
      await run.nexus.quit();
      await sleep(500);
      const text = run.logs.map((record) => record.message).join('\n');
      expect(text).toMatch(/host rig \(198\.18\.\d+\.\d+\) lost:/);
      expect(text).toContain('pipeline exited');
      // The store outlives what the actor's end needs of it (its recovery), then closes: nothing rejects unhandled.
      expect(text).not.toContain('could not be recovered');
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      agent.kill('SIGCONT');
    }
  }, 60_000);

  it('an agent or a Nexus suspended (SIGSTOP) and continued: the host is lost and reached again, and no token is blamed', async () => {
    const file = pipeline(
      'suspended',
      `${hostsYaml}actors:
  Src: { package: ACTORS, class: Ticker, host: rig, restart: on-failure, restart_backoff: 500ms, max_restarts: 20 }
  Watcher: { package: ACTORS, class: Tally }
connections:
  Src.q_out: [Watcher.q_in]
`,
    );
    const child = spawn(
      process.execPath,
      [bin, 'run', file, '--no-log-files', '--script', 'setup; run; wait 600s; quit'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    const agent = agents[0]!;
    const before = agent.lines.length;
    try {
      await until(() => output.includes('run: done'), 'the actor running on its host', 40_000);
      // The agent is suspended: the Nexus loses the host, and its restart tries to reach it meanwhile.
      agent.child.kill('SIGSTOP');
      try {
        await until(
          () => output.includes('could not start its process'),
          'a restart while the agent is stopped',
          30_000,
        );
      } finally {
        agent.child.kill('SIGCONT');
      }
      await untilRestarted(() => output, 1, 'the actor back on its host');
      // The Nexus is suspended: the agent ends its session; continued, it loses the host and comes back.
      const suspended = agent.lines.length;
      child.kill('SIGSTOP');
      try {
        await until(
          () => agent.lines.slice(suspended).some((line) => /Nexus \d+ was not heard from for 5 s/.test(line)),
          'the agent to end the session of the suspended Nexus',
          30_000,
        );
      } finally {
        child.kill('SIGCONT');
      }
      await untilRestarted(() => output, 2, 'the actor back on its host again');
      const said = agent.lines.slice(before).join('\n');
      expect(said).not.toContain('token');
      expect(said).not.toContain('refused');
      expect(output).not.toContain('token');
      // A host that says nothing is lost; its actor is not taken for stuck meanwhile.
      expect(output).not.toContain('actor "Src": it has not returned to its event loop');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(null)));
    }
  }, 300_000);

  it('restarts a crashed actor on its host (restart: on-failure), and revive starts it there by hand', async () => {
    const run = await startRunning(
      pipeline(
        'restarts',
        `${hostsYaml}actors:
  Flaky: { package: ACTORS, class: Crasher, how: exit, afterMs: 300, host: rig, restart: on-failure, restart_backoff: 200ms, max_restarts: 1 }
  Sink: { package: ACTORS, class: Tally }
connections:
  Flaky.q_out: [Sink.q_in]
`,
      ),
    );
    // Crashes, is restarted once on rig, crashes again: max_restarts reached, it stays failed.
    await until(() => run.where('Flaky').length === 2 && run.state('Flaky') === 'failed', 'two crashes', 30_000);
    const restarts = () => run.nexus.status().actors.find((actor) => actor.name === 'Flaky')!.restarts;
    expect(restarts()).toBe(1);
    const started = () => agents[0]!.lines.filter((line) => line.includes('started actor "Flaky"')).length;
    const before = started();
    expect(before).toBeGreaterThanOrEqual(2);
    await run.nexus.revive('Flaky');
    await until(() => run.where('Flaky').length === 3, 'the revived actor', 20_000);
    expect(started()).toBe(before + 1);
    expect(run.state('Sink')).toBe('running');
  }, 90_000);

  it('when the Nexus dies, its actors on the hosts end within a few seconds', async () => {
    const file = pipeline(
      'orphans',
      `${hostsYaml}actors:
  Source: { package: ACTORS, class: Ticker, host: scope }
  Sink: { package: ACTORS, class: Tally }
connections:
  Source.q_out: [Sink.q_in]
`,
    );
    const child = spawn(
      process.execPath,
      [bin, 'run', file, '--no-log-files', '--script', 'setup; run; wait 60s; quit'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    child.stdout?.on('data', (chunk) => {
      output += chunk;
    });
    child.stderr?.on('data', (chunk) => {
      output += chunk;
    });
    await until(() => /WHERE node \d+/.test(output) && output.includes('running'), 'the pipeline to run', 40_000);
    const pid = Number(/Source: WHERE node (\d+)/.exec(output)![1]);
    expect(alive(pid)).toBe(true);
    child.kill('SIGKILL');
    const killed = Date.now();
    await until(() => !alive(pid), 'the orphaned actor process on the host to end', 15_000);
    expect(Date.now() - killed).toBeLessThan(10_000);
    expect(agents[1]!.lines.join('\n')).toMatch(/was not heard from for 5 s; ending its 1 actor process/);
  }, 90_000);

  it('a Nexus on Bun or on Deno drives the same agents (improv run --runtime)', async () => {
    const file = pipeline(
      'other-runtimes',
      `${hostsYaml}actors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n  Sink: { package: ACTORS, class: Tally }\nconnections:\n  Source.q_out: [Sink.q_in]\n`,
    );
    for (const runtime of ['bun', 'deno']) {
      // --runtime starts the CLI again under that runtime, on this terminal: run it as a user does.
      const child = spawn(
        process.execPath,
        [bin, 'run', file, '--runtime', runtime, '--no-log-files', '--script', 'setup; run; wait 1s; stop; quit'],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let text = '';
      child.stdout?.on('data', (chunk) => {
        text += chunk;
      });
      child.stderr?.on('data', (chunk) => {
        text += chunk;
      });
      const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
      expect(code, text).toBe(0);
      expect(text).toContain(`nexus: host rig: agent at ${rig.address}:7310 connected`);
      // The actor on the host runs on the Nexus's runtime, as any actor that names none.
      expect(text).toContain(`Source: WHERE ${runtime} `);
      expect(text).toMatch(/Sink: TALLY \{"counts":\{"Source":\d+/);
    }
  }, 90_000);

  it('an agent refuses a Nexus without its token, and both sides say so', async () => {
    writeFileSync(join(folder, 'stolen.token'), `${'ab'.repeat(32)}\n`, { mode: 0o600 });
    const file = pipeline(
      'stolen',
      `hosts:\n  rig: { address: ${rig.address}, token_file: stolen.token }\nactors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n`,
    );
    const lines: string[] = [];
    const code = await main(['run', file, '--no-log-files', '--script', 'quit'], {
      write: (line) => lines.push(line),
      colour: false,
    });
    // A config error at the token_file (exit 2, nothing started): said once, without a stack.
    expect(code).toBe(2);
    const refusedLines = lines.filter((line) => line.includes('the agent refused this Nexus'));
    expect(refusedLines).toHaveLength(1);
    expect(refusedLines[0]).toMatch(/stolen\.yaml:2:\d+: error: host rig \(/);
    expect(lines.join('\n')).toContain(
      `host rig (${rig.address}:7310): the agent refused this Nexus (the CURVE handshake failed): the token in ${join(folder, 'stolen.token')} is not that agent's`,
    );
    expect(lines.join('\n')).not.toMatch(/^\s+at /m);
    await until(
      () => agents[0]!.lines.some((line) => line.includes('refused a connection')),
      'the agent to log it',
      5000,
    );
    // A token file that is not there: named, with what to do.
    const missing = pipeline(
      'missing',
      `hosts:\n  rig: { address: ${rig.address}, token_file: nowhere.token }\nactors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n`,
    );
    lines.length = 0;
    expect(
      await main(['run', missing, '--no-log-files', '--script', 'quit'], {
        write: (line) => lines.push(line),
        colour: false,
      }),
    ).toBe(2);
    expect(lines.join('\n')).toContain(
      `host rig: cannot read the token file ${join(folder, 'nowhere.token')} (ENOENT)`,
    );
    // A Redis server of one's own on loopback: the hosts cannot reach it, and the error says so at its setting.
    const loopback = pipeline(
      'loopback-redis',
      `settings:\n  store: redis\n  redis: { host: 127.0.0.1, port: 6379 }\n${hostsYaml}actors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n`,
    );
    lines.length = 0;
    expect(
      await main(['run', loopback, '--no-log-files', '--script', 'quit'], {
        write: (line) => lines.push(line),
        colour: false,
      }),
    ).toBe(2);
    expect(lines.join('\n')).toMatch(
      /loopback-redis\.yaml:2:10: error: settings\.redis names 127\.0\.0\.1, a loopback address, which actors on other hosts cannot reach/,
    );
    // validate says it first, at the redis setting itself.
    lines.length = 0;
    expect(await main(['validate', loopback], { write: (line) => lines.push(line), colour: false })).toBe(2);
    expect(lines.join('\n')).toMatch(
      /loopback-redis\.yaml:3:10: error: settings\.redis names 127\.0\.0\.1, a loopback address, which actors on other hosts cannot reach/,
    );
  }, 60_000);
});

describe('hosts on one machine, and the agent command', () => {
  it('--hosts local runs a YAML with hosts: on this machine, each such actor in a process of its own', async () => {
    const file = pipeline(
      'local',
      `hosts:\n  rig: { address: 10.0.0.2 }\nactors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n  Sink: { package: ACTORS, class: Tally }\nconnections:\n  Source.q_out: [Sink.q_in]\n`,
    );
    const lines: string[] = [];
    const code = await main(
      ['run', file, '--hosts', 'local', '--no-log-files', '--script', 'setup; run; wait 1s; stop; quit'],
      { write: (line) => lines.push(line), colour: false },
    );
    const text = lines.join('\n');
    expect(code, text).toBe(0);
    expect(text).toContain('nexus: in processes of their own: Source (node)');
    expect(text).toContain('because actor "Source" runs in its own process');
    expect(text).not.toContain('agent');
    expect(text).toMatch(/Sink: TALLY \{"counts":\{"Source":\d+/);
    // validate --hosts local checks it as that run does: valid.
    const validated: string[] = [];
    expect(
      await main(['validate', file, '--hosts', 'local'], { write: (line) => validated.push(line), colour: false }),
    ).toBe(0);
    // Without it, as improv run reads it: the token file run would read (the default one, not made
    // on this machine under a test home) is checked at the host's entry.
    if (!existsSync(join(homedir(), '.improv', 'agent.token'))) {
      const remote: string[] = [];
      expect(await main(['validate', file], { write: (line) => remote.push(line), colour: false })).toBe(2);
      expect(remote.join('\n')).toContain(`${file}:2:3: error: host rig: cannot read the token file`);
    }
  }, 60_000);

  it.skipIf(process.platform !== 'linux' || !redisInstalled)(
    'without hosts:, nothing the pipeline starts listens beyond loopback (process actors, Redis of its own)',
    async () => {
      const run = await startRunning(
        pipeline(
          'loopback-only',
          'settings:\n  store: redis\nactors:\n  Source: { package: ACTORS, class: Ticker, method: process }\n  Sink: { package: ACTORS, class: Tally, runtime: bun }\nconnections:\n  Source.q_out: [Sink.q_in]\n',
        ),
      );
      await until(() => run.nexus.status().links.some((link) => link.sent > 20), 'messages');
      // Every TCP listener of this process and its descendants (actor processes, redis-server).
      const parents = new Map<number, number>();
      for (const entry of readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        try {
          const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
          parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
        } catch {
          // gone meanwhile
        }
      }
      const ours = new Set([process.pid]);
      for (let grew = true; grew; ) {
        grew = false;
        for (const [pid, parent] of parents) {
          if (ours.has(parent) && !ours.has(pid)) {
            ours.add(pid);
            grew = true;
          }
        }
      }
      const listeners = spawnSync('ss', ['-ltnpH'], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter((line) => [...line.matchAll(/pid=(\d+)/g)].some((match) => ours.has(Number(match[1]))))
        .map((line) => line.trim().split(/\s+/)[3]!);
      expect(listeners.length).toBeGreaterThan(0); // the Redis server, at least
      for (const address of listeners) expect(address).toMatch(/^(127\.\d+\.\d+\.\d+|\[::1\]):\d+$/);
    },
    60_000,
  );

  it('a token file that is missing, a folder or not a token: run says so once at token_file (exit 2), and validate refuses it too', async () => {
    writeFileSync(join(folder, 'garbled.token'), 'not a token\n', { mode: 0o600 });
    const cases = [
      { token: 'absent.token', says: `host rig: cannot read the token file ${join(folder, 'absent.token')} (ENOENT)` },
      { token: '.', says: `host rig: cannot read the token file ${folder} (EISDIR)` },
      {
        token: 'garbled.token',
        says: `host rig: ${join(folder, 'garbled.token')} is not an agent token file (a line of 64 hex digits)`,
      },
    ];
    for (const [index, { token, says }] of cases.entries()) {
      const file = pipeline(
        `bad-token-${index}`,
        `hosts:\n  rig: { address: 198.18.254.254, token_file: ${token} }\nactors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n`,
      );
      const where = `${file}:2:47: error: ${says}`;
      const ran: string[] = [];
      const code = await main(['run', file, '--no-log-files', '--script', 'quit'], {
        write: (line) => ran.push(line),
        colour: false,
      });
      const text = ran.join('\n');
      expect(code, text).toBe(2);
      expect(ran.filter((line) => line.includes(says))).toEqual([expect.stringContaining(where)]);
      expect(text).not.toContain('could not start');
      expect(text).not.toMatch(/^\s+at /m);
      const validated: string[] = [];
      expect(await main(['validate', file], { write: (line) => validated.push(line), colour: false })).toBe(2);
      expect(validated.join('\n')).toContain(where);
    }
  });

  it('a host whose agent cannot be reached: run says so in one line each, without a stack (exit 1)', async () => {
    writeFileSync(join(folder, 'unreached.token'), `${'cd'.repeat(32)}\n`, { mode: 0o600 });
    const file = pipeline(
      'unreached',
      `hosts:\n  rig: { address: 127.0.0.1, port: 1, token_file: unreached.token }\nactors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n`,
    );
    const lines: string[] = [];
    const code = await main(['run', file, '--no-log-files', '--script', 'quit'], {
      write: (line) => lines.push(line),
      colour: false,
    });
    const text = lines.join('\n');
    expect(code, text).toBe(1);
    expect(text).toContain('nexus: the pipeline could not start: host rig (127.0.0.1:1): nothing listens there');
    expect(text).not.toMatch(/^\s+at /m);
    expect(text).not.toMatch(/^\s+Error: /m);
  });

  it('a host whose address answers but is no improv agent (a service that hangs up, or speaks something else): run says so, not that the token is wrong', async () => {
    writeFileSync(join(folder, 'elsewhere.token'), `${'ef'.repeat(32)}\n`, { mode: 0o600 });
    const services = [
      {
        name: 'hangs-up',
        serve: (socket: Socket) => socket.destroy(),
        says: 'the peer closed the connection before its greeting',
      },
      {
        name: 'ssh',
        serve: (socket: Socket) => socket.end('SSH-2.0-OpenSSH_9.6\r\n'),
        says: 'the peer is not a ZeroMQ peer',
      },
    ];
    for (const { name, serve, says } of services) {
      const server = createServer((socket) => {
        socket.on('error', () => {}); // the Nexus's greeting may meet a closed socket: a reset, expected
        serve(socket);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const port = (server.address() as AddressInfo).port;
      try {
        const file = pipeline(
          `not-an-agent-${name}`,
          `hosts:\n  rig: { address: 127.0.0.1, port: ${port}, token_file: elsewhere.token }\nactors:\n  Source: { package: ACTORS, class: Ticker, host: rig }\n`,
        );
        const lines: string[] = [];
        const code = await main(['run', file, '--no-log-files', '--script', 'quit'], {
          write: (line) => lines.push(line),
          colour: false,
        });
        const text = lines.join('\n');
        expect(code, text).toBe(1);
        expect(text).toContain(
          `nexus: the pipeline could not start: host rig (127.0.0.1:${port}): something answers there, but it is not an improv agent (${says}`,
        );
        expect(text).toContain(
          `check the port of hosts.rig (${port}) and that  improv agent --listen 127.0.0.1:${port}  runs on that machine`,
        );
        expect(text).not.toContain('token');
        expect(text).not.toMatch(/^\s+at /m);
      } finally {
        server.close();
      }
    }
  }, 60_000);

  it('improv agent --help says what each flag does; a bad --listen is a clear error', async () => {
    const help: string[] = [];
    expect(await main(['agent', '--help'], { write: (line) => help.push(line), colour: false })).toBe(0);
    const text = help.join('\n');
    expect(text).toContain('--listen <address[:port]>');
    expect(text).toContain('--token-file <file>');
    expect(text).toContain('(default: "~/.improv/agent.token")');
    const bad: string[] = [];
    expect(await main(['agent', '--listen', 'nowhere:99999'], { write: (line) => bad.push(line), colour: false })).toBe(
      2,
    );
    expect(bad.join('\n')).toBe(
      'improv agent: --listen "nowhere:99999" is not address[:port]; write e.g.  --listen 10.0.0.2:7310  (an address of this machine the Nexus reaches)',
    );
    const elsewhere: string[] = [];
    const token = join(folder, 'agent-bad-input.token');
    expect(
      await main(['agent', '--listen', '198.18.254.254:7310', '--token-file', token], {
        write: (line) => elsewhere.push(line),
        colour: false,
      }),
    ).toBe(2);
    expect(elsewhere.join('\n')).toBe(
      'improv agent: cannot listen on 198.18.254.254:7310: 198.18.254.254 is not an address of this machine; give one of its own (`ip addr` lists them)',
    );
    writeFileSync(token, 'not a token\n', { mode: 0o600 });
    const garbled: string[] = [];
    expect(
      await main(['agent', '--listen', '127.0.0.1:7310', '--token-file', token], {
        write: (line) => garbled.push(line),
        colour: false,
      }),
    ).toBe(2);
    expect(garbled.join('\n')).toBe(
      `improv agent: ${token} is not an agent token file (a line of 64 hex digits); remove it (the agent then makes a new one) or give another path`,
    );
    const none: string[] = [];
    expect(await main(['agent'], { write: (line) => none.push(line), colour: false })).toBe(2);
    expect(none.join('\n')).toContain("required option '--listen <address[:port]>' not specified");
  });
});
