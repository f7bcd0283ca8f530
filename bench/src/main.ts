/**
 * `npm run bench`: the command line of the bench.
 * @module
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { type RuntimeName, runtimeNames, runUnder } from '@improv/cli';
import {
  currentRuntimeName,
  DEFAULT_LINK_CAPACITY,
  detectRuntime,
  parseByteSize,
  type StoreName,
  storeNames,
} from '@improv/core';
import { CommanderError, InvalidArgumentError, Option, Command as Program } from 'commander';
import { dashboardBenchProblem, renderDashboardOverhead, runDashboardOverhead } from './dashboard.ts';
import { hostsUnavailable } from './hosts.ts';
import { renderMetricsOverhead, runMetricsOverhead } from './metrics-overhead.ts';
import { findPython } from './python.ts';
import { updateReadme, updateZmqReadmes } from './readme.ts';
import { renderCsv, renderReport } from './report.ts';
import { openBenchStore, StoreOpenError } from './stores.ts';
import { CAPACITY_SMALL, MAX_CAPACITY, runSuite } from './suite.ts';

/** Where results go unless `--out` says otherwise. */
export const defaultResultsDir = fileURLToPath(new URL('../results', import.meta.url));
const entry = fileURLToPath(new URL('../bin/bench.mjs', import.meta.url));
const defaultReadme = fileURLToPath(new URL('../../README.md', import.meta.url));
const zmqPackageReadme = fileURLToPath(new URL('../../packages/transport-zmq/README.md', import.meta.url));

interface RunOptions {
  quick?: boolean;
  runtime?: RuntimeName;
  samples?: number;
  throughputMs?: number;
  soak?: number;
  sizes?: number[];
  capacity?: number;
  store: StoreName;
  transport: 'local' | 'zmq';
  zmqSockets: 'auto' | 'zeromq' | 'zmtp';
  zmqProtocol: 'ipc' | 'tcp';
  placement: 'worker' | 'process' | 'hosts' | 'python';
  python?: string;
  metricsOverhead?: boolean;
  dashboard?: boolean;
  rounds?: number;
  out: string;
}

