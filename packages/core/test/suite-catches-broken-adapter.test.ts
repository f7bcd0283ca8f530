import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { currentRuntimeName } from '../src/runtime/detect.ts';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const config = fileURLToPath(new URL('./fixtures/broken-adapter/vitest.config.ts', import.meta.url));

// The suite must be able to fail: run it against an adapter that loses the first message posted to
// a worker, and check that it fails, on the tests that exercise exactly that.
describe.skipIf(currentRuntimeName() !== 'node')('the runtime conformance suite', () => {
  it('fails for an adapter that drops the first message posted to a worker', () => {
    const report = join(mkdtempSync(join(tmpdir(), 'improv-broken-')), 'report.json');
    const result = spawnSync(
      process.execPath,
      [
        join(root, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--config',
        config,
        '--reporter=json',
        `--outputFile=${report}`,
      ],
      { cwd: root, encoding: 'utf8', timeout: 120_000 },
    );
    expect(result.status).not.toBe(0);
    const parsed = JSON.parse(readFileSync(report, 'utf8')) as {
      numPassedTests: number;
      testResults: { assertionResults: { title: string; status: string }[] }[];
    };
    const failed = parsed.testResults.flatMap((file) =>
      file.assertionResults.filter((test) => test.status === 'failed').map((test) => test.title),
    );
    expect(failed).toContain(
      'delivers every message posted before the entry listens, in order (ready handshake + buffer)',
    );
    // Only what depends on the first message fails: the rest of the suite still passes.
    expect(parsed.numPassedTests).toBeGreaterThan(0);
  }, 90_000);
});
