/**
 * The interpreter of `--placement python`: the one `--python` names, or else the first of `python3`
 * (on PATH) and `/usr/bin/python3` that has what a Python actor needs (numpy, pyzmq, msgpack) —
 * a `python3` on PATH from pyenv or a venv often lacks them while the system's has them.
 * @module
 */
import { spawnSync } from 'node:child_process';

/** What the Python sink and the raw pyzmq baseline import. */
const MODULES = ['numpy', 'zmq', 'msgpack'];
/** Tried in turn when `--python` is not given. */
const CANDIDATES = ['python3', '/usr/bin/python3'];

/** Why `interpreter` cannot run the Python side of the bench, or undefined when it can. */
export function pythonProblem(interpreter: string): string | undefined {
  const probe = spawnSync(interpreter, ['-c', `import ${MODULES.join(', ')}`], { encoding: 'utf8', timeout: 60_000 });
  if (probe.error !== undefined) {
    return `${interpreter} did not run (${(probe.error as NodeJS.ErrnoException).code ?? probe.error.message})`;
  }
  if (probe.status !== 0) {
    const missing = /No module named '([^']+)'/.exec(probe.stderr)?.[1];
    return missing === undefined
      ? `${interpreter} failed to import ${MODULES.join(', ')}: ${probe.stderr.trim().split('\n').slice(-1)[0] ?? ''}`
      : `${interpreter} has no ${missing} module`;
  }
  return undefined;
}

/**
 * The interpreter to use: `given` when it works, else the first candidate that does. Returns the
 * problem instead (with what to do) when none does.
 */
export function findPython(given: string | undefined): { interpreter: string } | { problem: string } {
  const install =
    'install numpy, pyzmq and msgpack for it (Debian/Ubuntu: sudo apt-get install python3-numpy python3-zmq python3-msgpack), or name another interpreter with --python <path>';
  if (given !== undefined) {
    const problem = pythonProblem(given);
    return problem === undefined ? { interpreter: given } : { problem: `--python ${given}: ${problem}; ${install}` };
  }
  const problems: string[] = [];
  for (const candidate of CANDIDATES) {
    const problem = pythonProblem(candidate);
    if (problem === undefined) return { interpreter: candidate };
    problems.push(problem);
  }
  return { problem: `no Python interpreter with ${MODULES.join(', ')} found (${problems.join('; ')}); ${install}` };
}