/** Runs the bench CLI with `argv` (without the runtime and script) and resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const write = (line: string) => process.stdout.write(`${line}\n`);
  const progress = (line: string) => process.stderr.write(`${line}\n`);
  let exitCode = 0;
  const program = new Program('improv-bench')
    .description(
      "Measures improv for TypeScript: the pipeline (Nexus, store, links, actors in workers) beside a raw SharedArrayBuffer ring, raw MessagePort messages and memcpy (and, for lmdb and redis, the store's own client library), all in the same run. Prints Markdown tables and writes <out>/<runtime>-<time>.json and .csv (<runtime>-<store>-<time> for lmdb and redis).",
    )
    .showHelpAfterError('(run npm run bench -- --help)')
    // `readme --out` is the subcommand's own option, not the run's.
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: (text) => write(text.trimEnd()), writeErr: (text) => progress(text.trimEnd()) })
    .option('--quick', 'under a minute: the same tables from fewer samples and a 10 s soak')
    .addOption(
      new Option('--runtime <name>', 'run under this runtime (default: the one the bench was started with)').choices(
        runtimeNames,
      ),
    )
    .option('--samples <n>', 'paced messages per latency row (default 3000, quick 250)', positiveInteger)
    .option('--throughput-ms <ms>', 'time per throughput row (default 1000, quick 150)', positiveInteger)
    .option('--soak <seconds>', 'length of the memory soak (default 60, quick 10)', positiveInteger)
    .option('--sizes <list>', 'payload sizes, e.g. 8,4KiB,4MiB (default 8 B … 40 MiB)', sizeList)
    .option(
      '--capacity <n>',
      `messages each link holds in the pipelines of payloads under 1 MiB, and the raw MessagePort and pyzmq baselines' window (default ${CAPACITY_SMALL}; with --placement python ${DEFAULT_LINK_CAPACITY}, a link's own default in a YAML, as improv's figures come from its defaults); 4 from 1 MiB on either way`,
      capacityOption,
    )
    .addOption(
      new Option(
        '--store <driver>',
        "the pipeline's store: memory (shared memory), lmdb (a fresh temp folder, removed after) or redis (a redis-server the driver starts on a free port)",
      )
        .choices(storeNames)
        .default('memory'),
    )
    .addOption(
      new Option(
        '--transport <name>',
        "the pipeline's links: local (SharedArrayBuffer rings) or zmq (ZeroMQ over ipc, or tcp with --zmq-protocol, with raw zeromq.js and raw node:net sockets between two processes as baselines)",
      )
        .choices(['local', 'zmq'])
        .default('local'),
    )
    .addOption(
      new Option(
        '--zmq-sockets <impl>',
        'with --transport zmq: zmtp (the TypeScript ZMTP; auto picks it) or zeromq (zeromq.js, libzmq; Node only)',
      )
        .choices(['auto', 'zeromq', 'zmtp'])
        .default('auto'),
    )
    .addOption(
      new Option(
        '--zmq-protocol <protocol>',
        "with --transport zmq: the links between this host's processes over ipc (unix sockets, the transport's default) or tcp (loopback); the raw baselines go over the same",
      )
        .choices(['ipc', 'tcp'])
        .default('ipc'),
    )
    .addOption(
      new Option(
        '--placement <where>',
        "where each actor runs: worker (a thread of the bench process), process (an OS process of its own; with --transport zmq and --store lmdb or redis), hosts (the pair only: its source on one host, its sink on another — two Linux network namespaces the bench makes, an improv agent in each — links over zmq tcp with CURVE, the Nexus here; implies --transport zmq --store redis, sizes up to 4 MiB unless --sizes; Node as root only) or python (the pair only: its source a TypeScript worker, its sink a Python actor in a Python process, beside raw pyzmq between two Python processes and improv (Python)'s reference figures; implies --transport zmq --store lmdb (or give --store redis), sizes 8,4KiB,4MiB unless --sizes; Node only; see --python)",
      )
        .choices(['worker', 'process', 'hosts', 'python'])
        .default('worker'),
    )
    .option(
      '--python <interpreter>',
      'with --placement python: the interpreter of the Python sink and of raw pyzmq, which needs numpy, pyzmq and msgpack (default: python3 on PATH if it has them, else /usr/bin/python3)',
    )
    .option(
      '--metrics-overhead',
      "only this: the pair's 8 B rows (put, allocate, inline) with metrics on (the default) and off (createNexus({ metrics: false })), in alternating rounds, then times the hosts' measuring code on its own; prints the ratio on ÷ off and measuring's share of each row's time per message, and writes <out>/<runtime>-metrics-overhead-<time>.json (placement worker; --store and --transport apply)",
    )
    .option(
      '--dashboard',
      "only this: a camera → analysis → Plot pipeline (flat out at 256×256; 512×512 at 30 Hz and at 60 Hz; and flat out again with this process pinned to core 0 and Chromium to core 1 with taskset, on Linux with two cores or more) with no page, with a protocol client that takes every plots message and draws nothing, and with a real Chromium (headless, /usr/bin/chromium) drawing its dashboard, driven over a bare DevTools connection (no driver's Network domain, which would make the renderer base64-encode every frame), in rotating rounds; prints frames/s, latency, the images/s the page drew and the ratios to no page, and writes <out>/<runtime>-dashboard-<time>.json",
    )
    .option(
      '--rounds <n>',
      'with --metrics-overhead or --dashboard: rounds of each mode (default 5, quick 3)',
      positiveInteger,
    )
    .option('--out <dir>', 'folder for the JSON and CSV results', defaultResultsDir)
    .addHelpText(
      'after',
      '\nExamples:\n  npm run bench\n  npm run bench -- --quick\n  npm run bench -- --runtime bun\n  npm run bench -- --store lmdb --sizes 8,4KiB,64KiB,1MiB,4MiB\n  npm run bench -- --transport zmq --sizes 8,4KiB,64KiB,4MiB\n  npm run bench -- --placement process --transport zmq --store lmdb --sizes 8,4KiB,64KiB\n  sudo npm run bench -- --placement hosts --quick\n  npm run bench -- --placement python --store lmdb --transport zmq --sizes 8,4KiB,4MiB --python /usr/bin/python3\n  npm run bench -- --metrics-overhead --quick\n  npm run bench -- --dashboard\n  npm run bench -- readme    # put the newest results into README.md',
    )
    .action(async (options: RunOptions, command: Program) => {
      const given = (name: string) => command.getOptionValueSource(name) === 'cli';
      if (options.python !== undefined && options.placement !== 'python') {
        progress(
          `improv-bench: --python names the interpreter of --placement python's sink; add --placement python, or drop --python`,
        );
        exitCode = 2;
        return;
      }
      if (options.placement === 'python') {
        const problem = pythonFlagsProblem(options, given);
        if (problem !== undefined) {
          progress(`improv-bench: ${problem}`);
          exitCode = 2;
          return;
        }
        options.transport = 'zmq';
        if (!given('store')) options.store = 'lmdb';
      }
      if (options.placement === 'hosts') {
        const problem = hostsFlagsProblem(options, given);
        if (problem !== undefined) {
          progress(`improv-bench: ${problem}`);
          exitCode = 2;
          return;
        }
        options.transport = 'zmq';
        options.store = 'redis';
      }
      if (options.transport !== 'zmq' && (given('zmqSockets') || given('zmqProtocol'))) {
        const flag = given('zmqSockets') ? '--zmq-sockets' : '--zmq-protocol';
        progress(`improv-bench: ${flag} is for the zmq links; add --transport zmq, or drop ${flag}`);
        exitCode = 2;
        return;
      }
      if (options.placement === 'hosts' && given('zmqProtocol') && options.zmqProtocol !== 'tcp') {
        progress(
          'improv-bench: --placement hosts links the hosts over tcp (with CURVE), not --zmq-protocol ipc; drop it',
        );
        exitCode = 2;
        return;
      }
      if (options.capacity !== undefined && (options.metricsOverhead === true || options.dashboard === true)) {
        progress(
          `improv-bench: --capacity sets the links of the pipeline rows, not those of --${options.dashboard === true ? 'dashboard' : 'metrics-overhead'}; drop --capacity`,
        );
        exitCode = 2;
        return;
      }
      if (options.rounds !== undefined && options.metricsOverhead !== true && options.dashboard !== true) {
        progress('improv-bench: --rounds is for --metrics-overhead and --dashboard; add one of them, or drop --rounds');
        exitCode = 2;
        return;
      }
      if (options.runtime !== undefined && options.runtime !== currentRuntimeName()) {
        exitCode = await runUnder(options.runtime, argv, progress, { entry, program: 'improv-bench' });
        return;
      }
      exitCode = await runCommand(options, write, progress);
    });

  program
    .command('readme')
    .description("rewrite README.md's Performance tables from the newest results of each runtime")
    .option('--out <dir>', 'folder the results are in', defaultResultsDir)
    .option('--readme <file>', 'the README to update', defaultReadme)
    .option(
      '--stores-only',
      "fill only the Stores section's side-by-side table (the Performance tables stay as they are)",
    )
    .option(
      '--zmq-only',
      "fill only the zmq tables (this README's and packages/transport-zmq/README.md's) from the --transport zmq runs",
    )
    .action(async (options: { out: string; readme: string; storesOnly?: boolean; zmqOnly?: boolean }) => {
      try {
        const zmqReadmes = [options.readme, zmqPackageReadme];
        if (options.zmqOnly === true) {
          const used = await updateZmqReadmes(zmqReadmes, options.out);
          progress(`improv-bench: ${zmqReadmes.join(' and ')} updated from ${used.join(', ')}`);
          return;
        }
        const used = await updateReadme(options.readme, options.out, { storesOnly: options.storesOnly === true });
        progress(`improv-bench: ${options.readme} updated from ${used.join(', ')}`);
      } catch (error) {
        progress(`improv-bench: ${error instanceof Error ? error.message : String(error)}`);
        exitCode = 1;
      }
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) {
      return ['commander.helpDisplayed', 'commander.help', 'commander.version'].includes(error.code) ? 0 : 2;
    }
    throw error;
  }
  return exitCode;
}

async function runCommand(
  options: RunOptions,
  write: (line: string) => void,
  progress: (line: string) => void,
): Promise<number> {
  if (options.metricsOverhead === true) return runOverhead(options, write, progress);
  if (options.dashboard === true) return runDashboard(options, write, progress);
  if (options.placement === 'process' && (options.transport !== 'zmq' || options.store === 'memory')) {
    progress(
      'improv-bench: --placement process needs --transport zmq (links between processes) and --store lmdb or redis (a store every process reaches); e.g. npm run bench -- --placement process --transport zmq --store lmdb',
    );
    return 2;
  }
  let python: string | undefined;
  if (options.placement === 'python') {
    if (currentRuntimeName() !== 'node') {
      progress(
        `improv-bench: --placement python runs on Node only (${pythonNodeOnly}), not ${currentRuntimeName()}; run it with node, e.g. npm run bench -- --placement python`,
      );
      return 2;
    }
    const found = findPython(options.python);
    if ('problem' in found) {
      progress(`improv-bench: --placement python: ${found.problem}`);
      return 2;
    }
    python = found.interpreter;
  }
  if (options.placement === 'hosts') {
    const why = hostsUnavailable();
    if (why !== undefined) {
      progress(
        `improv-bench: --placement hosts makes two Linux network namespaces as hosts, which needs Node running as root and a working \`ip netns\`; ${why}. Run it as root on Linux, e.g. sudo npm run bench -- --placement hosts --quick`,
      );
      return 2;
    }
  }
  // The folder first: a run takes minutes, and its figures must have somewhere to go.
  const out = await outputFolder(options.out, progress);
  if (out === undefined) return 2;
  let results: Awaited<ReturnType<typeof runSuite>>;
  try {
    results = await runSuite({
      quick: options.quick === true,
      log: progress,
      ...(options.samples === undefined ? {} : { samples: options.samples }),
      ...(options.throughputMs === undefined ? {} : { throughputMs: options.throughputMs }),
      ...(options.soak === undefined ? {} : { soakSeconds: options.soak }),
      ...(options.sizes === undefined ? {} : { sizes: options.sizes }),
      ...(options.capacity === undefined ? {} : { capacity: options.capacity }),
      store: options.store,
      transport: options.transport,
      zmqSockets: options.zmqSockets,
      zmqProtocol: options.zmqProtocol,
      placement: options.placement,
      ...(python === undefined ? {} : { python }),
    });
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress(`improv-bench: ${error instanceof StoreOpenError ? '' : 'the run failed: '}${message}`);
    return 1;
  }
  write(renderReport(results));
  const stamp = results.date.replace(/[:.]/g, '-');
  const store = options.store === 'memory' ? '' : `${options.store}-`;
  const links =
    options.transport === 'local'
      ? ''
      : `${options.transport}-${options.zmqSockets === 'auto' ? '' : `${options.zmqSockets}-`}${options.zmqProtocol === 'tcp' ? 'tcp-' : ''}`;
  const placement = options.placement === 'worker' ? '' : `${options.placement}-`;
  const base = path.join(out, `${results.runtime.name}-${placement}${store}${links}${stamp}`);
  try {
    await writeFile(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
    await writeFile(`${base}.csv`, renderCsv(results));
  } catch (error) {
    progress(
      `improv-bench: could not write the results to ${out} (${error instanceof Error ? error.message : String(error)}); pass --out <dir> with a folder you can write to`,
    );
    return 1;
  }
  progress(`improv-bench: results in ${base}.json and ${base}.csv`);
  return 0;
}

/** `--dashboard`: the pipeline's frames/s without and with a browser drawing its dashboard. */
async function runDashboard(
  options: RunOptions,
  write: (line: string) => void,
  progress: (line: string) => void,
): Promise<number> {
  const problem = dashboardBenchProblem();
  if (problem !== undefined) {
    progress(`improv-bench: ${problem}`);
    return 2;
  }
  const out = await outputFolder(options.out, progress);
  if (out === undefined) return 2;
  const quick = options.quick === true;
  let results: Awaited<ReturnType<typeof runDashboardOverhead>>;
  try {
    results = await runDashboardOverhead({
      rounds: options.rounds ?? (quick ? 3 : 5),
      seconds: quick ? 2 : 5,
      log: progress,
    });
  } catch (error) {
    progress(`improv-bench: the run failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
  write(renderDashboardOverhead(results));
  return writeResults(
    out,
    `${results.runtime.name}-dashboard-${results.date.replace(/[:.]/g, '-')}.json`,
    results,
    progress,
  );
}

/** Writes one run's results as JSON into `out`; the exit code (1 when the folder cannot be written). */
async function writeResults(
  out: string,
  name: string,
  results: unknown,
  progress: (line: string) => void,
): Promise<number> {
  const file = path.join(out, name);
  try {
    await writeFile(file, `${JSON.stringify(results, null, 2)}\n`);
  } catch (error) {
    progress(
      `improv-bench: could not write the results to ${out} (${error instanceof Error ? error.message : String(error)}); pass --out <dir> with a folder you can write to`,
    );
    return 1;
  }
  progress(`improv-bench: results in ${file}`);
  return 0;
}

/** `--metrics-overhead`: the 8 B rows of the pair with metrics on and off, and their ratio. */
async function runOverhead(
  options: RunOptions,
  write: (line: string) => void,
  progress: (line: string) => void,
): Promise<number> {
  if (options.placement !== 'worker') {
    progress(
      `improv-bench: --metrics-overhead runs the pair in workers, not --placement ${options.placement}; drop --placement`,
    );
    return 2;
  }
  const out = await outputFolder(options.out, progress);
  if (out === undefined) return 2;
  const quick = options.quick === true;
  let results: Awaited<ReturnType<typeof runMetricsOverhead>>;
  try {
    let store: Awaited<ReturnType<typeof openBenchStore>>;
    try {
      store = await openBenchStore(options.store);
    } catch (error) {
      throw new StoreOpenError(options.store, error);
    }
    try {
      results = await runMetricsOverhead(store, {
        quick,
        samples: options.samples ?? (quick ? 250 : 3000),
        throughputUs: (options.throughputMs ?? (quick ? 150 : 1000)) * 1000,
        ...(options.rounds === undefined ? {} : { rounds: options.rounds }),
        transport: options.transport,
        zmqSockets: options.zmqSockets,
        log: progress,
      });
    } finally {
      await store.close();
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    progress(`improv-bench: ${error instanceof StoreOpenError ? '' : 'the run failed: '}${message}`);
    return 1;
  }
  write(renderMetricsOverhead(results));
  const stamp = results.date.replace(/[:.]/g, '-');
  const store = options.store === 'memory' ? '' : `${options.store}-`;
  const links = options.transport === 'local' ? '' : `${options.transport}-`;
  return writeResults(out, `${results.runtime.name}-metrics-overhead-${store}${links}${stamp}.json`, results, progress);
}

/**
 * What is wrong with the flags of a `--placement hosts` run, or undefined: it implies `--transport
 * zmq` and `--store redis` (the only ones that reach other hosts), so only other values given on the
 * command line are wrong, and it runs on Node only (`given`: whether a flag was on the command line).
 */
export function hostsFlagsProblem(
  options: Pick<RunOptions, 'runtime' | 'store' | 'transport' | 'zmqSockets'>,
  given: (name: 'runtime' | 'store' | 'transport') => boolean,
): string | undefined {
  const fix = 'drop it (--placement hosts implies --transport zmq --store redis)';
  if (given('transport') && options.transport !== 'zmq') {
    return `--placement hosts links the hosts over zmq tcp with CURVE, not --transport ${options.transport}; ${fix}`;
  }
  if (given('store') && options.store !== 'redis') {
    return `--placement hosts needs a store the hosts reach over the network, redis (improv starts its server, with a password), not --store ${options.store}; ${fix}`;
  }
  if (given('runtime') && options.runtime !== 'node') {
    return `--placement hosts runs on Node only (the network namespaces of the hosts are made and cleaned up from Node), not --runtime ${options.runtime}`;
  }
  return undefined;
}

/** Why a Python sink runs under Node only. */
const pythonNodeOnly =
  "its one-way latency needs a clock both processes read, and only Node's process.hrtime is CLOCK_MONOTONIC as it is, which Python's time.monotonic reads";

/**
 * What is wrong with the flags of a `--placement python` run, or undefined: it implies `--transport
 * zmq` (a Python actor runs in a process of its own) and `--store lmdb` (redis may be given; memory
 * cannot reach another process), and runs on Node only (`given`: whether a flag was on the command line).
 */
export function pythonFlagsProblem(
  options: Pick<RunOptions, 'runtime' | 'store' | 'transport'>,
  given: (name: 'runtime' | 'store' | 'transport') => boolean,
): string | undefined {
  if (given('transport') && options.transport !== 'zmq') {
    return `--placement python links the TypeScript source and the Python sink over zmq (a Python actor runs in a process of its own), not --transport ${options.transport}; drop it (--placement python implies --transport zmq)`;
  }
  if (given('store') && options.store === 'memory') {
    return "--placement python needs a store the Python process reaches, lmdb or redis, not --store memory (shared memory inside the bench's process); drop it (--placement python implies --store lmdb) or give --store redis";
  }
  if (given('runtime') && options.runtime !== 'node') {
    return `--placement python runs on Node only (${pythonNodeOnly}), not --runtime ${options.runtime}`;
  }
  return undefined;
}

function positiveInteger(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1) throw new InvalidArgumentError('give a whole number of at least 1.');
  return number;
}

function capacityOption(value: string): number {
  const number = Number(value);
  if (!Number.isSafeInteger(number) || number < 1 || number > MAX_CAPACITY) {
    throw new InvalidArgumentError(
      `give a whole number of messages from 1 to ${MAX_CAPACITY} (the store is sized to hold every message in flight), e.g. --capacity ${DEFAULT_LINK_CAPACITY}.`,
    );
  }
  return number;
}

function sizeList(value: string): number[] {
  return value.split(',').map((part) => {
    let size: number;
    try {
      size = parseByteSize(part.trim());
    } catch (error) {
      throw new InvalidArgumentError(`"${part}": ${error instanceof Error ? error.message : String(error)}`);
    }
    if (!Number.isSafeInteger(size) || size < 1 || size > 1024 * 1_048_576) {
      throw new InvalidArgumentError(`"${part}": give sizes from 1 B to 1 GiB, e.g. 8,4KiB,4MiB.`);
    }
    return size;
  });
}

/** Makes the folder the figures go to; undefined (after saying why) when it cannot be. */
async function outputFolder(folder: string, progress: (line: string) => void): Promise<string | undefined> {
  const out = path.resolve(folder);
  try {
    await (await detectRuntime()).makeDirectory(out);
    return out;
  } catch (error) {
    progress(
      `improv-bench: ${error instanceof Error ? error.message : String(error)}; pass --out <dir> with a folder you can write to`,
    );
    return undefined;
  }
}
