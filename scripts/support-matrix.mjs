// Writes the README's support matrix from the suite's own results (test-results/<runtime>.json,
// written by scripts/test-runtimes.mjs): run `npm run test:runtimes`, then `npm run support-matrix`.
// The table sits between the two marker comments in README.md; nothing else is touched.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const readme = join(root, 'README.md');
const start = '<!-- support-matrix:start -->';
const end = '<!-- support-matrix:end -->';

const suites = {
  'runtime-': 'runtime adapter',
  'memory.test': 'store (memory)',
  'lmdb.test': 'store (lmdb)',
  'redis.test': 'store (redis)',
  'local.test': 'links (local)',
  'zmq.test': 'links (zmq)',
  'batches.test': 'zmq batches',
  'python.test': 'zmq with a Python peer',
  'faults.test': 'zmq faults',
  'zmtp.test': 'ZMTP',
  'pipeline.test': 'pipeline lifecycle',
  'process-actors.test': 'pipeline with every actor in its own process',
  'control.test': 'control server (HTTP + WebSocket)',
  'tui.test': 'live terminal UI',
  'dashboard-server.test': 'dashboard server',
  'new-project.test': 'improv new',
  'install.test': 'install from the packed tarballs',
};

const rows = [];
for (const runtime of ['node', 'node22', 'node24', 'bun', 'deno', 'python']) {
  const file = join(root, 'test-results', `${runtime}.json`);
  if (!existsSync(file)) {
    console.error(`support-matrix: ${file} is missing; run  npm run test:runtimes  first`);
    process.exit(2);
  }
  const result = JSON.parse(readFileSync(file, 'utf8'));
  const covered =
    runtime === 'python'
      ? 'the Python actor package (pytest)'
      : result.files === 'all'
        ? 'every test'
        : [...new Set(result.files.map((path) => Object.entries(suites).find(([key]) => path.includes(key))?.[1]))]
            .filter(Boolean)
            .join(', ');
  const outcome = result.ok ? 'all pass' : `${result.failed} failing`;
  rows.push(
    `| ${runtime.startsWith('node') ? 'node' : runtime} | ${result.version} | ${covered} | ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped | ${outcome} | ${result.date.slice(0, 10)} |`,
  );
}

const table = [
  start,
  '| runtime | version tried | suites | tests | status | date |',
  '|---|---|---|---|---|---|',
  ...rows,
  end,
].join('\n');

const text = readFileSync(readme, 'utf8');
const from = text.indexOf(start);
const to = text.indexOf(end);
if (from === -1 || to === -1) {
  console.error(`support-matrix: README.md has no ${start} … ${end} markers; add them where the table goes`);
  process.exit(2);
}
writeFileSync(readme, `${text.slice(0, from)}${table}${text.slice(to + end.length)}`);
console.log(table);
