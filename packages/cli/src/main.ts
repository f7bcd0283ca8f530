/**
 * The `improv` command: `run` and `server` (a pipeline with its control server), `validate`, the
 * clients of a running pipeline (`client`, `top`, `list`, `logs`, `cmd`, `stop`/`quit`/…, `tap`),
 * `graph`, `cleanup`, `new`, `keys`, `agent` and `store`; `run`, `server` and `validate` take
 * `--runtime node|bun|deno` to run under another runtime than the one improv was started with.
 * Python improv's flags that differ here are answered with what to type instead (improv-compat.ts).
 * Exit codes: 0 ok, 1 failure at run time, 2 usage or config error (or a runtime not found).
 * @module
 */
import { closeSync, readFileSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { isatty } from 'node:tty';
import {
  type AppendFile,
  ConfigError,
  currentRuntimeName,
  DEFAULT_AGENT_TOKEN_FILE,
  detectRuntime,
  formatDiagnostics,
  formatLogRecord,
  type LogLevel,
  loadConfig,
  logLevels,
  type Nexus,
  type NexusEvent,
  openPipelineTransport,
  type PipelineConfig,
  type RuntimeAdapter,
  type StoreName,
  storeNames,
  type TransportName,
  transportNames,
} from '@improv/core';
import type { RuntimeSearch } from '@improv/core/runtime/binaries';
import { builtPage } from '@improv/dashboard';
import { CommanderError, InvalidArgumentError, Option, Command as Program } from 'commander';
import { commandHelpText, completions, resolveCommandWord } from './command-line.ts';
import { connectRun } from './control/client.ts';
import { executeCommandLine } from './control/commands.ts';
import { LogHistory } from './control/log-history.ts';
import { dashboardAddress } from './control/page.ts';
import { type ControlSession, type ControlSessionOptions, startControlSession } from './control/session.ts';
import {
  checkHosts,
  checkStore,
  createDefaultNexus,
  type DefaultNexusOptions,
  defaultStoreSizeLimits,
  transportsFor,
} from './defaults.ts';
import { exitCodes } from './exit-codes.ts';
import { improvHint } from './improv-compat.ts';
import { newProject } from './new-project.ts';
import { formatRecord, type Output } from './output.ts';
import { ownManifest, packageRoot } from './own-package.ts';
import { startPrompt } from './prompt.ts';
import {
  attachCommand,
  cleanupCommand,
  cmdCommand,
  dashboardCommand,
  type LogsOptions,
  listCommand,
  logsCommand,
  tapCommand,
} from './remote.ts';
import { denoPermissionProblem, type RuntimeName, runtimeNames, runUnder } from './runtime-switch.ts';
import { parseScript, type ScriptStep, sleepUnless } from './script.ts';

export { exitCodes };

/** The actor keys improv-ts reads itself, for `improv validate --help`. */
const actorKeyHelp: [string, string][] = [
  ['method', "process (or improv's spawn, fork): its own OS process; worker (default) or thread: a worker"],
  ['runtime', 'node, bun or deno: its own process on that runtime (default: the runtime improv runs in)'],
  ['host', 'the name of an entry of hosts: its own process on that machine, started by improv agent there'],
  ['restart', 'never (default), on-failure (after a crash or an error exit) or always: start it again'],
  ['restart_backoff', 'wait before the first restart, doubling per restart in a row up to 30s (default 1s)'],
  ['max_restarts', 'restarts in a row before the actor is left failed (default 5)'],
  ['on_error', 'continue (default: log a throwing runStep() and call it again) or fail (the actor fails)'],
  ['max_heap_mb', "heap limit of the actor's worker or process in MiB (default: the runtime's)"],
];

interface RunOptions {
  script?: string;
  runDir?: string;
  logfile?: string;
  logFiles: boolean;
  logLevel: LogLevel;
  runtime?: RuntimeName;
  store?: StoreName;
  transport?: TransportName;
  hosts?: 'local';
  /** false with --no-ui: the plain prompt even in a terminal. */
  ui?: boolean;
  /** --bind and --port of the control server. */
  bind?: string;
  port?: number;
  /** --dashboard: print the web dashboard's address. */
  dashboard?: boolean;
  /** --start: setup and run before the UI or prompt. */
  start?: boolean;
}

/** Options of {@link main} beyond the command line. */
export interface MainOptions {
  /** Where `--runtime` looks for the runtime's binary (default: node_modules/.bin up from cwd and the CLI, then PATH). */
  runtimeSearch?: RuntimeSearch;
}

/** Runs the CLI with `argv` (without `node` and the script) and resolves to the exit code. */
export async function main(
  argv: string[],
  output: Output = defaultOutput(),
  mainOptions: MainOptions = {},
): Promise<number> {
  let exitCode: number = exitCodes.ok;
  const runtimeOption = () =>
    new Option('--runtime <name>', 'run under this runtime (default: the one improv was started with)').choices(
      runtimeNames,
    );
  const hostsOption = () =>
    new Option(
      '--hosts <where>',
      'local: every host of hosts: is this machine (their actors run in processes here)',
    ).choices(['local']);
  const storeOption = () =>
    new Option('--store <driver>', 'use this store whatever settings.store says (memory, lmdb, redis)').choices(
      storeNames,
    );
  /** Runs the CLI again under `--runtime`, when that is not the runtime we are in. */
  const switched = async (runtime: RuntimeName | undefined): Promise<boolean> => {
    if (runtime === undefined || runtime === currentRuntimeName()) return false;
    exitCode = await runUnder(runtime, argv, (line) => output.write(line), mainOptions.runtimeSearch);
    return true;
  };
  /** Under Deno: has `command` the permissions it needs? Says which are missing, and how, if not. */
  const permitted = (command: 'run' | 'validate'): boolean => {
    const problem = denoPermissionProblem(command, argv);
    if (problem === undefined) return true;
    output.write(problem);
    exitCode = exitCodes.usage;
    return false;
  };
  const program = new Program('improv')
    .description('improv: adaptive, closed-loop experiments as a graph of actors')
    // Not .version(): that reads package.json on every start, and Deno without --allow-read would
    // ask for permission each time. Read only when asked for.
    .addOption(new Option('-v, --version', 'print the version of improv'))
    .on('option:version', () => {
      output.write(cliVersion());
      throw new CommanderError(exitCodes.ok, 'commander.version', 'version printed');
    })
    .showHelpAfterError('(run improv --help, or improv <command> --help)')
    .exitOverride()
    .configureOutput({
      writeOut: (text) => output.write(text.trimEnd()),
      writeErr: (text) => output.write(text.trimEnd()),
    });

  /** The options `run` and `server` share: how the pipeline runs, and where its control server listens. */
  const pipelineOptions = (command: Program): Program =>
    command
      .argument('<pipeline>', 'pipeline YAML file')
      .option('--run-dir <dir>', 'folder for this run’s log and token (default: runs/<pipeline>-<time>)')
      .option('--no-log-files', 'write no run folder')
      .option(
        '-f, --logfile <file>',
        'also append every log record to this file, as improv’s -f does (written with --no-log-files too)',
      )
      .addOption(
        new Option('--log-level <level>', 'lowest level shown in the terminal (the run log keeps all)')
          .choices(logLevels)
          .default('info'),
      )
      .addOption(hostsOption())
      .addOption(runtimeOption())
      .addOption(storeOption())
      .addOption(
        new Option(
          '--transport <name>',
          'links of connections that name no transport use this one, whatever settings.transport says (local, zmq)',
        ).choices(transportNames),
      )
      .option(
        '--bind <address>',
        'address the control server listens on (default 127.0.0.1; another one lets other machines in, with the token)',
      )
      .option('--port <port>', 'port of the control server (default: a free one)', parsePort)
      .option(
        '--dashboard',
        'print the address of the web dashboard (live graph, metrics, log and plots); opens nothing',
      );

  pipelineOptions(
    program
      .command('run')
      .description('start a pipeline and drive it: the live UI in a terminal, the prompt, or --script')
      .option('-s, --script <steps>', 'run these steps, then quit, e.g. "setup; run; wait 2s; stop; quit"')
      .option('--no-ui', 'the plain prompt instead of the live UI (also without a terminal, or with --script)')
      .option('--start', 'set up and run the pipeline at once, then the live UI or the prompt as usual'),
  )
    .addHelpText(
      'after',
      `\n${commandHelpText()}\n  wait 2s  (scripts only) wait before the next step\n\nEvery run serves its control plane on 127.0.0.1 (see improv server --help): improv list,\nimprov client, improv top, improv logs, improv tap and improv quit reach it from another terminal.\n\nExit code: 0; 1 when an actor failed during the run (even if it was restarted) or a command of\n--script did not succeed (refused, or an actor failed in it), said in the last line; 2 for a\nbad pipeline or option.\n\nExamples:\n  improv run apps/minimal/minimal.yaml\n  improv run apps/minimal/minimal.yaml --script "setup; run; wait 2s; stop; quit"\n  improv run apps/minimal/minimal.yaml --runtime deno\n  improv run apps/minimal/minimal.yaml --store lmdb\n  improv run apps/minimal/minimal.yaml --transport zmq`,
    )
    .action(async (pipeline: string, options: RunOptions) => {
      if (await switched(options.runtime)) return;
      if (!permitted('run')) return;
      exitCode = await runCommand(pipeline, options, output);
    });

  pipelineOptions(
    program
      .command('server')
      .description('start a pipeline headless: driven only through its control server (improv client, cmd, curl)'),
  )
    .addHelpText(
      'after',
      `\nIt prints the run's id, its URL and where its token is, and serves until the pipeline quits\n(improv quit <id>, Ctrl-C, SIGTERM or SIGHUP). The token is written readable by you only, in the run folder\n(or ~/.improv/runs/ with --no-log-files), and the run is listed in ~/.improv/runs/ for improv list;\nboth are removed when it quits. The protocol (HTTP + WebSocket) is in the @improv/cli README.\n\nExamples:\n  improv server apps/minimal/minimal.yaml\n  improv client                   # the live UI, attached (several clients at once)\n  improv cmd <id> setup; improv cmd <id> run; improv quit <id>\n  curl -H "Authorization: Bearer $(cat <token file>)" <url>/api/v1/status`,
    )
    .action(async (pipeline: string, options: RunOptions) => {
      if (await switched(options.runtime)) return;
      if (!permitted('run')) return;
      exitCode = await runCommand(pipeline, options, output, true);
    });

  const tokenOption = () =>
    new Option('--token-file <file>', 'the token of a run named by its URL (else IMPROV_TOKEN, or the registry)');
  const runArgument = '[run]';
  const runHelpRequired = 'run id (improv list shows them; a unique start is enough), or the server URL';
  const runHelp = `${runHelpRequired}; default: the only run`;

  program
    .command('list')
    .description('the pipelines running on this host: id, pipeline, state, uptime, CPU, memory, URL')
    .option('--json', 'one JSON object per run')
    .action(async (options: { json?: boolean }) => {
      exitCode = await listCommand(options, output);
    });

  /** A command that reaches one running pipeline: `[run]` and `--token-file`. */
  const runClient = (name: string, help: string) =>
    program.command(name).description(help).argument(runArgument, runHelp).addOption(tokenOption());

  for (const [name, mode, help] of [
    ['client', 'full', 'the live UI, attached to a running pipeline (several clients at once)'],
    ['top', 'top', 'the live table of actors and links of a running pipeline (one table without a terminal)'],
  ] as const) {
    runClient(name, help).action(async (run: string | undefined, options: { tokenFile?: string }) => {
      exitCode = await attachCommand(mode, run, options, output);
    });
  }

  program
    .command('cmd')
    .description('give a running pipeline a command: setup, run, pause, resume, stop, quit, status, revive <actor>')
    .argument('<run>', runHelpRequired)
    .argument('<command...>', 'the command, as typed at the prompt')
    .addOption(tokenOption())
    .addHelpText(
      'after',
      `\n${commandHelpText()}\n\nExamples:\n  improv cmd minimal-3fa2 setup\n  improv cmd minimal-3fa2 revive Processor`,
    )
    .action(async (run: string, words: string[], options: { tokenFile?: string }) => {
      exitCode = await cmdCommand(run, words.join(' '), options, output);
    });

  for (const [name, help] of [
    ['stop', 'stop a running pipeline’s run (improv cmd <run> stop)'],
    ['quit', 'quit a running pipeline and wait until it has ended'],
    ['pause', 'pause a running pipeline'],
    ['resume', 'resume a paused pipeline'],
  ] as const) {
    runClient(name, help).action(async (run: string | undefined, options: { tokenFile?: string }) => {
      exitCode = await cmdCommand(run, name, options, output, name);
    });
  }

  runClient('dashboard', 'print the address of a running pipeline’s web dashboard (opens nothing)')
    .addHelpText(
      'after',
      "\nOpen the address in a browser on this machine: the pipeline graph with states and link rates, the\nmetrics over time, the log, the command buttons and a panel per plotted stream (the Plot actor,\nor this.publish(name, value) in any actor). The address holds the run's token; do not share it.\n\nExamples:\n  improv run apps/minimal/minimal.yaml --dashboard\n  improv dashboard minimal-3fa2",
    )
    .action(async (run: string | undefined, options: { tokenFile?: string }) => {
      exitCode = await dashboardCommand(run, options, output);
    });

  runClient('logs', 'the log of a running pipeline; --follow goes on as it is written')
    .option('-F, --follow', 'keep printing new records until the run quits (or Ctrl-C)')
    .option('--actor <name>', 'only this actor’s records (or nexus)')
    .option('--grep <regex>', 'only records whose "source: message" matches (case-insensitive)')
    .addOption(new Option('--level <level>', 'only this level and above').choices(logLevels))
    .option('--json', 'one JSON object per record: time, level, source, message, stack')
    .option('-n, --lines <count>', 'how many past records', (value) => Number(value), 100)
    .action(async (run: string | undefined, options: LogsOptions) => {
      exitCode = await logsCommand(run, options, output);
    });

  program
    .command('tap')
    .description('the messages on a connection as they pass (summarised: keys, dtypes, shapes), and its rate')
    .argument('<run>', runHelpRequired)
    .argument('<connection>', 'the connection’s name in the YAML (Generator.q_out in improv’s short form)')
    .option('-c, --count <n>', 'stop after this many messages', (value) => Number(value))
    .option('--json', 'one JSON object per message, no rate lines')
    .addOption(tokenOption())
    .action(
      async (run: string, connection: string, options: { count?: number; json?: boolean; tokenFile?: string }) => {
        exitCode = await tapCommand(run, connection, options, output);
      },
    );

  program
    .command('graph')
    .description('draw a pipeline’s graph: Mermaid (default), Graphviz dot, or a laid-out SVG')
    .argument('<pipeline>', 'pipeline YAML file')
    .option(
      '--format <format>',
      'mermaid, dot or svg (default: mermaid; with --out, from its ending: .svg, .dot or .gv, else .mmd, .md, .txt or none for mermaid)',
    )
    .option('-o, --out <file>', 'write it to this file instead of printing it')
    .addHelpText(
      'after',
      [
        '',
        'Actors are nodes (name and class, with their runtime or host when they run in a process of their',
        'own; Python actors in yellow); every source → sink pair of a connection is an edge, labelled with its',
        'links (q_out → q_in) and its capacity, policy and transport when not the default. Actor modules are',
        'not loaded: the graph needs only the YAML and the module files.',
        '',
        'Examples:',
        '  improv graph apps/minimal/minimal.yaml',
        '  improv graph pipeline.yaml --format dot | dot -Tpng -o graph.png',
        '  improv graph pipeline.yaml -o graph.svg',
      ].join('\n'),
    )
    .action(async (pipeline: string, options: { format?: string; out?: string }) => {
      const folder = await refuseFolder('graph', pipeline, output);
      if (folder !== undefined) {
        exitCode = folder;
        return;
      }
      // Imported when used: the layout library loads for this command only.
      const { graphCommand } = await import('./graph.ts');
      exitCode = await graphCommand(pipeline, options, output);
    });

  program
    .command('cleanup')
    .description(
      'end what crashed runs left behind (processes, sockets, temporary stores, registry entries) and say what',
    )
    .option('--dry-run', 'only say what would be removed')
    .action(async (options: { dryRun?: boolean }) => {
      exitCode = await cleanupCommand(options, output);
    });

  program
    .command('validate')
    .description('check a pipeline and report every error at once, with file:line:column')
    .argument('<pipeline>', 'pipeline YAML file, or a folder: every .yaml/.yml file in it (not in subfolders)')
    .option('--no-check-modules', 'do not import the actor modules (only check the YAML)')
    .addOption(hostsOption())
    .addOption(storeOption())
    .addOption(runtimeOption())
    .addHelpText(
      'after',
      `\nActor keys improv-ts reads (every other key is an option of the actor):\n${actorKeyHelp.map(([key, help]) => `  ${key.padEnd(16)} ${help}`).join('\n')}\n\nAn actor in its own process needs store: lmdb or redis (lmdb when settings.store is not written);
an actor on another host (host:) needs store: redis (chosen when settings.store is not written).

A Python actor (package: a .py file, or improv's dotted form naming one) runs in a Python process of
its own on settings.python (default python3 on PATH); validate imports its file with that interpreter
and reports a syntax error (file:line), a missing module or class, or numpy/pyzmq/msgpack missing.

hosts: names the machines that run improv agent, each  <name>: { address, port, token_file }:
  address     where the agent listens (improv agent --listen <address>:<port>)
  port        its port (default 7310)
  token_file  a copy of the agent's token file (default ~/.improv/agent.token), relative to the YAML`,
    )
    .action(async (pipeline: string, options: ValidateOptions & { runtime?: RuntimeName }) => {
      if (await switched(options.runtime)) return;
      if (!permitted('validate')) return;
      exitCode = await validateCommand(pipeline, options, output);
    });

  program
    .command('new')
    .description('start a project: package.json, a pipeline of two actors, a test and a README')
    .argument('<dir>', 'a new (or empty) folder')
    .addHelpText('after', '\nThen:\n  cd <dir>\n  npm install\n  npx improv run pipeline.yaml')
    .action((dir: string) => {
      const result = newProject(dir);
      for (const line of result.lines) output.write(line);
      exitCode = result.ok ? exitCodes.ok : exitCodes.usage;
    });

  program
    .command('keys')
    .description('make a CURVE key pair for zmq links: <out>.key (public, to share) and <out>.key_secret (private)')
    .option('-o, --out <path>', 'where to write the pair, without the .key ending', 'keys/pipeline')
    .option('--force', 'replace a pair that is already there')
    .addHelpText(
      'after',
      '\nThen name it in the pipeline:\n  settings:\n    transport: zmq\n    zmq: { protocol: tcp, bind: 198.18.0.1, keys: keys/pipeline }\nor set IMPROV_ZMQ_KEYS=keys/pipeline. Python peers read the same files with zmq.auth.load_certificate.',
    )
    .action(async (options: { out: string; force?: boolean }) => {
      // Imported when used, like every zmq piece: a pipeline on local links never loads it.
      const { keyFiles, writeKeyPair } = await import('@improv/transport-zmq/keys');
      // A path whose last part names the pair: `''` or `keys/` would write the hidden `.key` files.
      const name = path.basename(options.out.trim());
      if (name === '' || name === '.' || name === '..' || /[/\\]$/.test(options.out)) {
        output.write(
          `improv keys: --out ${JSON.stringify(options.out)} names no file; give a path without the ending, e.g. --out keys/pipeline (writes keys/pipeline.key and keys/pipeline.key_secret)`,
        );
        exitCode = exitCodes.usage;
        return;
      }
      try {
        const pair = await writeKeyPair(options.out, { force: options.force === true });
        const { publicFile, secretFile } = keyFiles(options.out);
        output.write(
          `wrote ${secretFile} (secret: keep it, mode 0600) and ${publicFile} (public key ${pair.publicKey})`,
        );
        output.write(`  use it: settings.zmq.keys: ${options.out}   or   IMPROV_ZMQ_KEYS=${options.out}`);
      } catch (error) {
        output.write(`improv keys: ${(error as Error).message}`);
        exitCode = exitCodes.usage;
      }
    });

  program
    .command('agent')
    .description('start and watch actor processes on this machine for a Nexus elsewhere that has the token')
    .requiredOption(
      '--listen <address[:port]>',
      'an address of this machine the Nexus reaches, and a port (default 7310)',
    )
    .option(
      '--token-file <file>',
      'the token a Nexus must present; made (mode 0600) when missing — copy it to the Nexus machine',
      DEFAULT_AGENT_TOKEN_FILE,
    )
    .addOption(new Option('--log-level <level>', 'lowest level shown').choices(logLevels).default('info'))
    .addHelpText(
      'after',
      `\nThe agent starts improv's actor host and nothing else, for a Nexus that presents the token; the\nconnection is ZeroMQ with CURVE, its keys derived from the token. When that Nexus quits, stops\nanswering for 5 s or its connection breaks, every process started for it ends. Ctrl-C stops the agent.\n\nOn the Nexus machine:\n  hosts:\n    rig: { address: 10.0.0.2, token_file: rig.token }   # a copy of this machine's token file\n  actors:\n    Stimulus: { package: actors/stim.ts, class: Stimulus, host: rig }\n\nThe actors' files must be at the same path on both machines (a shared or synced folder).\n\nExample:\n  improv agent --listen 10.0.0.2:7310 --token-file ~/.improv/agent.token`,
    )
    .action(async (options: { listen: string; tokenFile: string; logLevel: LogLevel }) => {
      exitCode = await agentCommand(options, output);
    });

  program
    .command('store')
    .description('look into an LMDB store, kept after its run: ls <path>, get <path> <key> [--out file]')
    .argument('[args...]', 'ls <path> | get <path> <key> [--out file.npy|.bin|.json]')
    .helpOption(false)
    .allowUnknownOption()
    .action(async (args: string[]) => {
      // Imported when used: it loads the native lmdb module, which no other command needs.
      const { runStoreCommand } = await import('./store-command.ts');
      const write = (text: string) => output.write(text);
      exitCode = await runStoreCommand(args, { stdout: write, stderr: write });
    });

  program.addHelpText(
    'after',
    '\nComing from Python improv? server, client, list and cleanup are here; improv run is server and client\nin one terminal. improv’s -c is --port here (an IP part is --bind); -o, -l and -a are not needed.',
  );

  if (argv.length === 0) {
    program.outputHelp();
    return exitCodes.usage;
  }
  const hint = improvHint(argv, program);
  if (hint !== undefined) {
    output.write(hint);
    return exitCodes.usage;
  }
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      const quiet = ['commander.helpDisplayed', 'commander.version', 'commander.help'];
      return quiet.includes(error.code) ? exitCodes.ok : exitCodes.usage;
    }
    throw error;
  }
  return exitCode;
}

