/**
 * The CLI as users of the Python improv meet it: improv's commands (server, client, list, cleanup)
 * are commands here, its flags are supported or answered with what to use here (the control port is
 * --port, or a client's URL; exit 2, never commander's bare "unknown option"), `--version`, help
 * without arguments, `-f/--logfile`, and `validate <folder>`.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { currentRuntimeName } from '@improv/core';
import { scriptArguments } from '@improv/core/runtime/binaries';
import { describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';
import type { RuntimeName } from '../src/runtime-switch.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const bin = join(root, 'packages/cli/bin/improv.mjs');
const minimal = join(root, 'apps/minimal/minimal.yaml');
const actors = join(root, 'packages/cli/template/actors');
const broken = fileURLToPath(new URL('./fixtures/broken.yaml', import.meta.url));
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

async function cli(argv: string[]): Promise<{ code: number; text: string; lines: string[] }> {
  const lines: string[] = [];
  const code = await main(argv, { write: (line) => lines.push(...line.split('\n')), colour: false });
  return { code, text: lines.join('\n'), lines };
}

/** A usage answer: exit 2, a line naming the thing, a fix: line, and nothing from commander or a stack. */
function expectHint(result: { code: number; text: string; lines: string[] }, first: RegExp) {
  expect(result.code).toBe(2);
  expect(result.lines[0]).toMatch(first);
  expect(result.lines.at(-1)).toMatch(/^ {2}fix: /);
  expect(result.text).not.toMatch(/unknown (option|command)|^error:|\n\s+at /m);
}

/** A pipeline file that uses the minimal demo's actors from anywhere. */
function goodPipeline(): string {
  return [
    'actors:',
    '  Generator:',
    `    package: ${join(actors, 'generator.ts')}`,
    '    class: Generator',
    '  Processor:',
    `    package: ${join(actors, 'processor.ts')}`,
    '    class: Processor',
    'connections:',
    '  Generator.q_out: [Processor.q_in]',
    '',
  ].join('\n');
}

describe('improv without arguments, and --version', () => {
  it('prints the help and exits 2 when given no arguments', async () => {
    const { code, text } = await cli([]);
    expect(code).toBe(2);
    expect(text).toMatch(/^Usage: improv \[options\] \[command\]/);
    expect(text).toMatch(/run \[options\] <pipeline>/);
    expect(text).toMatch(/validate \[options\] <pipeline>/);
    expect(text).toMatch(/Coming from Python improv/);
  });

  it.each([['--version'], ['-v']])('%s prints the version in the CLI’s package.json, exit 0', async (flag) => {
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
    const { code, text } = await cli([flag]);
    expect(code).toBe(0);
    expect(text).toBe(version);
  });

  it('lists --version in the help', async () => {
    const { code, text } = await cli(['--help']);
    expect(code).toBe(0);
    expect(text).toMatch(/-v, --version\s+print the version of improv/);
  });
});

describe("improv's commands", () => {
  it.each([['server'], ['client'], ['list'], ['cleanup']])(
    'improv %s is a command here: its --help, exit 0',
    async (command) => {
      const { code, text } = await cli([command, '--help']);
      expect(code).toBe(0);
      expect(text).toMatch(new RegExp(`^Usage: improv ${command} `));
      expect(text).not.toMatch(/not built yet|fix: /);
    },
  );

  it.each([['cmd'], ['tap']])('improv %s --help offers no default run: its <run> is required', async (command) => {
    const { code, text } = await cli([command, '--help']);
    expect(code).toBe(0);
    expect(text).toMatch(new RegExp(`^Usage: improv ${command} \\[options\\] <run> `));
    expect(text).not.toMatch(/default: the only run/);
  });

  it.each([['client'], ['top'], ['logs'], ['quit']])(
    'improv %s --help names the only run as the default',
    async (command) => {
      const { text } = await cli([command, '--help']);
      expect(text).toMatch(/default: the only run/);
    },
  );

  it('improv help server is commander’s help of improv server', async () => {
    const { code, text } = await cli(['help', 'server']);
    expect(code).toBe(0);
    expect(text).toMatch(/^Usage: improv server \[options\] <pipeline>/);
  });

  it('improv server with a missing pipeline file is a config error, exit 2', async () => {
    const missing = join(tmpdir(), 'no-such-pipeline-for-improv.yaml');
    const { code, text } = await cli(['server', missing, '--no-log-files']);
    expect(code).toBe(2);
    expect(text).toMatch(/no-such-pipeline-for-improv\.yaml: error: config file not found/);
    expect(text).toMatch(/no-such-pipeline-for-improv\.yaml: not started; fix the errors above/);
    expect(text).not.toMatch(/^improv server: |\n\s+at /m);
  });

  it('leaves a command improv never had to commander: unknown command, exit 2', async () => {
    const { code, text } = await cli(['jump', '-c', '5555']);
    expect(code).toBe(2);
    expect(text).toMatch(/unknown command 'jump'/);
  });
});

