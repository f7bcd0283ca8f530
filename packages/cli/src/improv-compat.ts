/**
 * Python improv's flags, answered. improv's commands are all here (`run`, `server`, `client`,
 * `list`, `cleanup`: commander parses them), but some of their flags are not: improv users type
 * `improv run -c 5555 -a actors demo.yaml` or `improv client -c 127.0.0.1:5555 -s 5556`. Each such
 * flag gets a line on what it did in improv and what it is here, and a `fix:` line with the command
 * to type (exit 2), never commander's bare "unknown option":
 *
 * - on `run` and `server`, `-c/--control-port [IP:]port`: one control port here serves commands,
 *   logs and metrics (HTTP and WebSocket): the fix has `--port port`, and `--bind IP` for an IP;
 *   `-o/--output-port`, `-l/--logging-port` (and `--server-port`) are left out of the fix, since the
 *   same port carries output and logs;
 * - on `client`, `-c/--control-port [IP:]port`, `-s/--server-port` and `-l/--logging-port`: the fix
 *   is `improv client http://IP:port --token-file <the run's token file>` when -c gave a port, else
 *   `improv client` (the only run on this host; `improv list` shows every run's id);
 * - on any other command the port flags are left out, with where the control port is set;
 * - `-a/--actor-path`: not needed (an actor's `package:` is a path relative to the YAML file);
 * - `-f/--logfile` before the command word: moved after it (run and server take it).
 *
 * Supported as in improv, and so never answered here: `-f/--logfile` after `run` or `server`.
 *
 * @example
 * const hint = improvHint(['run', '-c', '127.0.0.1:5555', 'demo.yaml'], program);
 * // improv run: -c/--control-port: one control port here serves commands, logs and metrics (…)
 * //   fix: improv run demo.yaml --bind 127.0.0.1 --port 5555   (then type setup and run at its prompt)
 * @module
 */
import type { Command } from 'commander';
import { listed, shellLine } from './text.ts';

/** improv's flags (cli.py): each takes a value. */
interface ImprovFlag {
  short?: string;
  long: string;
  /** The short form only on this command (improv client's -s: here -s is --script of improv run). */
  shortOn?: string;
}

const controlPort: ImprovFlag = { short: '-c', long: '--control-port' };
const outputPort: ImprovFlag = { short: '-o', long: '--output-port' };
const loggingPort: ImprovFlag = { short: '-l', long: '--logging-port' };
const serverPort: ImprovFlag = { short: '-s', long: '--server-port', shortOn: 'client' };
const logfile: ImprovFlag = { short: '-f', long: '--logfile' };
const actorPath: ImprovFlag = { short: '-a', long: '--actor-path' };
const portFlags = [controlPort, outputPort, loggingPort, serverPort];
const improvFlags = [...portFlags, logfile, actorPath];

/** The commands that start a pipeline, and so take --port, --bind and -f. */
const pipelineCommands = ['run', 'server'];

/** One improv flag as the user typed it, with the words it took and its value. */
interface FlagUse {
  flag: ImprovFlag;
  words: string[];
  value?: string;
}

/**
 * The hint for `argv` when it uses a flag of Python improv that this CLI has not (lines ending in a
 * `fix:` line), or undefined when there is none and commander should parse it. `program` tells
 * which options take a value, so their values are never mistaken for commands or flags.
 */
export function improvHint(argv: readonly string[], program: Command): string | undefined {
  const end = argv.indexOf('--');
  const words = end < 0 ? argv : argv.slice(0, end);
  let commandName: string | undefined;
  let command: Command | undefined;
  let hasOperand = end >= 0 && end + 1 < argv.length;
  const uses: FlagUse[] = [];
  /** The words that stay when the improv flags are left out (operands after `--` included). */
  const kept: string[] = [];

  for (let index = 0; index < words.length; index++) {
    const word = words[index]!;
    if (!word.startsWith('-') || word === '-') {
      if (commandName === undefined) {
        commandName = word;
        command = program.commands.find((each) => each.name() === word || each.aliases().includes(word));
      } else {
        hasOperand = true;
      }
      kept.push(word);
      continue;
    }
    const own = ownOption(command ?? program, word, words[index + 1]);
    if (own !== undefined) {
      kept.push(word);
      if (own === 'with next' && index + 1 < words.length) kept.push(words[++index]!);
      continue;
    }
    const flag = improvFlags.find((each) => word === shortOf(each, commandName) || word === each.long);
    const attached = improvFlags.find((each) => {
      const short = shortOf(each, commandName);
      return (short !== undefined && word.startsWith(short)) || word.startsWith(`${each.long}=`);
    });
    if (flag !== undefined) {
      // Its value is the next word, unless that is a flag (as argparse reads it).
      const taken = words[index + 1];
      if (taken === undefined || (taken.startsWith('-') && taken !== '-')) {
        uses.push({ flag, words: [word] });
      } else {
        uses.push({ flag, words: [word, taken], value: taken });
        index++;
      }
    } else if (attached !== undefined) {
      const value = word.startsWith(`${attached.long}=`) ? word.slice(attached.long.length + 1) : word.slice(2);
      uses.push({ flag: attached, words: [word], value });
    } else {
      kept.push(word); // not ours, not improv's: commander answers it
    }
  }
  if (end >= 0) kept.push(...argv.slice(end));

  // An unknown command is commander's to answer (with its list of commands).
  if (uses.length === 0 || (commandName !== undefined && command === undefined)) return undefined;
  return flagHint(commandName, uses, kept, hasOperand);
}