let lateHangUpsIgnored = false;

/**
 * Nexus quits on SIGHUP while it runs; once it has quit, a late one (a closed terminal sends several:
 * the shell passes its own on, the kernel sends one to the foreground group) must not end improv
 * before it has removed its run from the registry. Called once the pipeline is loaded and Nexus
 * listens.
 */
function ignoreLateHangUps(): void {
  if (lateHangUpsIgnored) return;
  lateHangUpsIgnored = true;
  process.on('SIGHUP', () => {});
}

/** `improv agent`: serves until SIGINT, SIGTERM or SIGHUP, then ends what it started. */
async function agentCommand(
  options: { listen: string; tokenFile: string; logLevel: LogLevel },
  output: Output,
): Promise<number> {
  const { serveAgent } = await import('@improv/transport-zmq/agent');
  const minimum = logLevels.indexOf(options.logLevel);
  const log = (level: LogLevel, message: string) => {
    if (logLevels.indexOf(level) >= minimum)
      output.write(`${new Date().toISOString()} ${level.padEnd(5)} agent: ${message}`);
  };
  let agent: Awaited<ReturnType<typeof serveAgent>>;
  try {
    agent = await serveAgent({ listen: options.listen, tokenFile: options.tokenFile, log });
  } catch (error) {
    output.write(
      (error as Error).message.startsWith('improv agent')
        ? (error as Error).message
        : `improv agent: ${(error as Error).message}`,
    );
    return exitCodes.usage;
  }
  if (agent.madeToken)
    log(
      'info',
      `made a new token in ${agent.tokenFile}: copy this file to the Nexus machine (hosts.<name>.token_file)`,
    );
  log('info', `listening on ${agent.address.replace(/^tcp:\/\//, '')} (token ${agent.tokenFile}); Ctrl-C stops`);
  await new Promise<void>((resolve) => {
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    const stop = (signal: string) => {
      log('info', `${signal}: stopping, ending every actor process started here`);
      for (const each of signals) process.off(each, stop);
      resolve();
    };
    for (const each of signals) process.on(each, stop);
  });
  await agent.close();
  return exitCodes.ok;
}

