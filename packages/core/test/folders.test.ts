import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { folderProblem, makeFolder } from '../src/runtime/node-folders.ts';

const scratch: string[] = [];
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});
function fresh(): string {
  const dir = mkdtempSync(join(tmpdir(), 'improv-folders-'));
  scratch.push(dir);
  return dir;
}

it('makeFolder makes every missing level with the mode asked for, and says whether it made the folder', () => {
  const base = fresh();
  const deep = join(base, 'a', 'b', 'c');
  expect(makeFolder(deep, { mode: 0o700 })).toBe(true);
  for (const dir of [join(base, 'a'), join(base, 'a', 'b'), deep]) {
    expect(statSync(dir).isDirectory()).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  }
  expect(makeFolder(deep)).toBe(false);
  expect(makeFolder(`${deep}/`)).toBe(false);
});

it('makeFolder names the file in the way, and refuses a place where no folder can be made, at once', () => {
  const base = fresh();
  const file = join(base, 'notes.txt');
  writeFileSync(file, 'x');
  expect(() => makeFolder(join(file, 'run', 'logs'))).toThrow(
    `cannot use ${join(file, 'run', 'logs')} as a folder: ${file} is a file, not a folder`,
  );
  expect(() => makeFolder(file)).toThrow(`cannot use ${file} as a folder: ${file} is a file, not a folder`);
  if (existsSync('/proc/self/status')) {
    // Node's mkdir({ recursive: true }) never returns here.
    expect(() => makeFolder('/proc/improv-test/run')).toThrow(
      'cannot use /proc/improv-test/run as a folder: it cannot be created there',
    );
  }
});

it('folderProblem says what makeFolder would refuse, and creates nothing', () => {
  const base = fresh();
  const file = join(base, 'notes.txt');
  writeFileSync(file, 'x');
  expect(folderProblem(join(file, 'store.lmdb'))).toBe(
    `cannot use ${join(file, 'store.lmdb')} as a folder: ${file} is a file, not a folder`,
  );
  const deep = join(base, 'a', 'b');
  expect(folderProblem(deep)).toBeUndefined();
  expect(existsSync(join(base, 'a'))).toBe(false);
  expect(folderProblem(base)).toBeUndefined();
  if (existsSync('/proc/self/status')) {
    // As makeFolder says (root passes the access check there; only trying tells), leaving nothing.
    expect(folderProblem('/proc/run.lmdb')).toMatch(
      /^cannot use \/proc\/run\.lmdb as a folder: (it cannot be created there|no permission to write there)$/,
    );
  }
});