/**
 * Whether `word` is an option of `command` (or help): `with next` when its value is the next word,
 * `alone` when it takes none or has it attached (`--run-dir=x`, `-sx`), undefined when not ours.
 */
function ownOption(command: Command, word: string, next: string | undefined): 'alone' | 'with next' | undefined {
  if (word === '-h' || word === '--help') return 'alone';
  const long = word.startsWith('--');
  const name = long ? word.split('=')[0] : word.slice(0, 2);
  const option = command.options.find((each) => (long ? each.long === name : each.short === name));
  if (option === undefined) return undefined;
  const attached = long ? word.includes('=') : word.length > 2;
  if (attached || !(option.required || option.optional)) return 'alone';
  if (option.optional && (next === undefined || next.startsWith('-'))) return 'alone';
  return 'with next';
}

/** An address and port as improv's `[IP:]port` gives them. */
interface PortSpec {
  host?: string;
  port: string;
}

/** improv's `[IP:]port` (an IPv6 address in brackets), or undefined when `value` is not one. */
function portSpec(value: string): PortSpec | undefined {
  const match = /^(?:\[([^\]\s]+)\]:|([^:\s]+):)?(\d{1,5})$/.exec(value);
  if (match === null || Number(match[3]) > 65_535) return undefined;
  const port = String(Number(match[3]));
  const host = match[1] ?? match[2];
  return host === undefined ? { port } : { host, port };
}

/** Where the control port was asked for: the last -c, and its `[IP:]port` when it is one. */
interface ControlAsked {
  use: FlagUse;
  spec: PortSpec | undefined;
}

/**
 * One line per kind of improv flag used (the port flags together, but on run and server the
 * control port apart from the others), then the command without them: the control port becomes
 * --port (and --bind) on run and server and a URL on client, `-f` before run or server is moved
 * after it, the others are left out.
 */
function flagHint(commandName: string | undefined, uses: FlagUse[], kept: string[], hasOperand: boolean): string {
  const prefix = commandName === undefined ? 'improv' : `improv ${commandName}`;
  const starts = commandName === undefined || pipelineCommands.includes(commandName);
  const lastControl = uses.filter((use) => use.flag === controlPort).at(-1);
  const control: ControlAsked | undefined =
    lastControl === undefined
      ? undefined
      : { use: lastControl, spec: lastControl.value === undefined ? undefined : portSpec(lastControl.value) };
  /** The flags of each line, in the order they were first used. */
  const groups = new Map<string, ImprovFlag[]>();
  for (const flag of new Set(uses.map((use) => use.flag))) {
    const group = !portFlags.includes(flag) ? flag.long : starts && flag !== controlPort ? 'shared' : 'ports';
    groups.set(group, [...(groups.get(group) ?? []), flag]);
  }
  const lines = [...groups].map(([group, flags]) => {
    const problem =
      group === logfile.long
        ? logfileProblem(commandName)
        : group === actorPath.long
          ? actorPathProblem
          : group === 'shared'
            ? sharedPortProblem
            : commandName === 'client'
              ? clientPortProblem + badValue(control)
              : starts
                ? controlPortProblem + badValue(control)
                : otherPortProblem(commandName);
    return `${prefix}: ${listed(flags.map((flag) => flagName(flag, commandName)))}: ${problem}`;
  });
  const fix =
    commandName === 'client'
      ? clientFix(kept, hasOperand, control)
      : commandFix(commandName, uses, kept, hasOperand, control);
  lines.push(`  fix: ${fix}`);
  return lines.join('\n');
}

