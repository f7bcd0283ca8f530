/**
 * The run folder and its logs (package-private): `improv.log` has every record of the run, with
 * dates and stacks, appended as it happens; `actors/<Actor>.log` beside it has the records of that
 * one actor (its `this.log`, its console, a process's own output) in the same form. Nexus's own
 * records are in `improv.log` only.
 * @module
 */
import type { PipelineConfig } from './config/types.ts';
import { formatLogRecord, type LogRecord } from './log.ts';
import type { AppendFile, RuntimeAdapter } from './runtime/adapter.ts';

export class RunLog {
  /** The run folder. */
  readonly dir: string;
  #file: AppendFile | undefined;
  /** Each actor's own file, by actor name. */
  readonly #actors: Map<string, AppendFile>;

  private constructor(dir: string, file: AppendFile, actors: Map<string, AppendFile>) {
    this.dir = dir;
    this.#file = file;
    this.#actors = actors;
  }

  /**
   * Creates `dir` (default `runs/<pipeline>-<time>` in the working directory) and opens its log,
   * and `dir/actors/<Actor>.log` for every actor of the pipeline.
   */
  static async open(runtime: RuntimeAdapter, config: PipelineConfig, dir: string | undefined): Promise<RunLog> {
    const folder = dir ?? runtime.path.join(runtime.cwd(), 'runs', defaultRunName(config));
    await runtime.makeDirectory(folder);
    const file = await runtime.openAppendFile(runtime.path.join(folder, 'improv.log'));
    const actors = new Map<string, AppendFile>();
    try {
      if (config.actors.length > 0) {
        const actorsFolder = runtime.path.join(folder, 'actors');
        await runtime.makeDirectory(actorsFolder);
        const names = actorFileNames(config.actors.map((actor) => actor.name));
        for (const [actor, name] of names) {
          actors.set(actor, await runtime.openAppendFile(runtime.path.join(actorsFolder, name)));
        }
      }
    } catch (error) {
      await Promise.allSettled([file.close(), ...[...actors.values()].map((opened) => opened.close())]);
      throw error;
    }
    return new RunLog(folder, file, actors);
  }

  /** The files written, relative to the run folder, for the log. */
  get files(): string[] {
    return ['improv.log', ...(this.#actors.size > 0 ? ['actors/<actor>.log'] : [])];
  }

  write(record: LogRecord): void {
    if (this.#file === undefined) return;
    const line = `${formatLogRecord(record, { stack: true, date: true })}\n`;
    this.#file.write(line);
    this.#actors.get(record.source)?.write(line);
  }

  async close(): Promise<void> {
    const files = [this.#file, ...this.#actors.values()];
    this.#file = undefined;
    this.#actors.clear();
    await Promise.all(files.map((file) => file?.close()));
  }
}

/** `<Actor>.log` for each actor: characters a file name cannot hold become `_`, and clashes get `-2`, `-3`. */
function actorFileNames(actors: readonly string[]): Map<string, string> {
  const names = new Map<string, string>();
  const taken = new Set<string>();
  for (const actor of actors) {
    const base = actor.replace(/[^\w.-]+/g, '_') || '_';
    let name = `${base}.log`;
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}-${n}.log`;
    taken.add(name.toLowerCase());
    names.set(actor, name);
  }
  return names;
}

function defaultRunName(config: PipelineConfig): string {
  const base = config.source === '<object>' ? 'pipeline' : (config.source.split(/[\\/]/).pop() ?? 'pipeline');
  const name = base.replace(/\.ya?ml$/i, '').replace(/[^\w.-]+/g, '_');
  const now = new Date();
  const pad = (value: number) => String(value).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}-${String(now.getMilliseconds()).padStart(3, '0')}`;
  return `${name}-${stamp}`;
}