/**
 * At exit, closes the standard streams that were a terminal which has since been closed (a hang-up:
 * it answers no longer, `isatty` says no). Node (20, 22) restores the terminal's settings on exit
 * and aborts (exit 134) when the terminal is gone; it skips a stream that is closed.
 */
function releaseClosedTerminalAtExit(): void {
  const wasTerminal = [0, 1, 2].filter((fd) => isatty(fd));
  if (wasTerminal.length === 0) return;
  process.once('exit', () => {
    for (const fd of wasTerminal) {
      if (isatty(fd)) continue;
      try {
        closeSync(fd);
      } catch {
        // already closed, or the runtime does not let it be
      }
    }
  });
}

function defaultOutput(): Output {
  releaseClosedTerminalAtExit();
  // A reader that went away (`improv … | head`: EPIPE) or a terminal that was closed (EIO, while the
  // SIGHUP quits the pipeline) ends the output quietly: no stack trace, and the pipeline goes on to
  // its end (a script still quits cleanly, every stop() runs).
  let closed = false;
  process.stdout.on('error', (error: { code?: string }) => {
    if (error.code !== 'EPIPE' && error.code !== 'EIO') throw error;
    closed = true;
  });
  return {
    write: (line) => {
      if (!closed) process.stdout.write(`${line}\n`);
    },
    colour: Boolean(process.stdout.isTTY) && process.env.NO_COLOR === undefined,
  };
}

