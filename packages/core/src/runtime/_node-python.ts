/**
 * How improv runs Python (package-private, shared by the three adapters): the interpreter with
 * `@improv/python` first on its path, for an actor process (`improv_ts._process`) and for
 * `improv validate`'s look at an actor's file (`improv_ts._check`).
 * @module
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import process from 'node:process';
import { RuntimeUnavailableError } from '../errors.ts';
import type { PythonCheck, PythonCheckOptions } from './adapter.ts';
import { pythonInstallHelp } from './current.ts';
import { findExecutable } from './node-binaries.ts';

/** A command line to run. */
export interface Command {
  binary: string;
  args: string[];
  env?: Record<string, string>;
}

/** `PYTHONPATH` with `@improv/python` first. */
async function pythonEnv(): Promise<Record<string, string>> {
  const { pythonPath } = await import('@improv/python');
  const inherited = process.env.PYTHONPATH;
  return { PYTHONPATH: inherited ? `${pythonPath}${path.delimiter}${inherited}` : pythonPath };
}

/**
 * The Python actor host for actor `name`: unbuffered (its prints reach the log line by line) and
 * with the fault handler on (a segfault in a C extension prints the Python stack before the process dies).
 */
export async function pythonCommand(name: string, interpreter = 'python3'): Promise<Command> {
  const binary = findExecutable(interpreter);
  if (binary === undefined) {
    throw new RuntimeUnavailableError(
      `cannot start Python actor "${name}": no Python interpreter "${interpreter}" here; ${pythonInstallHelp}`,
    );
  }
  const { entryModule } = await import('@improv/python');
  return { binary, args: ['-u', '-X', 'faulthandler', ...runModule(entryModule)], env: await pythonEnv() };
}

/**
 * The arguments that run Python module `name` as `python -m` would, but without the working
 * directory on the module path: `-m` puts it first before anything is imported, so a file there
 * named like a module of Python's own (random.py, queue.py: an actor's own folder) would hide that
 * module from numpy, pyzmq and improv_ts. (`-P` does this from Python 3.11 on only.)
 */
function runModule(name: string): string[] {
  return [
    '-c',
    'import sys; del sys.path[0]; name = sys.argv.pop(1); import runpy; runpy.run_module(name, run_name="__main__", alter_sys=True)',
    name,
  ];
}

/** Imports a Python actor's file with its interpreter and says what is wrong with it, within a time limit. */
export async function checkPythonActor(options: PythonCheckOptions): Promise<PythonCheck> {
  const interpreter = options.interpreter ?? 'python3';
  const binary = findExecutable(interpreter);
  if (binary === undefined)
    return { ok: false, kind: 'no-interpreter', message: `no Python interpreter "${interpreter}" found` };
  const args = [
    ...runModule('improv_ts._check'),
    options.file,
    options.className,
    ...(options.package ? [options.package] : []),
  ];
  const child = spawn(binary, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...(await pythonEnv()) },
    cwd: path.dirname(options.file),
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve({
        ok: false,
        kind: 'timeout',
        message: `importing it with ${binary} did not finish within ${options.timeoutMs / 1000} s`,
      });
    }, options.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      resolve({ ok: false, kind: 'no-interpreter', message: `${binary} could not be run: ${error.message}` });
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve({ ...(JSON.parse(last) as PythonCheck), interpreter: binary });
      } catch {
        const tail = stderr.trim().split('\n').slice(-6).join('\n');
        resolve({
          ok: false,
          kind: 'import',
          message: `${binary} exited with code ${code} while importing it${tail ? `:\n${tail}` : ''}`,
        });
      }
    });
  });
}
