/**
 * Starts an actor where its config places it (package-private, used by Nexus): a worker of this
 * process, or an OS process of its own on the runtime it names (`method: process`, `runtime:`).
 * Both run the same actor host over the same control messages; a process's own output (native code,
 * the runtime's crash reports) goes to the run log as the actor's records.
 * @module
 */
import { LogBudget } from './_log-budget.ts';
import type { ActorConfig } from './config/types.ts';
import type { HostAgent } from './hosts.ts';
import { createLogRecord, type LogRecord } from './log.ts';
import type { ActorRuntime, ProcessRuntime, RuntimeAdapter, WorkerHandle } from './runtime/adapter.ts';

/** Signal names by number (Linux), for exit codes 128 + n. */
const signalNames: Record<number, string> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  4: 'SIGILL',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  11: 'SIGSEGV',
  13: 'SIGPIPE',
  15: 'SIGTERM',
};

/** `worker` or `process`, as messages name where an actor runs. */
export function placeOf(actor: Pick<ActorConfig, 'process'>): 'worker' | 'process' {
  return actor.process === undefined ? 'worker' : 'process';
}

/**
 * A stuck step in the words of the actor's own language: what is late (`late`), what keeps it
 * from answering (`cause`), and what to do, once it was ended (`fix`) or while it is only late
 * (`meanwhile`).
 */
export function stuckAdvice(actor: Pick<ActorConfig, 'process'> | undefined): {
  late: string;
  cause: string;
  fix: string;
  meanwhile: string;
} {
  if (actor?.process?.runtime === 'python') {
    return {
      late: 'its run_step() has not returned',
      cause:
        'its run_step() does not return — a loop, or a call that blocks, such as time.sleep() or a get() without a timeout',
      fix: 'Its process was ended; make run_step() return regularly: wait with self.sleep(seconds), and give get() a timeout',
      meanwhile:
        'wait with self.sleep(seconds) rather than time.sleep(), give get() a timeout, or return from run_step() more often',
    };
  }
  return {
    late: 'it has not returned to its event loop',
    cause: 'its runStep() never yields — a loop that never awaits — or awaits something that never settles',
    fix: `Its ${actor === undefined ? 'worker' : placeOf(actor)} was ended; make runStep() return or await regularly`,
    meanwhile: "await something that yields, e.g. a link's get(), or return from runStep() more often",
  };
}

/** The runtime an actor runs on: its own `runtime:`, else the one Nexus runs in. */
export function runtimeOf(actor: Pick<ActorConfig, 'process'>, runtime: RuntimeAdapter): ActorRuntime {
  return actor.process?.runtime ?? (runtime.name as ProcessRuntime);
}

/** Why an actor's worker or process ended, from its exit code. */
export function describeExit(actor: Pick<ActorConfig, 'process'>, code: number): string {
  const signal = code > 128 ? signalNames[code - 128] : undefined;
  if (actor.process !== undefined && signal !== undefined) {
    return `its process was ended by ${signal}${signal === 'SIGABRT' ? ' (it aborted: native code, or process.abort())' : ''} (exit code ${code})`;
  }
  return `its ${placeOf(actor)} exited with code ${code}`;
}

/**
 * Starts the actor's worker or process with `entry` (the actor host), on this machine or, through
 * `agent`, on its host; `record` takes what the worker or process writes to stdout and stderr itself.
 */
export async function spawnActor(
  runtime: RuntimeAdapter,
  actor: ActorConfig,
  entry: string,
  record: (record: LogRecord) => void,
  agent?: Pick<HostAgent, 'spawnProcess'>,
): Promise<WorkerHandle> {
  const heap = actor.maxHeapMb === undefined ? {} : { maxHeapMb: actor.maxHeapMb };
  let handle: WorkerHandle;
  if (actor.process === undefined) handle = await runtime.spawnWorker({ name: actor.name, entry, ...heap });
  else {
    const interpreter = actor.process.interpreter === undefined ? {} : { interpreter: actor.process.interpreter };
    const options = { name: actor.name, entry, runtime: runtimeOf(actor, runtime), ...interpreter, ...heap };
    handle = await (agent ?? runtime).spawnProcess(options);
  }
  // What the worker or process writes itself goes by the same budget as its log (see _log-budget.ts).
  const budget = new LogBudget(() => actor.name, record);
  handle.onOutput?.((line, stream) => {
    if (line.trim() === '' || !budget.take()) return;
    record(createLogRecord(actor.name, stream === 'stderr' ? 'warn' : 'info', line, []));
  });
  handle.onExit(() => budget.flush());
  return handle;
}