/** The version in the CLI's own package.json, wherever the package is installed. */
function cliVersion(): string {
  const file = path.join(packageRoot, 'package.json');
  try {
    const { version } = ownManifest();
    if (typeof version === 'string') return version;
    return `unknown (${file} has no version)`;
  } catch (error) {
    return `unknown (cannot read ${file}: ${(error as Error).message})`;
  }
}

/** Validates one pipeline file, or every .yaml/.yml file of a folder (sorted, not recursive). */
type ValidateOptions = { checkModules: boolean; hosts?: 'local'; store?: StoreName };

/** The `.yaml`/`.yml` files of `folder` (sorted), or `undefined` when `target` is no folder. */
async function pipelineFilesIn(target: string): Promise<string[] | undefined> {
  const isFolder = await stat(target).then(
    (info) => info.isDirectory(),
    () => false, // missing or unreadable: loading it as a file says what is wrong
  );
  if (!isFolder) return undefined;
  const entries = await readdir(target, { withFileTypes: true });
  return entries
    .filter((entry) => /\.ya?ml$/i.test(entry.name) && (entry.isFile() || entry.isSymbolicLink()))
    .map((entry) => entry.name)
    .sort();
}

/**
 * For a command that runs one pipeline: when `target` is a folder, says so and names its pipeline
 * files (the exit code 2); else `undefined`.
 */
