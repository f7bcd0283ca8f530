// What the tests that keep runs in a registry share: an IMPROV_HOME of their own, so they never see
// (or leave behind) the runs of the machine's user or of another test file.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { afterAll, beforeAll } from 'vitest';

/** A fresh, empty folder to give as IMPROV_HOME (a registry of its own). */
export function newImprovHome(): string {
  return mkdtempSync(join(tmpdir(), 'improv-home-'));
}

/**
 * Points IMPROV_HOME at a fresh folder for the tests of the calling file (set before them, put back
 * after them), for code that runs in this process. Returns the folder.
 */
export function isolateImprovHome(): string {
  const home = newImprovHome();
  const previousHome = process.env.IMPROV_HOME;
  beforeAll(() => {
    process.env.IMPROV_HOME = home;
  });
  afterAll(() => {
    if (previousHome === undefined) delete process.env.IMPROV_HOME;
    else process.env.IMPROV_HOME = previousHome;
  });
  return home;
}
