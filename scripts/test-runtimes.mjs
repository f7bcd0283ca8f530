// Runs the test suite on Node, Bun and Deno and prints each runtime's own pass/fail counts.
//
// - Node: every test of every package (vitest).
// - Bun:  the portable conformance files (`bun test`, which runs vitest-style files natively).
// - Deno: the same files, with vitest itself running under Deno.
// - Node 22 and Node 24 (node22, node24): the same files, with vitest under that Node. The suite's own
//   Node is the one that runs this script (20 here); the others are Node's official builds, published
//   on the npm registry as node-<platform>-<arch>, fetched once into node_modules/.cache/improv-node.
// - Python: the Python package's own tests (pytest, with the interpreter Python actors use in the
//   tests: IMPROV_TEST_PYTHON, default /usr/bin/python3).
//
// Each runtime's counts go to test-results/<runtime>.json; `npm run support-matrix` turns them into
// the README's support matrix. Exits 1 if any runtime has a failure or ran no test.
//
// Usage: node scripts/test-runtimes.mjs [--only node,python,bun,deno,node22,node24]
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const bin = (name) => join(root, 'node_modules', '.bin', name);
const resultsDir = join(root, 'test-results');

/** The files every runtime runs: conformance suites, the control server, the live UI and the dashboard's server side. */
const portable = [
  'packages/core/test/runtime-node.test.ts',
  'packages/core/test/runtime-bun.test.ts',
  'packages/core/test/runtime-deno.test.ts',
  'packages/store/test/memory.test.ts',
  'packages/store/test/lmdb.test.ts',
  'packages/store/test/redis.test.ts',
  'packages/transport-local/test/local.test.ts',
  'packages/transport-zmq/test/zmq.test.ts',
  'packages/transport-zmq/test/batches.test.ts',
  'packages/transport-zmq/test/python.test.ts',
  'packages/transport-zmq/test/faults.test.ts',
  'packages/transport-zmq/test/zmtp.test.ts',
  'packages/cli/test/pipeline.test.ts',
  'packages/cli/test/process-actors.test.ts',
  'packages/cli/test/control.test.ts',
  'packages/cli/test/tui.test.ts',
  'packages/cli/test/dashboard-server.test.ts',
].filter((file) => existsSync(join(root, file)));

const only = (() => {
  const index = process.argv.indexOf('--only');
  return index === -1 ? ['node', 'python', 'bun', 'deno', 'node22', 'node24'] : process.argv[index + 1].split(',');
})();

function run(command, args, env = {}) {
  return new Promise((resolve) => {
    let output = '';
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const relay = (stream, target) =>
      stream.on('data', (chunk) => {
        output += chunk;
        target.write(chunk);
      });
    relay(child.stdout, process.stdout);
    relay(child.stderr, process.stderr);
    child.on('error', (error) => resolve({ code: 127, output: `${output}\n${error.message}` }));
    child.on('exit', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output }));
  });
}

function version(command, args) {
  return new Promise((resolve) => {
    let text = '';
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.on('data', (chunk) => {
      text += chunk;
    });
    child.on('error', () => resolve(undefined));
    child.on('exit', () => resolve(text.trim().split('\n')[0]));
  });
}

/**
 * The Node releases tried beside the suite's own, pinned (each is fetched once, by exactly this
 * version), and what they run: the portable files where a Node release can make a difference — the
 * runtime adapter (workers, processes, signals), the stores and links on its memory and native
 * modules, the pipeline, processes, control server and live UI — but not those whose work is
 * elsewhere (Redis, pyzmq peers, ZMTP framing, fault timings), to keep CI within its time; then
 * `improv new`, and on the newest an install from the packed tarballs, as a user of that Node does.
 */
const otherNodeFiles = portable.filter(
  (file) => !/(redis|python|faults|zmtp|runtime-bun|runtime-deno)\.test\.ts$/.test(file),
);
const otherNodes = {
  node22: { release: '22.23.5', files: [...otherNodeFiles, 'packages/cli/test/new-project.test.ts'] },
  node24: {
    release: '24.22.3',
    files: [...otherNodeFiles, 'packages/cli/test/new-project.test.ts', 'packages/cli/test/install.test.ts'],
  },
};