async function refuseFolder(command: string, target: string, output: Output): Promise<number | undefined> {
  const folder = target.replace(/\/+$/, '');
  let names: string[] | undefined;
  try {
    names = await pipelineFilesIn(target);
  } catch (error) {
    output.write(`improv ${command}: ${folder} is a folder, and it cannot be read: ${(error as Error).message}`);
    output.write('  fix: give the path of a pipeline file');
    return exitCodes.usage;
  }
  if (names === undefined) return undefined;
  output.write(`improv ${command}: ${folder} is a folder; give one pipeline file`);
  output.write(
    names.length === 0
      ? `  fix: ${folder} has no .yaml or .yml files; give the path of a pipeline file`
      : `  fix: improv ${command} ${path.join(folder, names[0]!)}${names.length > 1 ? ` (its pipeline files: ${names.join(', ')})` : ''}`,
  );
  return exitCodes.usage;
}

async function validateCommand(target: string, options: ValidateOptions, output: Output): Promise<number> {
  let names: string[] | undefined;
  try {
    names = await pipelineFilesIn(target);
    if (names === undefined) return validateFile(target, options, output);
  } catch (error) {
    output.write(`improv validate: cannot read the folder ${target}: ${(error as Error).message}`);
    output.write('  fix: give a folder you can read, or one pipeline file');
    return exitCodes.usage;
  }
  if (names.length === 0) {
    output.write(`improv validate: ${target} has no .yaml or .yml files (subfolders are not searched)`);
    output.write(
      `  fix: give the folder that holds the pipeline files, or one file: improv validate ${target.replace(/\/+$/, '')}/<pipeline>.yaml`,
    );
    return exitCodes.usage;
  }
  let failed = 0;
  for (const name of names) {
    if ((await validateFile(path.join(target, name), options, output)) !== exitCodes.ok) failed += 1;
  }
  const valid = names.length - failed;
  output.write(
    `${target}: ${names.length} pipeline file(s): ${valid} valid${failed > 0 ? `, ${failed} with errors` : ''}`,
  );
  return failed > 0 ? exitCodes.usage : exitCodes.ok;
}