describe("improv's flags", () => {
  const control = /^improv (run|server): -c\/--control-port: one control port here serves commands, logs and metrics/;
  const shared = /: not needed here: the same port carries output and logs/;
  const prompt = ' {3}\\(then type setup and run at its prompt\\)';

  it.each([
    [['run', '-c', '5555', 'demo.yaml'], 'run demo.yaml --port 5555'],
    [['run', 'demo.yaml', '--control-port=5555'], 'run demo.yaml --port 5555'],
    [['run', '-c5555', 'demo.yaml'], 'run demo.yaml --port 5555'],
    [['run', '-c', '127.0.0.1:5555', 'demo.yaml'], 'run demo.yaml --bind 127.0.0.1 --port 5555'],
    [['run', 'demo.yaml', '--control-port', '0.0.0.0:5555'], 'run demo.yaml --bind 0.0.0.0 --port 5555'],
    [['run', '-c', '[::1]:5555', 'demo.yaml'], 'run demo.yaml --bind ::1 --port 5555'],
  ])('%j: the control port is --port (and its IP --bind), exit 2', async (argv, fixed) => {
    const result = await cli(argv);
    expectHint(result, control);
    expect(result.lines).toHaveLength(2);
    expect(result.lines[1]).toBe(`  fix: improv ${fixed}   (then type setup and run at its prompt)`);
  });

  it.each([
    [['run', 'demo.yaml', '-o', '5556'], /^improv run: -o\/--output-port: /],
    [['run', '-l5557', 'demo.yaml'], /^improv run: -l\/--logging-port: /],
    [['run', 'demo.yaml', '--logging-port', '5557'], /^improv run: -l\/--logging-port: /],
    [['run', 'demo.yaml', '--server-port', '5556'], /^improv run: --server-port: /],
  ])('%j: the same port carries output and logs: dropped from the fix', async (argv, first) => {
    const result = await cli(argv);
    expectHint(result, first);
    expect(result.lines[0]).toMatch(shared);
    expect(result.lines.at(-1)).toMatch(new RegExp(`^ {2}fix: improv run demo\\.yaml${prompt}$`));
  });

  it('improv server -c -o -l: --port for -c, the others dropped', async () => {
    const result = await cli(['server', '-c', '5555', '-o', '5556', '-l', '5557', 'demo.yaml']);
    expectHint(result, control);
    expect(result.lines).toHaveLength(3);
    expect(result.lines[1]).toMatch(/^improv server: -o\/--output-port and -l\/--logging-port: not needed here: /);
    expect(result.lines[2]).toBe(
      '  fix: improv server demo.yaml --port 5555   (then improv client attaches, from another terminal)',
    );
  });

  it('a -c that is not [IP:]port says so, and the fix has --port <port>', async () => {
    const result = await cli(['run', '-c', '99999', 'demo.yaml']);
    expectHint(result, control);
    expect(result.lines[0]).toMatch(/; 99999 is not \[IP:\]port$/);
    expect(result.lines.at(-1)).toMatch(new RegExp(`^ {2}fix: improv run demo\\.yaml --port <port>${prompt}$`));
  });

  it('keeps a --port given as well, instead of the one of -c', async () => {
    const result = await cli(['run', '--port', '6000', '-c', '5555', 'demo.yaml']);
    expectHint(result, control);
    expect(result.lines.at(-1)).toMatch(new RegExp(`^ {2}fix: improv run --port 6000 demo\\.yaml${prompt}$`));
  });

  it('improv client -c IP:port -s port: the run’s URL and its token file', async () => {
    const result = await cli(['client', '-c', '127.0.0.1:5555', '-s', '5556']);
    expectHint(
      result,
      /^improv client: -c\/--control-port and -s\/--server-port: one control port here serves commands, output and logs: improv client takes the run’s URL/,
    );
    expect(result.lines).toHaveLength(2);
    expect(result.lines[1]).toMatch(
      /^ {2}fix: improv client http:\/\/127\.0\.0\.1:5555 --token-file <the run’s token file> {3}\(the run printed where its token is/,
    );
  });

  it('improv client -c port: the URL on 127.0.0.1, as improv read a bare port; a --token-file given is kept', async () => {
    const result = await cli(['client', '-c', '5555', '-l', '5557', '--token-file', 'run/control.token']);
    expectHint(result, /^improv client: -c\/--control-port and -l\/--logging-port: /);
    expect(result.lines.at(-1)).toMatch(
      /^ {2}fix: improv client http:\/\/127\.0\.0\.1:5555 --token-file run\/control\.token {3}\(/,
    );
  });

  it('improv client without a control port: improv client (the only run), improv list for the ids', async () => {
    const result = await cli(['client', '-s', '5556', '-l', '5557']);
    expectHint(result, /^improv client: -s\/--server-port and -l\/--logging-port: /);
    expect(result.lines.at(-1)).toBe(
      '  fix: improv client   (the only run on this host; improv list shows every run’s id: improv client <id>)',
    );
  });

  it('improv client with a run named: that run', async () => {
    const result = await cli(['client', 'minimal-3fa2', '-c', '5555']);
    expectHint(result, /^improv client: -c\/--control-port: /);
    expect(result.lines.at(-1)).toBe('  fix: improv client minimal-3fa2');
  });

  it('port flags on another command are dropped, with where the control port is set', async () => {
    const result = await cli(['validate', '-c', '5555', '-l', '5557', broken]);
    expectHint(
      result,
      /^improv validate: -c\/--control-port and -l\/--logging-port: not an option of improv validate: .*--port of improv run and improv server/,
    );
    expect(result.lines.at(-1)).toBe(`  fix: improv validate ${broken}`);
  });

  it('-c on tap is its own --count, never improv’s control port', async () => {
    const result = await cli(['tap', 'minimal-3fa2', 'Generator.q_out', '-c', '3', '-l', '5557']);
    expectHint(result, /^improv tap: -l\/--logging-port: /);
    expect(result.lines.at(-1)).toBe('  fix: improv tap minimal-3fa2 Generator.q_out -c 3');
  });

  it('names the control port, the other ports and -a on a line each, in the order used', async () => {
    const result = await cli([
      'run',
      '-c',
      '5555',
      '-o',
      '5556',
      '-l',
      '5557',
      '-a',
      'actors',
      '-a',
      'lib',
      'demo.yaml',
    ]);
    expectHint(result, control);
    expect(result.lines).toHaveLength(4);
    expect(result.lines[1]).toMatch(/^improv run: -o\/--output-port and -l\/--logging-port: not needed here: /);
    expect(result.lines[2]).toMatch(
      /^improv run: -a\/--actor-path: not needed here: an actor’s package: is a file path relative to the pipeline YAML file/,
    );
    expect(result.lines[3]).toBe('  fix: improv run demo.yaml --port 5555   (then type setup and run at its prompt)');
  });

  it('-a on validate: package: paths are relative to the YAML file', async () => {
    const result = await cli(['validate', '--actor-path', 'actors', broken]);
    expectHint(result, /^improv validate: -a\/--actor-path: not needed here: .*relative to the pipeline YAML file/);
    expect(result.lines.at(-1)).toBe(`  fix: improv validate ${broken}`);
  });

  it('a run without its pipeline gets <pipeline.yaml> in the fix, and -c without a value --port <port>', async () => {
    const result = await cli(['run', '-c']);
    expectHint(result, /^improv run: -c\/--control-port: /);
    expect(result.lines.at(-1)).toMatch(/^ {2}fix: improv run <pipeline\.yaml> --port <port> /);
  });

  it('flags before any command: the fix is an improv run with -f moved after it', async () => {
    const ports = await cli(['-c', '5555']);
    expectHint(ports, /^improv: -c\/--control-port: one control port here/);
    expect(ports.lines.at(-1)).toMatch(/^ {2}fix: improv run <pipeline\.yaml> --port 5555 /);
    const logfile = await cli(['-f', 'global.log', 'run', 'demo.yaml']);
    expectHint(logfile, /^improv run: -f\/--logfile: options go after the command word/);
    expect(logfile.lines.at(-1)).toMatch(/^ {2}fix: improv run demo\.yaml -f global\.log /);
    const server = await cli(['-f', 'global.log', 'server', 'demo.yaml', '-c', '5555']);
    expectHint(server, /^improv server: -f\/--logfile: options go after the command word: improv server /);
    expect(server.lines.at(-1)).toMatch(/^ {2}fix: improv server demo\.yaml -f global\.log --port 5555 /);
  });

  it('-f on validate: it is an option of improv run', async () => {
    const result = await cli(['validate', '-f', 'global.log', 'demo.yaml']);
    expectHint(result, /^improv validate: -f\/--logfile: an option of improv run and improv server: /);
    expect(result.lines.at(-1)).toBe('  fix: improv validate demo.yaml');
  });

  it('quotes a word the shell would split when it shows the command', async () => {
    const result = await cli(['run', '-c', '1', 'my pipeline.yaml']);
    expect(result.lines.at(-1)).toMatch(/^ {2}fix: improv run 'my pipeline\.yaml' /);
  });

  it('never takes the value of one of our options for an improv flag', async () => {
    // --script's value "-c" is a (bad) script, not improv's -c.
    const { code, text } = await cli(['run', minimal, '--script', '-c']);
    expect(code).toBe(2);
    expect(text).toMatch(/^improv run: .*step/);
    expect(text).not.toMatch(/control port/);
  });

  it('after --, words are operands, not flags', async () => {
    const { code, text } = await cli(['validate', '--', '-c']);
    expect(code).toBe(2);
    expect(text).not.toMatch(/control port/);
    expect(text).toMatch(/-c: error: config file not found/);
  });
});

describe('improv run -f/--logfile', () => {
  it('appends every log record to the file, run after run, with --no-log-files too', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'improv-logfile-'));
    const logfile = join(folder, 'logs', 'global.log'); // its folder is made
    const script = 'setup; run; wait 200ms; stop; quit';
    for (let round = 0; round < 2; round++) {
      const { code } = await cli(['run', minimal, '--no-log-files', '-f', logfile, '--script', script]);
      expect(code).toBe(0);
    }
    const text = readFileSync(logfile, 'utf8');
    expect(text.match(/nexus: pipeline exited/g)).toHaveLength(2);
    expect(text).toMatch(/INFO {2}nexus: pipeline .*minimal\.yaml: 2 actor\(s\)/);
    expect(text).toMatch(/Processor: processed \d+ frames/);
  });

  it('keeps the run folder’s improv.log as well', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'improv-logfile-'));
    const runDir = join(folder, 'run');
    const logfile = join(folder, 'improv-run.log');
    const { code } = await cli(['run', minimal, '--run-dir', runDir, '--logfile', logfile, '--script', 'quit']);
    expect(code).toBe(0);
    expect(readFileSync(join(runDir, 'improv.log'), 'utf8')).toMatch(/pipeline exited/);
    expect(readFileSync(logfile, 'utf8')).toMatch(/pipeline exited/);
  });

  it('a log file that cannot be opened is a usage error, exit 2, before anything starts', async () => {
    const folder = mkdtempSync(join(tmpdir(), 'improv-logfile-'));
    const { code, text } = await cli(['run', minimal, '--no-log-files', '-f', folder, '--script', 'quit']);
    expect(code).toBe(2);
    expect(text).toMatch(/^improv run: --logfile: .*; give a file you can write to$/);
    expect(text).not.toMatch(/nexus:|\n\s+at /);
  });

  it('is in run --help', async () => {
    expect((await cli(['run', '--help'])).text).toMatch(/-f, --logfile <file>\s+also append every log record/);
  });
});

