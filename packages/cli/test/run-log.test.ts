import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandRefusedError, ConfigError, createNexus, detectRuntime, type Nexus } from '@improv/core';
import { createMemoryStore } from '@improv/store';
import { createLocalTransport } from '@improv/transport-local';
import { afterEach, describe, expect, it } from 'vitest';

const template = fileURLToPath(new URL('../template/actors/', import.meta.url));

const running: Nexus[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((nexus) => nexus.quit()));
});

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(CommandRefusedError.isInstance(error)).toBe(true);
    return (error as Error).message;
  }
  throw new Error('expected a refusal');
}

describe('the run folder', () => {
  it('logs every command, its result and every refusal, what Nexus does at debug, and each actor in a file of its own', async () => {
    const runDir = join(mkdtempSync(join(tmpdir(), 'improv-run-log-')), 'run');
    const nexus = await createNexus({
      config: {
        settings: { store_size: '8MiB' },
        actors: {
          Generator: { package: join(template, 'generator.ts'), class: 'Generator', rate: 200, size: 5 },
          Processor: { package: join(template, 'processor.ts'), class: 'Processor' },
        },
        connections: { 'Generator.q_out': ['Processor.q_in'] },
      },
      runtime: await detectRuntime(),
      store: createMemoryStore(),
      transport: createLocalTransport(),
      runDir,
      handleSignals: false,
    });
    running.push(nexus);
    expect(await refusal(nexus.command('pause', { by: 'test' }))).toBe(
      'cannot pause: the pipeline is waiting; run setup first',
    );
    await nexus.command('setup', { by: 'test' });
    await nexus.run();
    await new Promise((resolve) => setTimeout(resolve, 100));
    await nexus.command('stop', { by: 'test' });
    expect(await refusal(nexus.revive('Procesor', { by: 'test' }))).toBe(
      'cannot revive "Procesor": there is no such actor; did you mean "Processor"? the actors are Generator, Processor',
    );
    expect(await refusal(nexus.revive('Generator', { by: 'test' }))).toMatch(
      /^cannot revive "Generator": it is stopped, not failed/,
    );
    await nexus.command('quit', { by: 'test' });
    await nexus.closed;

    expect(readdirSync(runDir).sort()).toEqual(['actors', 'improv.log']);
    expect(readdirSync(join(runDir, 'actors')).sort()).toEqual(['Generator.log', 'Processor.log']);
    const log = readFileSync(join(runDir, 'improv.log'), 'utf8');
    const nexusLines = log
      .split('\n')
      .filter((line) => / nexus: /.test(line))
      .map((line) => line.replace(/^\S+ /, ''));

    // Every command, who gave it, and what became of it.
    const commandLines = nexusLines.filter((line) =>
      /(INFO|WARN) {2}nexus: (command |\w+: done|\w+ refused|revive \S+ refused)/.test(line),
    );
    expect(commandLines).toEqual([
      'INFO  nexus: command pause (given by test)',
      'WARN  nexus: pause refused: the pipeline is waiting; run setup first',
      'INFO  nexus: command setup (given by test)',
      'INFO  nexus: setup: done (all actors ready)',
      'INFO  nexus: command run',
      'INFO  nexus: run: done (pipeline running)',
      'INFO  nexus: command stop (given by test)',
      'INFO  nexus: stop: done (pipeline stopped)',
      'INFO  nexus: command revive Procesor (given by test)',
      'WARN  nexus: revive Procesor refused: there is no such actor; did you mean "Processor"? the actors are Generator, Processor',
      'INFO  nexus: command revive Generator (given by test)',
      expect.stringMatching(/^WARN {2}nexus: revive Generator refused: it is stopped, not failed/),
      'INFO  nexus: command quit (given by test)',
    ]);

    // At debug: the config, the store, every link, each actor started and loaded, signals and their answers, quit.
    const debug = nexusLines.filter((line) => line.startsWith('DEBUG nexus: ')).map((line) => line.slice(13));
    const expected = [
      /^run folder .*run: improv\.log, actors\/<actor>\.log$/,
      /^config <object> loaded and checked \(\d+ ms\): store memory, transport local, signal_timeout /,
      /^config: actor "Generator" is class Generator of file:.*generator\.ts, in a worker \(\w+\)$/,
      /^store opened: memory, store_size 8 MiB, eviction none \(\d+ ms\)$/,
      /^link Generator\.q_out → Processor\.q_in \(connection Generator\.q_out\): local, capacity \d+, policy \w+$/,
      /^actor "Processor": worker started \(\d+ ms\); loading its module$/,
      /^actor "Processor": loaded, waiting \(\d+ ms after its start\)$/,
      /^signal setup → Generator$/,
      /^actor "Generator": waiting → ready \(\d+ ms after "setup"\)$/,
      /^actor "Processor": ready → running \(\d+ ms after "run"\)$/,
      /^actor "Generator" acknowledged stop \(\d+ ms after "stop"\)$/,
      /^actor "Processor": running → stopped \(\d+ ms after "stop"\)$/,
      /^signal quit → Processor$/,
      /^quit: actor "Generator" ended \(\d+ ms after quit\)$/,
      /^quit: links closed \(local\)$/,
      /^quit: store closed \(memory\)$/,
    ];
    for (const pattern of expected)
      expect(
        debug.some((line) => pattern.test(line)),
        String(pattern),
      ).toBe(true);

    // Each actor's own file has its records, as improv.log has them, and nothing of Nexus or the other actor.
    for (const [actor, said] of [
      ['Generator', /Generator: sent \d+ frames$/],
      ['Processor', /Processor: processed \d+ frames; average \[/],
    ] as const) {
      const own = readFileSync(join(runDir, 'actors', `${actor}.log`), 'utf8')
        .trimEnd()
        .split('\n');
      expect(own.some((line) => said.test(line))).toBe(true);
      for (const line of own) {
        expect(line).toMatch(new RegExp(`^\\S+ (DEBUG|INFO |WARN |ERROR) ${actor}: `));
        expect(log).toContain(line);
      }
    }
  });
});

describe('createNexus refusals', () => {
  it('reports a bind address the links cannot listen on (EADDRNOTAVAIL at plan) at settings.zmq.bind, as a config error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'improv-bind-'));
    const file = join(dir, 'p.yaml');
    writeFileSync(
      file,
      `settings:\n  zmq: { protocol: tcp, bind: 127.0.0.1 }\nactors:\n  Generator: { package: ${join(template, 'generator.ts')}, class: Generator }\n  Processor: { package: ${join(template, 'processor.ts')}, class: Processor }\nconnections:\n  Generator.q_out: [Processor.q_in]\n`,
    );
    const local = createLocalTransport();
    const failure = Object.assign(
      new Error('zmq transport: cannot listen on 127.0.0.1 (the bind address): EADDRNOTAVAIL'),
      {
        code: 'EADDRNOTAVAIL',
      },
    );
    const error = await createNexus({
      config: file,
      store: createMemoryStore(),
      transport: { ...local, name: local.name, plan: () => Promise.reject(failure) },
      runDir: false,
      handleSignals: false,
    }).catch((caught: unknown) => caught);
    expect(ConfigError.isInstance(error), String(error)).toBe(true);
    expect((error as ConfigError).diagnostics).toMatchObject([
      { file, line: 2, column: 31, path: ['settings', 'zmq', 'bind'], message: failure.message },
    ]);
  });

  it('refuses a quitTimeoutMs beyond the 32-bit timer (it would end every worker at once), before anything starts', async () => {
    await expect(
      createNexus({
        config: { actors: { Generator: { package: join(template, 'generator.ts'), class: 'Generator' } } },
        store: createMemoryStore(),
        transport: createLocalTransport(),
        runDir: false,
        handleSignals: false,
        quitTimeoutMs: 3e9,
      }),
    ).rejects.toThrow(
      'createNexus: quitTimeoutMs must be a number of milliseconds from 0 to 2147483647 (about 24.8 days), not 3000000000',
    );
  });
});