async function validateFile(pipeline: string, options: ValidateOptions, output: Output): Promise<number> {
  const runtime = await detectRuntime();
  const result = await loadConfig(pipeline, {
    adapter: runtime,
    checkModules: options.checkModules,
    storeSizeLimits: defaultStoreSizeLimits(),
    hostsLocal: options.hosts === 'local',
    ...(options.store === undefined ? {} : { storeOverride: options.store }),
  });
  if (result.config) {
    const problem = await checkTransports(result.config);
    if (problem instanceof ConfigError) {
      result.diagnostics.push(...problem.diagnostics);
      result.config = undefined;
    } else if (problem !== undefined) {
      result.diagnostics.push({ severity: 'error', message: problem, path: ['settings', 'transport'] });
      result.config = undefined;
    }
  }
  if (result.config) {
    const hostProblems = await checkHosts(result.config);
    if (hostProblems.length > 0) {
      result.diagnostics.push(...hostProblems);
      result.config = undefined;
    }
  }
  if (result.config) {
    const storeProblem = await checkStore(result.config);
    if (storeProblem !== undefined) {
      result.diagnostics.push(storeProblem);
      result.config = undefined;
    }
  }
  const errors = result.diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = result.diagnostics.length - errors;
  if (result.diagnostics.length > 0) output.write(formatDiagnostics(result.diagnostics, { cwd: runtime.cwd() }));
  if (result.config) {
    const { actors, connections } = result.config;
    output.write(
      `${pipeline}: valid — ${actors.length} actor(s), ${connections.length} connection(s)${warnings ? `, ${warnings} warning(s)` : ''}`,
    );
    return exitCodes.ok;
  }
  output.write(`${pipeline}: ${errors} error(s)${warnings ? `, ${warnings} warning(s)` : ''}`);
  return exitCodes.usage;
}

/** Makes the transports a run would (key files read, addresses checked) and closes them; the problem, if any. */
async function checkTransports(config: PipelineConfig): Promise<ConfigError | string | undefined> {
  try {
    const transport = await openPipelineTransport((settings) => transportsFor(settings, config), config);
    await transport.close();
    return undefined;
  } catch (error) {
    return ConfigError.isInstance(error) ? (error as ConfigError) : (error as Error).message;
  }
}

async function runCommand(pipeline: string, options: RunOptions, output: Output, headless = false): Promise<number> {
  let steps: ScriptStep[] | undefined;
  if (options.start === true && options.script !== undefined) {
    output.write(
      'improv run: --start and --script both say what to do first; put setup; run at the start of the script instead',
    );
    return exitCodes.usage;
  }
  if (options.script !== undefined) {
    try {
      steps = parseScript(options.script);
    } catch (error) {
      output.write(`improv run: ${(error as Error).message}`);
      return exitCodes.usage;
    }
  }
  const folder = await refuseFolder(headless ? 'server' : 'run', pipeline, output);
  if (folder !== undefined) return folder;
  const runtime = await detectRuntime();
  // The run folder first: a bad one is a usage error, found before any worker starts.
  if (options.logFiles && options.runDir !== undefined) {
    try {
      await runtime.makeDirectory(options.runDir);
    } catch (error) {
      output.write(`improv run: --run-dir: ${(error as Error).message}; give a folder you can write to`);
      return exitCodes.usage;
    }
  }
  let logFile: AppendFile | undefined;
  if (options.logfile !== undefined) {
    try {
      await runtime.makeDirectory(runtime.path.dirname(runtime.path.resolve(options.logfile)));
      logFile = await runtime.openAppendFile(options.logfile);
    } catch (error) {
      output.write(`improv run: --logfile: ${(error as Error).message}; give a file you can write to`);
      return exitCodes.usage;
    }
  }
  try {
    return await drive(pipeline, options, output, { runtime, steps, logFile, headless });
  } finally {
    await logFile?.close();
  }
}