describe('improv validate <folder>', () => {
  function folderWith(files: Record<string, string>): string {
    const folder = mkdtempSync(join(tmpdir(), 'improv-validate-'));
    for (const [name, content] of Object.entries(files)) {
      mkdirSync(join(folder, name, '..'), { recursive: true });
      writeFileSync(join(folder, name), content);
    }
    return folder;
  }

  it('validates every .yaml and .yml file in it, sorted, and exits 2 when one has errors', async () => {
    const folder = folderWith({
      'b-good.yaml': goodPipeline(),
      'c-good.YML': goodPipeline(),
      'notes.txt': 'not a pipeline',
      'sub/d-deeper.yaml': 'not: [checked',
    });
    copyFileSync(broken, join(folder, 'a-broken.yml'));
    const { code, lines, text } = await cli(['validate', folder]);
    expect(code).toBe(2);
    const results = lines.filter((line) => /\.ya?ml: (valid|\d+ error)/i.test(line));
    expect(results).toEqual([
      `${join(folder, 'a-broken.yml')}: 4 error(s)`,
      `${join(folder, 'b-good.yaml')}: valid — 2 actor(s), 1 connection(s)`,
      `${join(folder, 'c-good.YML')}: valid — 2 actor(s), 1 connection(s)`,
    ]);
    // The broken file's errors, with their positions, as validate prints them for one file.
    expect(text).toMatch(/a-broken\.yml:2:3: error: .*store_sise/);
    expect(text).not.toMatch(/notes\.txt|d-deeper/);
    expect(lines.at(-1)).toBe(`${folder}: 3 pipeline file(s): 2 valid, 1 with errors`);
  });

  it('exits 0 when every file is valid', async () => {
    const folder = folderWith({ 'one.yaml': goodPipeline(), 'two.yml': goodPipeline() });
    const { code, lines } = await cli(['validate', folder, '--no-check-modules']);
    expect(code).toBe(0);
    expect(lines.at(-1)).toBe(`${folder}: 2 pipeline file(s): 2 valid`);
  });

  it('says so clearly when the folder has no YAML files, exit 2', async () => {
    const folder = folderWith({ 'README.md': '# nothing', 'sub/p.yaml': goodPipeline() });
    const result = await cli(['validate', folder]);
    expectHint(result, /^improv validate: .* has no \.yaml or \.yml files \(subfolders are not searched\)$/);
    expect(result.lines.at(-1)).toBe(
      `  fix: give the folder that holds the pipeline files, or one file: improv validate ${folder}/<pipeline>.yaml`,
    );
  });

  it('run, server and graph given a folder name its pipeline files, exit 2', async () => {
    const folder = folderWith({ 'one.yaml': goodPipeline(), 'two.yml': goodPipeline(), 'notes.txt': 'x' });
    for (const command of ['run', 'server', 'graph']) {
      const result = await cli([command, `${folder}/`]);
      expect(result.code, result.text).toBe(2);
      expect(result.lines).toEqual([
        `improv ${command}: ${folder} is a folder; give one pipeline file`,
        `  fix: improv ${command} ${join(folder, 'one.yaml')} (its pipeline files: one.yaml, two.yml)`,
      ]);
    }
    const empty = await cli(['run', folderWith({ 'README.md': '# nothing' })]);
    expect(empty.code).toBe(2);
    expect(empty.lines.at(-1)).toMatch(/^ {2}fix: .* has no \.yaml or \.yml files; give the path of a pipeline file$/);
  });

  it('still validates a single file, and reports a missing path as before', async () => {
    expect((await cli(['validate', minimal])).code).toBe(0);
    const missing = await cli(['validate', join(tmpdir(), 'no-such-folder-for-improv')]);
    expect(missing.code).toBe(2);
    expect(missing.text).toMatch(/no-such-folder-for-improv: error: config file not found/);
  });
});

describe('as a process', () => {
  it('exits 2 with the help when run without arguments, 2 for improv server with a missing file, 0 for --version', () => {
    const here = currentRuntimeName() as RuntimeName;
    const cwd = mkdtempSync(join(tmpdir(), 'improv-process-')); // no demo.yaml there, and no runs/ left in the repo
    const run = (args: string[]) =>
      spawnSync(process.execPath, [...scriptArguments(here, bin), ...args], {
        cwd,
        encoding: 'utf8',
        timeout: 20_000,
      });
    const bare = run([]);
    expect(bare.status).toBe(2);
    expect(bare.stdout).toMatch(/^Usage: improv/);
    const server = run(['server', 'demo.yaml']);
    expect(server.status).toBe(2);
    expect(server.stdout).toMatch(/demo\.yaml: error: config file not found/);
    expect(server.stderr).toBe('');
    const shown = run(['--version']);
    expect(shown.status).toBe(0);
    expect(shown.stdout.trim()).toBe(version);
  });
});
