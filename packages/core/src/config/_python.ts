/**
 * Python actors in a config (package-private): which actors are Python (a `.py` package, or improv's
 * dotted form that names a `.py` file and no TypeScript one), and `validate`'s look at their files
 * with the interpreter they will run on.
 * @module
 */
import type { PythonCheck } from '../runtime/adapter.ts';
import { pythonInstallHelp } from '../runtime/current.ts';
import type { ModuleContext } from './_modules.ts';
import { moduleCandidates } from './_modules.ts';
import { isMapping, type Reporter } from './_report.ts';
import { didYouMean } from './_suggest.ts';
import type { DraftActor } from './_validate.ts';

const pythonFile = /\.py$/;

/** Names of the actors of `config` (the parsed YAML) that are Python actors. */
export async function findPythonActors(
  config: unknown,
  baseDir: string,
  context: Pick<ModuleContext, 'adapter'>,
): Promise<Set<string>> {
  const found = new Set<string>();
  const actors = isMapping(config) && isMapping(config.actors) ? config.actors : {};
  await Promise.all(
    Object.entries(actors).map(async ([name, spec]) => {
      const specifier = isMapping(spec) && typeof spec.package === 'string' ? spec.package.trim() : '';
      if (pythonFile.test(specifier)) {
        found.add(name);
        return;
      }
      const { dotted, absolute, candidates } = moduleCandidates(specifier, baseDir, context.adapter);
      if (!dotted) return;
      const isFile = (file: string) => context.adapter.isFile(file).catch(() => false);
      // A TypeScript port beside improv's file wins: it is what the user wrote for improv-ts.
      for (const candidate of candidates) if (await isFile(candidate)) return;
      if (await isFile(`${absolute}.py`)) found.add(name);
    }),
  );
  return found;
}

/** The `.py` file of Python actor `actor`, checked with its interpreter when `context.checkModules`. */
export async function resolvePythonActor(
  actor: DraftActor & { package: string },
  context: ModuleContext,
  reporter: Reporter,
): Promise<string | undefined> {
  const { adapter } = context;
  const packagePath = ['actors', actor.name, 'package'];
  const { dotted, absolute } = moduleCandidates(actor.package, context.baseDir, adapter);
  const file = dotted ? `${absolute}.py` : absolute;
  if (!(await adapter.isFile(file).catch(() => false))) {
    reporter.error(
      packagePath,
      `actor "${actor.name}": Python file ${file} not found`,
      `correct the path: relative packages start from the config file's folder, ${context.baseDir}`,
    );
    return undefined;
  }
  const url = adapter.path.toFileUrl(file);
  if (!context.checkModules || actor.className === undefined) return url;
  const check = await adapter.checkPythonActor({
    file,
    className: actor.className,
    ...(dotted ? { package: actor.package } : {}),
    ...(context.python === undefined ? {} : { interpreter: context.python }),
    timeoutMs: context.importTimeoutMs,
  });
  if (check.ok) return url;
  reportPythonCheck(actor, file, check, context, reporter);
  return undefined;
}

/** Debian's package for a Python module, where it has one under the usual name. */
function installHint(module: string, interpreter: string): string {
  const debian = module === 'zmq' ? 'python3-zmq' : `python3-${module.toLowerCase().replaceAll('_', '-')}`;
  return `install it for ${interpreter}: pip install ${module === 'zmq' ? 'pyzmq' : module} (in that environment), or on Debian/Ubuntu sudo apt-get install ${debian}`;
}

function reportPythonCheck(
  actor: DraftActor & { package: string },
  file: string,
  check: Extract<PythonCheck, { ok: false }>,
  context: ModuleContext,
  reporter: Reporter,
): void {
  const packagePath = ['actors', actor.name, 'package'];
  const classPath = ['actors', actor.name, 'class'];
  const interpreter = check.interpreter ?? context.python ?? 'python3';
  const where = check.file !== undefined && check.line !== undefined ? `${check.file}:${check.line}` : file;
  const name = `actor "${actor.name}"`;
  switch (check.kind) {
    case 'no-interpreter':
      reporter.error(
        context.python === undefined ? packagePath : ['settings', 'python'],
        `${name} is a Python actor, but ${check.message}`,
        pythonInstallHelp,
      );
      return;
    case 'deps':
      reporter.error(
        context.python === undefined ? packagePath : ['settings', 'python'],
        `${name}: the Python interpreter ${interpreter} has no module "${check.module}", which Python actors need`,
        `${installHint(check.module ?? 'numpy', interpreter)}; or set  python:  under settings to an interpreter that has numpy, pyzmq and msgpack`,
      );
      return;
    case 'syntax':
      reporter.error(
        packagePath,
        `${name}: syntax error in ${where}: ${check.message}`,
        `fix line ${check.line ?? '?'} of ${check.file ?? file}`,
      );
      return;
    case 'missing-module':
      reporter.error(
        packagePath,
        `${name}: importing ${file} failed: no module named "${check.module}" (${where})`,
        check.module === 'improv' || check.module?.startsWith('improv.')
          ? `improv-ts's improv compatibility package has no ${check.module}; use improv_ts (from improv_ts import Actor)`
          : installHint(check.module ?? '?', interpreter),
      );
      return;
    case 'no-class': {
      const classes = check.classes ?? [];
      reporter.error(
        classPath,
        `${name}: ${file} has no class "${actor.className}"${classes.length > 0 ? ` (its classes: ${classes.join(', ')})` : ''}`,
        `${didYouMean(actor.className ?? '', classes)}set class to the actor's class in ${file}`,
      );
      return;
    }
    case 'not-actor':
    case 'no-run-step':
      reporter.error(
        classPath,
        `${name}: ${check.message}`,
        check.kind === 'no-run-step'
          ? 'add one:  def run_step(self): msg = self.q_in.get(timeout=0.1) ...  (runStep is accepted too)'
          : 'subclass improv_ts.Actor:  from improv_ts import Actor  then  class MyActor(Actor): ...',
      );
      return;
    case 'timeout':
      reporter.error(
        packagePath,
        `${name}: ${check.message}`,
        "move long work out of the module's top level (into setup()), or raise settings.import_timeout",
      );
      return;
    default:
      reporter.error(packagePath, `${name}: importing ${file} failed: ${check.message}`, `fix the error at ${where}`);
  }
}
