/**
 * The run folder and its `improv.log` (package-private): every record of the run, with dates and
 * stacks, appended as it happens.
 * @module
 */
import type { PipelineConfig } from './config/types.ts';
import { formatLogRecord, type LogRecord } from './log.ts';
import type { AppendFile, RuntimeAdapter } from './runtime/adapter.ts';

export class RunLog {
  /** The run folder. */
  readonly dir: string;
  #file: AppendFile | undefined;

  private constructor(dir: string, file: AppendFile) {
    this.dir = dir;
    this.#file = file;
  }

  /** Creates `dir` (default `runs/<pipeline>-<time>` in the working directory) and opens its log. */
  static async open(runtime: RuntimeAdapter, config: PipelineConfig, dir: string | undefined): Promise<RunLog> {
    const folder = dir ?? runtime.path.join(runtime.cwd(), 'runs', defaultRunName(config));
    await runtime.makeDirectory(folder);
    return new RunLog(folder, await runtime.openAppendFile(runtime.path.join(folder, 'improv.log')));
  }

  write(record: LogRecord): void {
    this.#file?.write(`${formatLogRecord(record, { stack: true, date: true })}\n`);
  }

  async close(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close();
  }
}

function defaultRunName(config: PipelineConfig): string {
  const base = config.source === '<object>' ? 'pipeline' : (config.source.split(/[\\/]/).pop() ?? 'pipeline');
  const name = base.replace(/\.ya?ml$/i, '').replace(/[^\w.-]+/g, '_');
  const now = new Date();
  const pad = (value: number) => String(value).padStart(2, '0');
  const stamp = `${now.getFullYear()}${pad(now.getMonth() + 1)}${pad(now.getDate())}-${pad(now.getHours())}${pad(now.getMinutes())}${pad(now.getSeconds())}-${String(now.getMilliseconds()).padStart(3, '0')}`;
  return `${name}-${stamp}`;
}
