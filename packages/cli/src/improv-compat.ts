/**
 * Python improv's command line, answered. Users of improv type `improv server demo.yaml`,
 * `improv run -c 5555 -a actors demo.yaml` or `improv cleanup`; whatever of that has no counterpart
 * here gets a line on what it did in improv and what to use instead, and a `fix:` line with the
 * command to type (exit 2), never commander's bare "unknown option" or "unknown command".
 *
 * Supported as in improv, and so never answered here: `run`, and `-f/--logfile` after `run`.
 *
 * @example
 * const hint = improvHint(['run', '-c', '5555', 'demo.yaml'], program);
 * // improv run: -c/--control-port: no control port yet: the server/client control plane is not built; …
 * //   fix: improv run demo.yaml   (then type setup and run at its prompt)
 * @module
 */
import type { Command } from 'commander';
import { listed, shellLine } from './text.ts';

/** improv's commands that have no counterpart here. */
export const improvOnlyCommands = ['server', 'client', 'list', 'cleanup'] as const;
type ImprovOnlyCommand = (typeof improvOnlyCommands)[number];

/** improv's flags (cli.py): each takes a value. */
interface ImprovFlag {
  short?: string;
  long: string;
}

const controlPort: ImprovFlag = { short: '-c', long: '--control-port' };
const outputPort: ImprovFlag = { short: '-o', long: '--output-port' };
const loggingPort: ImprovFlag = { short: '-l', long: '--logging-port' };
// improv client's -s: not matched as a short flag, since -s is --script of improv run here.
const serverPort: ImprovFlag = { long: '--server-port' };
const logfile: ImprovFlag = { short: '-f', long: '--logfile' };
const actorPath: ImprovFlag = { short: '-a', long: '--actor-path' };
const portFlags = [controlPort, outputPort, loggingPort, serverPort];
const improvFlags = [...portFlags, logfile, actorPath];

const scriptExample = '--script "setup; run; wait 10s; stop; quit"';

/** One improv flag as the user typed it, with the words it took. */
interface FlagUse {
  flag: ImprovFlag;
  words: string[];
}

/**
 * The hint for `argv` when it uses a command or flag of Python improv that this CLI has not (lines
 * ending in a `fix:` line), or undefined when there is none and commander should parse it. `program`
 * tells which options take a value, so their values are never mistaken for commands or flags.
 */
export function improvHint(argv: readonly string[], program: Command): string | undefined {
  const end = argv.indexOf('--');
  const words = end < 0 ? argv : argv.slice(0, end);
  let commandName: string | undefined;
  let command: Command | undefined;
  const operands: string[] = [];
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
        operands.push(word);
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
    const flag = improvFlags.find((each) => word === each.short || word === each.long);
    const attached = improvFlags.find(
      (each) => (each.short !== undefined && word.startsWith(each.short)) || word.startsWith(`${each.long}=`),
    );
    if (flag !== undefined) {
      const taken = words[index + 1];
      uses.push({ flag, words: taken === undefined ? [word] : [word, taken] });
      index++;
    } else if (attached !== undefined) {
      uses.push({ flag: attached, words: [word] });
    } else {
      kept.push(word); // not ours, not improv's: commander answers it
    }
  }
  if (end >= 0) {
    kept.push(...argv.slice(end));
    operands.push(...argv.slice(end + 1));
  }

  if (isImprovOnly(commandName)) return commandHint(commandName, operands);
  if (commandName === 'help' && isImprovOnly(operands[0])) return commandHint(operands[0], operands.slice(1));
  // An unknown command is commander's to answer (with its list of commands).
  if (uses.length === 0 || (commandName !== undefined && command === undefined)) return undefined;
  return flagHint(commandName, uses, kept, operands.length > 0);
}