/**
 * The `node` binary of release `version`: Node's official build, from the npm registry's
 * `node-<platform>-<arch>` package (what the `node` package installs), unpacked once into
 * node_modules/.cache/improv-node/<version>.
 */
function nodeBinary(version) {
  const folder = join(root, 'node_modules', '.cache', 'improv-node', version);
  const binary = join(folder, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  const name = `node-${process.platform}-${process.arch}@${version}`;
  console.log(`fetching Node ${version} (${name}) from the npm registry, once`);
  mkdirSync(folder, { recursive: true });
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', folder, name], {
    cwd: folder,
    encoding: 'utf8',
  })
    .trim()
    .split('\n')
    .at(-1);
  execFileSync('tar', ['-xzf', join(folder, tarball), '-C', folder]);
  return binary;
}

/**
 * Vitest under `command` (with `before` ahead of vitest's own arguments) on `files` (none: every
 * test); its exit code and, from its JSON report, its counts and failures.
 */
async function vitestUnder(name, command, before, files, env = {}) {
  const report = join(resultsDir, `${name}.vitest.json`);
  // An earlier run's report must not stand in for one this run failed to write.
  rmSync(report, { force: true });
  const { code } = await run(
    command,
    [
      ...before,
      join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${report}`,
      ...files,
    ],
    env,
  );
  return { code, ...(existsSync(report) ? { ...vitestCounts(report), failures: vitestFailures(report) } : {}) };
}

/** Counts from vitest's JSON report. */
function vitestCounts(file) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  return {
    passed: report.numPassedTests,
    failed: report.numFailedTests,
    skipped: report.numPendingTests + report.numTodoTests,
  };
}

/** The failed tests of a vitest JSON report: file, full name and the first lines of the failure. */
function vitestFailures(file) {
  const report = JSON.parse(readFileSync(file, 'utf8'));
  return report.testResults.flatMap((suite) => {
    const where = suite.name.startsWith(root) ? suite.name.slice(root.length) : suite.name;
    const failed = suite.assertionResults
      .filter((test) => test.status === 'failed')
      .map((test) => ({ where, test: test.fullName, why: (test.failureMessages ?? []).join('\n') }));
    // A file that failed before any test ran (an import error, a hook) has no failed test of its own.
    return failed.length === 0 && suite.status === 'failed'
      ? [{ where, test: '(the file itself)', why: suite.message ?? '' }]
      : failed;
  });
}

/** The failed tests bun test names: `(fail) <name>` lines. */
function bunFailures(output) {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the colour codes bun writes
  const plain = output.replace(/\u001b\[[0-9;]*m/g, '');
  return [...plain.matchAll(/^\(fail\) (.+)$/gm)].map((match) => ({ where: '', test: match[1], why: '' }));
}

/** Counts from pytest's closing line (`3 failed, 52 passed, 1 skipped in 4.2s`). */
function pytestCounts(output) {
  const last = output.trim().split('\n').at(-1) ?? '';
  const count = (word) => Number(new RegExp(`(\\d+) ${word}`).exec(last)?.[1] ?? 0);
  return { passed: count('passed'), failed: count('failed') + count('error'), skipped: count('skipped') };
}

/** The failed tests pytest names: `FAILED <file>::<test> - <why>` lines of its short summary. */
function pytestFailures(output) {
  return [...output.matchAll(/^(?:FAILED|ERROR) (\S+?)::(\S+)(?: - (.*))?$/gm)].map((match) => ({
    where: match[1],
    test: match[2],
    why: match[3] ?? '',
  }));
}

/** Counts from bun test's closing lines (` 52 pass`, ` 1 fail`, ` 3 skip`). */
function bunCounts(output) {
  const count = (word) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, 'm').exec(output)?.[1] ?? 0);
  return { passed: count('pass'), failed: count('fail'), skipped: count('skip') + count('todo') };
}

const runtimes = {
  async node() {
    return { ...(await vitestUnder('node', process.execPath, [], [])), version: process.versions.node };
  },
  async bun() {
    const { code, output } = await run(bin('bun'), [
      'test',
      '--timeout',
      '60000',
      ...portable.map((file) => `./${file}`),
    ]);
    return {
      code,
      version: await version(bin('bun'), ['--version']),
      ...bunCounts(output),
      failures: bunFailures(output),
    };
  },
  async python() {
    const python = process.env.IMPROV_TEST_PYTHON ?? '/usr/bin/python3';
    const { code, output } = await run(python, [
      '-m',
      'pytest',
      '-q',
      '-rfE',
      '-p',
      'no:cacheprovider',
      'packages/python/tests',
    ]);
    return {
      code,
      version: (await version(python, ['--version']))?.split(' ')[1],
      ...pytestCounts(output),
      failures: pytestFailures(output),
    };
  },
  async deno() {
    const raw = await version(bin('deno'), ['--version']);
    return { ...(await vitestUnder('deno', bin('deno'), ['run', '-A'], portable)), version: raw?.split(' ')[1] };
  },
};
for (const [name, { release, files }] of Object.entries(otherNodes)) {
  runtimes[name] = async () => {
    let node;
    try {
      node = nodeBinary(release);
    } catch (error) {
      return {
        code: 127,
        version: release,
        failures: [{ where: '', test: `fetching Node ${release}`, why: String(error) }],
      };
    }
    // Its own directory first on PATH: the workers, child processes and tsx it starts run on it too.
    const env = { PATH: `${dirname(node)}${delimiter}${process.env.PATH ?? ''}` };
    return {
      ...(await vitestUnder(name, node, [], files, env)),
      version: await version(node, ['--version']).then((text) => text?.replace(/^v/, '')),
    };
  };
}

mkdirSync(resultsDir, { recursive: true });
const summary = [];
for (const name of only) {
  const runner = runtimes[name];
  if (!runner) {
    console.error(`test-runtimes: unknown runtime "${name}"; use ${Object.keys(runtimes).join(', ')}`);
    process.exit(2);
  }
  const what =
    { node: 'every test', python: 'the Python package (pytest)' }[name] ??
    `${(otherNodes[name]?.files ?? portable).length} test files`;
  console.log(`\n=== ${name}: ${what} ===\n`);
  const result = {
    runtime: name,
    date: new Date().toISOString(),
    files:
      name === 'node' ? 'all' : name === 'python' ? ['packages/python/tests'] : (otherNodes[name]?.files ?? portable),
    ...(await runner()),
  };
  const ok = result.code === 0 && result.failed === 0 && result.passed > 0;
  summary.push({ ...result, ok });
  writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify({ ...result, ok }, null, 2)}\n`);
}

// The failures again, at the end, where a log cut to its last lines still shows them.
for (const row of summary) {
  for (const failure of row.failures ?? []) {
    const why = failure.why.split('\n').slice(0, 12).join('\n    ');
    console.log(`\nFAILED on ${row.runtime}: ${failure.where} > ${failure.test}${why ? `\n    ${why}` : ''}`);
  }
}

console.log('\nruntime  version     passed  failed  skipped  result');
for (const row of summary) {
  console.log(
    `${row.runtime.padEnd(8)} ${String(row.version ?? '?').padEnd(11)} ${String(row.passed ?? '?').padStart(6)}  ${String(row.failed ?? '?').padStart(6)}  ${String(row.skipped ?? '?').padStart(7)}  ${row.ok ? 'ok' : `FAILED (exit ${row.code})`}`,
  );
}
const total = summary.reduce(
  (sum, row) => ({ passed: sum.passed + (row.passed ?? 0), failed: sum.failed + (row.failed ?? 0) }),
  { passed: 0, failed: 0 },
);
console.log(`\n${total.passed} passed, ${total.failed} failed`);
process.exit(summary.every((row) => row.ok) ? 0 : 1);