/** The fix of every command but client: run or server with --port and --bind, -f moved after the command word. */
function commandFix(
  commandName: string | undefined,
  uses: FlagUse[],
  kept: string[],
  hasOperand: boolean,
  control: ControlAsked | undefined,
): string {
  const starts = commandName === undefined || pipelineCommands.includes(commandName);
  const moved = starts ? uses.filter((use) => use.flag === logfile).flatMap((use) => use.words) : [];
  const command = commandName === undefined ? ['run', ...kept] : [...kept];
  // run, server and validate need their pipeline: <pipeline.yaml> after the command word when none was given.
  const at = command.findIndex((word) => [...pipelineCommands, 'validate'].includes(word));
  if (!hasOperand && at >= 0) command.splice(at + 1, 0, '<pipeline.yaml>');
  const port: string[] = [];
  if (starts && control !== undefined) {
    if (control.spec?.host !== undefined && !hasOption(kept, '--bind')) port.push('--bind', control.spec.host);
    if (!hasOption(kept, '--port')) port.push('--port', control.spec?.port ?? '<port>');
  }
  const then =
    commandName === 'server'
      ? '   (then improv client attaches, from another terminal)'
      : starts
        ? '   (then type setup and run at its prompt)'
        : '';
  return `improv ${shellLine([...command, ...moved, ...port])}${then}`;
}

/** The fix of improv client: the run's URL from -c, or the only run. */
function clientFix(kept: string[], hasOperand: boolean, control: ControlAsked | undefined): string {
  const spec = control?.spec;
  // A run named as well (id or URL): that one.
  if (hasOperand || spec === undefined) {
    const line = `improv ${shellLine(kept)}`;
    return hasOperand
      ? line
      : `${line}   (the only run on this host; improv list shows every run’s id: improv ${shellLine([...kept, '<id>'])})`;
  }
  const host = spec.host ?? '127.0.0.1';
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${spec.port}`;
  const command = [...kept];
  command.splice(command.indexOf('client') + 1, 0, url);
  const token = hasOption(kept, '--token-file') ? '' : ' --token-file <the run’s token file>';
  return `improv ${shellLine(command)}${token}   (the run printed where its token is: “token in …”; or set IMPROV_TOKEN)`;
}

/** Whether `words` hold the option `name` (with its value next or attached). */
function hasOption(words: string[], name: string): boolean {
  return words.some((word) => word === name || word.startsWith(`${name}=`));
}

/** The short form of `flag` on `commandName`, if it has one there. */
function shortOf(flag: ImprovFlag, commandName: string | undefined): string | undefined {
  return flag.shortOn === undefined || flag.shortOn === commandName ? flag.short : undefined;
}

function flagName(flag: ImprovFlag, commandName: string | undefined): string {
  const short = shortOf(flag, commandName);
  return short === undefined ? flag.long : `${short}/${flag.long}`;
}

/** What is wrong with the value of -c, when it was given and is not `[IP:]port`. */
function badValue(control: ControlAsked | undefined): string {
  if (control?.use.value === undefined || control.spec !== undefined) return '';
  return `; ${shellLine([control.use.value])} is not [IP:]port`;
}

const controlPortProblem =
  'one control port here serves commands, logs and metrics (HTTP and WebSocket): give it as --port, and an IP as --bind';

const sharedPortProblem =
  'not needed here: the same port carries output and logs (the control port, --port; improv logs and improv tap read them)';

const clientPortProblem =
  'one control port here serves commands, output and logs: improv client takes the run’s URL (http://IP:port) or its id';

function otherPortProblem(commandName: string | undefined): string {
  return `not an option of improv ${commandName}: a run’s one control port is the --port of improv run and improv server`;
}

function logfileProblem(commandName: string | undefined): string {
  return commandName !== undefined && pipelineCommands.includes(commandName)
    ? `options go after the command word: improv ${commandName} <pipeline.yaml> -f <file>`
    : 'an option of improv run and improv server: improv run <pipeline.yaml> -f <file> appends every log record to that file';
}

const actorPathProblem =
  'not needed here: an actor’s package: is a file path relative to the pipeline YAML file (improv’s dotted actors.generator is read as actors/generator.ts there), an absolute path, or an installed package name; no search path is used';