/** How a run is driven once it has started. */
type FrontEnd = 'script' | 'prompt' | 'ui' | 'server';

/**
 * Starts the pipeline and its control server, and drives it from `steps`, the live UI, the prompt,
 * or (`improv server`) only from clients; resolves to the exit code.
 */
async function drive(
  pipeline: string,
  options: RunOptions,
  output: Output,
  context: {
    runtime: RuntimeAdapter;
    steps: ScriptStep[] | undefined;
    logFile: AppendFile | undefined;
    headless?: boolean;
  },
): Promise<number> {
  const { runtime, steps, logFile } = context;
  const minimum = logLevels.indexOf(options.logLevel);
  const frontEnd: FrontEnd = context.headless
    ? 'server'
    : steps
      ? 'script'
      : options.ui !== false && process.stdin.isTTY && process.stdout.isTTY
        ? 'ui'
        : 'prompt';
  let print = (line: string) => output.write(line);
  // The live UI shows the log itself: nothing is printed under it.
  let printLogs = frontEnd !== 'ui';
  const logs = new LogHistory();
  let nexus: Nexus;
  // What makes the exit code 1, said in the last line: actors that failed (how often), script commands that did not succeed.
  const failedActors = new Map<string, number>();
  let failedCommands = 0;
  const onEvent = (event: NexusEvent) => {
    if (event.type === 'log') {
      logFile?.write(`${formatLogRecord(event.record, { stack: true })}\n`);
      logs.push(event.record);
      if (printLogs && logLevels.indexOf(event.record.level) >= minimum) print(formatRecord(event.record, output));
    }
    if (event.type === 'actor-state' && event.state === 'failed') {
      failedActors.set(event.actor, (failedActors.get(event.actor) ?? 0) + 1);
    }
  };
  try {
    const nexusOptions: DefaultNexusOptions = { config: pipeline, runtime, onEvent: (event) => onEvent(event) };
    if (options.store !== undefined) nexusOptions.storeOverride = options.store;
    if (options.transport !== undefined) nexusOptions.transportOverride = options.transport;
    if (options.hosts === 'local') nexusOptions.hostsLocal = true;
    if (!options.logFiles) nexusOptions.runDir = false;
    else if (options.runDir !== undefined) nexusOptions.runDir = options.runDir;
    nexus = await createDefaultNexus(nexusOptions);
  } catch (error) {
    if (ConfigError.isInstance(error)) {
      output.write(formatDiagnostics((error as ConfigError).diagnostics, { cwd: runtime.cwd() }));
      const again = `improv validate ${pipeline}${options.store === undefined ? '' : ` --store ${options.store}`}`;
      output.write(`${pipeline}: not started; fix the errors above (${again} checks again)`);
      return exitCodes.usage;
    }
    output.write(`improv run: the pipeline could not start: ${(error as Error).message}`);
    return exitCodes.failure;
  }

  ignoreLateHangUps();
  const stopWatching = watchParent(() => {
    print('improv: its parent process is gone; quitting');
    void nexus.quit();
  });
  void nexus.closed.then(stopWatching);
  // Ctrl-C or SIGTERM while the actors were loading: the pipeline has quit already; no prompt.
  if (nexus.status().state === 'quitting' || nexus.status().state === 'exited') {
    await nexus.closed;
    return runExitCode(failedActors, failedCommands, output);
  }

  let session: ControlSession;
  try {
    const sessionOptions: ControlSessionOptions = { pipeline };
    if (options.bind !== undefined) sessionOptions.bind = options.bind;
    if (options.port !== undefined) sessionOptions.port = options.port;
    session = await startControlSession(nexus, logs, sessionOptions);
  } catch (error) {
    output.write(
      `improv ${frontEnd === 'server' ? 'server' : 'run'}: the control server could not start: ${(error as Error).message}; give another --port, or --bind an address of this machine`,
    );
    await nexus.quit();
    return exitCodes.usage;
  }
  const { info } = session;
  if (options.bind !== undefined && !['127.0.0.1', 'localhost', '::1'].includes(options.bind)) {
    print(
      `improv: the control server listens on ${info.url}, beyond this machine: whoever reaches it with the token (in ${info.tokenFile}) drives the pipeline`,
    );
  }
  const announce = `run ${info.id}: control ${info.url} (token in ${info.tokenFile}); improv client ${info.id} attaches, improv quit ${info.id} quits`;
  if (options.dashboard === true) {
    const page = builtPage();
    print(
      page.ok ? `dashboard: ${dashboardAddress(info.url, session.token)}` : `improv: no dashboard: ${page.message}`,
    );
  }

  const give = async (line: string, by: string): Promise<void> => {
    const result = await executeCommandLine(nexus, line, by);
    if (result.ok) {
      // Hints and confirmations are for the person at the prompt; a script prints only what it asks for.
      if (result.message !== '' && (frontEnd !== 'script' || /^\s*status\s*$/i.test(line))) print(result.message);
      return;
    }
    print(result.code === 'unknown' ? result.message : `${result.code}: ${result.message}`);
    if (frontEnd === 'script') failedCommands += 1;
  };
  const prompt = () =>
    promptUntilClosed(nexus, give, announce, (printer) => {
      print = printer;
    });

  try {
    if (options.start === true && frontEnd !== 'script') {
      for (const command of ['setup', 'run']) {
        if (nexus.status().state === 'quitting' || nexus.status().state === 'exited') break;
        await give(command, '--start');
      }
    }
    if (frontEnd === 'script') {
      for (const step of steps ?? []) {
        if (nexus.status().state === 'quitting' || nexus.status().state === 'exited') break;
        // A wait ends early when the pipeline quits (Ctrl-C, SIGTERM): its timer must not keep us alive.
        if (step.kind === 'wait') await sleepUnless(step.ms, nexus.closed);
        else if (step.kind === 'revive') await give(`revive ${step.actor}`, 'script');
        else await give(step.command, 'script');
      }
      await nexus.quit();
    } else if (frontEnd === 'server') {
      print(`improv server: serving ${pipeline} as ${announce}`);
      await nexus.closed;
    } else if (frontEnd === 'ui') {
      const { runTui } = await import('./tui/index.ts');
      const source = await connectRun({ url: info.url, token: session.token, info });
      const left = await runTui(source, { mode: 'full', logLevel: options.logLevel, title: info.id });
      source.close();
      // Its terminal went away and no SIGHUP came to say so: quit as that SIGHUP would have made us.
      if (left === 'terminal-gone') {
        await nexus
          .command('quit', { by: 'the live UI: its terminal is gone, closed without a SIGHUP' })
          .catch(() => {});
      }
      // Leaving the UI (detach) keeps the pipeline going, at the plain prompt; after quit, the end is awaited.
      const state = nexus.status().state;
      if (left === 'detach' && state !== 'quitting' && state !== 'exited') {
        printLogs = true;
        await prompt();
      }
    } else {
      await prompt();
    }
  } finally {
    await nexus.closed;
    await session.close();
  }
  return runExitCode(failedActors, failedCommands, output);
}

