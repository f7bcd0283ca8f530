// The README's picture of the dashboard: runs a pipeline (default apps/live-imaging), opens its page
// in Debian's Chromium, headless, at 1400×900, clicks setup and run, lets the plots fill (WAIT ms,
// default 12000) and saves a screenshot.
// Usage: npx tsx scripts/dashboard-screenshot.mts [out.png] [pipeline.yaml] [--keep]
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { createDefaultNexus, dashboardAddress, LogHistory, startControlSession } from '@improv/cli';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2).filter((arg) => !arg.startsWith('--'));
const keep = process.argv.includes('--keep');
const root = fileURLToPath(new URL('..', import.meta.url));
const out = args[0] ?? join(root, 'packages/dashboard/screenshot.png');
const pipeline = args[1] ?? join(root, 'apps/live-imaging/live-imaging.yaml');
process.env.IMPROV_HOME = mkdtempSync(join(tmpdir(), 'improv-home-'));
const logs = new LogHistory();
const nexus = await createDefaultNexus({
  config: pipeline,
  runDir: false,
  handleSignals: false,
  onEvent: (event) => {
    if (event.type === 'log') logs.push(event.record);
  },
});
const session = await startControlSession(nexus, logs, { pipeline });
const address = dashboardAddress(session.info.url, session.token);
console.log(address);
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
page.on('console', (message) => console.log(`page ${message.type()}: ${message.text()}`));
page.on('pageerror', (error) => console.log(`page error: ${error.message}`));
await page.goto(address);
await page.waitForSelector('[data-status][data-state="waiting"]', { timeout: 60_000 });
await page.click('[data-command="setup"]');
await page.waitForSelector('[data-status][data-state="ready"]', { timeout: 60_000 });
await page.click('[data-command="run"]');
await page.waitForSelector('[data-stream]', { timeout: 60_000 });
await new Promise((resolve) => setTimeout(resolve, Number(process.env.WAIT ?? 12_000)));
await page.screenshot({ path: out });
console.log(`saved ${out}`);
if (keep) {
  console.log('keeping the pipeline running; Ctrl-C ends it');
  await new Promise((resolve) => process.once('SIGINT', resolve));
}
await browser.close();
await nexus.quit();
await session.close();