function isImprovOnly(word: string | undefined): word is ImprovOnlyCommand {
  return (improvOnlyCommands as readonly string[]).includes(word ?? '');
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

/** What each of improv's commands did, and what to use here. */
function commandHint(name: ImprovOnlyCommand, operands: string[]): string {
  const pipeline = operands.find((word) => /\.ya?ml$/i.test(word)) ?? '<pipeline.yaml>';
  const [problem, fix] = {
    server: [
      'not built yet: there is no separate server process here; improv run starts the pipeline and takes its commands in the same terminal',
      `improv ${shellLine(['run', pipeline])}   (then type setup and run at its prompt; or, without a prompt: ${scriptExample})`,
    ],
    client: [
      'not built yet: there is no server to connect to; improv run prints the log and takes the commands (setup, run, stop, quit, status) in its own terminal',
      `improv ${shellLine(['run', pipeline])}   (then type setup and run at its prompt)`,
    ],
    list: [
      'there are no improv processes to list: improv run keeps its actors in worker threads of its own process and starts no store server',
      'to see a running pipeline’s actors, type status at its prompt (or add status to --script)',
    ],
    cleanup: [
      'there is nothing to clean up: improv run ends every actor and frees the store when it quits (quit, Ctrl-C, SIGTERM, or when its terminal closes), and leaves no process behind',
      'to stop a running pipeline, type quit at its prompt or press Ctrl-C (a second Ctrl-C ends every actor at once)',
    ],
  }[name];
  return `improv ${name}: ${problem}\n  fix: ${fix}`;
}

/**
 * One line per kind of improv flag used (the port flags together), then the command without them:
 * `-f` before `run` is moved after it, the others are left out.
 */
function flagHint(commandName: string | undefined, uses: FlagUse[], kept: string[], hasOperand: boolean): string {
  const prefix = commandName === undefined ? 'improv' : `improv ${commandName}`;
  const used = [...new Set(uses.map((use) => use.flag))];
  const ports = used.filter((flag) => portFlags.includes(flag));
  const lines: string[] = [];
  for (const flag of used) {
    if (flag === logfile) lines.push(`${prefix}: ${flagName(flag)}: ${logfileProblem(commandName)}`);
    else if (flag === actorPath) lines.push(`${prefix}: ${flagName(flag)}: ${actorPathProblem}`);
    else if (flag === ports[0]) lines.push(`${prefix}: ${listed(ports.map(flagName))}: ${portProblem(ports)}`);
  }
  const runs = commandName === undefined || commandName === 'run';
  const moved = runs ? uses.filter((use) => use.flag === logfile).flatMap((use) => use.words) : [];
  const command = commandName === undefined ? ['run', ...kept] : [...kept];
  // run and validate need their pipeline: <pipeline.yaml> after the command word when none was given.
  const at = command.findIndex((word) => word === 'run' || word === 'validate');
  if (!hasOperand && at >= 0) command.splice(at + 1, 0, '<pipeline.yaml>');
  lines.push(
    `  fix: improv ${shellLine([...command, ...moved])}${runs ? '   (then type setup and run at its prompt)' : ''}`,
  );
  return lines.join('\n');
}

function flagName(flag: ImprovFlag): string {
  return flag.short === undefined ? flag.long : `${flag.short}/${flag.long}`;
}

function logfileProblem(commandName: string | undefined): string {
  return commandName === 'run'
    ? 'options go after the command word: improv run <pipeline.yaml> -f <file>'
    : 'an option of improv run: improv run <pipeline.yaml> -f <file> appends every log record to that file';
}

const actorPathProblem =
  'not needed here: an actor’s package: is a file path relative to the pipeline YAML file (improv’s dotted actors.generator is read as actors/generator.ts there), an absolute path, or an installed package name; no search path is used';

function portProblem(ports: ImprovFlag[]): string {
  const names = { [controlPort.long]: 'control', [outputPort.long]: 'output', [loggingPort.long]: 'logging' };
  const which = listed(ports.map((flag) => names[flag.long] ?? 'server'));
  return `no ${which} port${ports.length > 1 ? 's' : ''} yet: the server/client control plane is not built; improv run takes its commands in its own terminal, or from ${scriptExample}`;
}
