import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { newProject } from '../src/new-project.ts';

it('improv new makes the missing folders of a nested path', () => {
  const base = mkdtempSync(join(tmpdir(), 'improv-new-'));
  try {
    const result = newProject('group/lab', base);
    expect(result.ok).toBe(true);
    expect(existsSync(join(base, 'group', 'lab', 'pipeline.yaml'))).toBe(true);
    expect(result.lines[0]).toMatch(/^created group\/lab: package\.json, pipeline\.yaml/);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});

it.runIf(existsSync('/proc/self/status'))(
  'improv new refuses a place where no folder can be made, at once (Node’s recursive mkdir never returns under /proc)',
  () => {
    const result = newProject('/proc/improv-test/lab');
    expect(result.ok).toBe(false);
    expect(result.lines.join('\n')).toContain(
      'cannot create the project in /proc/improv-test/lab: cannot use /proc/improv-test/lab as a folder: it cannot be created there',
    );
  },
);

it('improv new fills an existing empty folder', () => {
  const base = mkdtempSync(join(tmpdir(), 'improv-new-'));
  try {
    mkdirSync(join(base, 'lab'));
    const result = newProject('lab', base);
    expect(result.lines.join('\n')).toMatch(/^created lab: /);
    expect(result.ok).toBe(true);
    expect(existsSync(join(base, 'lab', '.gitignore'))).toBe(true);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