/**
 * 1 when an actor failed during the run (restarted or not: a restart may have cost the message it
 * was working on) or a scripted command did not succeed, with a last line that says which; else 0.
 */
function runExitCode(failedActors: Map<string, number>, failedCommands: number, output: Output): number {
  if (failedActors.size === 0 && failedCommands === 0) return exitCodes.ok;
  const reasons = [...failedActors].map(
    ([actor, times]) => `actor "${actor}" failed${times > 1 ? ` ${times} times` : ''} during the run`,
  );
  if (failedCommands > 0) {
    reasons.push(
      failedCommands === 1
        ? 'a command of the script did not succeed'
        : `${failedCommands} commands of the script did not succeed`,
    );
  }
  output.write(`improv: exit code 1: ${reasons.join('; ')} (see the log above)`);
  return exitCodes.failure;
}

/** The plain prompt, until the pipeline has quit. `setPrint` receives the prompt's printer. */
async function promptUntilClosed(
  nexus: Nexus,
  give: (line: string, by: string) => Promise<void>,
  announce: string,
  setPrint: (print: (line: string) => void) => void,
): Promise<void> {
  const prompt = startPrompt({
    // status and quit are answered at once, even while another command is under way.
    urgent: (line) => ['status', 'quit', 'help'].includes(resolveCommandWord(line.trim()) ?? ''),
    onLine: (line) => give(line, 'prompt'),
    complete: (line) =>
      completions(
        line,
        nexus.config.actors.map((actor) => actor.name),
      ),
    onEnd: () => {
      const { state } = nexus.status();
      if (state !== 'quitting' && state !== 'exited') {
        prompt.print(
          'improv: the input ended (stdin closed): quitting; to keep a run going without input, give --script, or run improv server',
        );
      }
      void nexus.quit();
    },
  });
  setPrint(prompt.print);
  prompt.print(announce);
  // What to type next depends on where the pipeline is (--start has set it up and run it already).
  const state = nexus.status().state;
  prompt.print(
    state === 'running'
      ? 'type help for the commands; it runs: pause, stop or quit'
      : state === 'ready' || state === 'stopped'
        ? 'type help for the commands; run starts it'
        : 'type help for the commands; setup, then run',
  );
  await nexus.closed;
  prompt.close();
}

/** `--port`: a port number, 0 for a free one. */
function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new InvalidArgumentError('give a port number from 1 to 65535 (or 0 for a free one)');
  }
  return port;
}

/**
 * Calls `gone` once when the process that started improv has ended (npx killed by SIGTERM or
 * SIGKILL; a terminal closed): the process is then re-parented, so its parent id changes. npm 11's
 * npx starts improv through `sh -c`, and that shell outlives a killed npx: so when the parent is a
 * shell that npm started, the shell's own parent is watched too (Linux, through /proc). Polled once
 * a second, on a timer that never keeps the process alive. Returns the function that stops it.
 */
function watchParent(gone: () => void): () => void {
  const parent = process.ppid;
  const npm = npmAbove(parent);
  const timer = setInterval(() => {
    if (process.ppid === parent && (npm === undefined || parentOf(parent) === npm)) return;
    clearInterval(timer);
    gone();
  }, 1000);
  (timer as { unref?: () => void }).unref?.();
  return () => clearInterval(timer);
}

/** The pid of npm (npx, `npm exec`) when `shell` is a shell it started improv through; else undefined. */
function npmAbove(shell: number): number | undefined {
  try {
    const name = readFileSync(`/proc/${shell}/comm`, 'utf8').trim();
    if (!['sh', 'dash', 'bash', 'zsh'].includes(name)) return undefined;
    const above = parentOf(shell);
    if (above === undefined) return undefined;
    const command = readFileSync(`/proc/${above}/cmdline`, 'utf8').replaceAll('\0', ' ');
    return /^npm\b|\bnpx\b|npm-cli\.js|npx-cli\.js/.test(command) ? above : undefined;
  } catch {
    return undefined; // no /proc (macOS), or the process is gone already
  }
}

/** The parent pid of `pid` (Linux, /proc), undefined when it cannot be read. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // pid (comm) state ppid …: comm may hold spaces and parentheses, so read after the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}
