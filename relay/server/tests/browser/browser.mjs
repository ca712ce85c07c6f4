// Headless Chromium (Debian's package) through playwright-core, with the flags every browser
// test uses and a fresh profile that is removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.TERN_CHROMIUM ?? '/usr/bin/chromium';

export const CHROMIUM_FLAGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** Launches Chromium with a fresh --user-data-dir; returns { context, close() }. */
export async function launch(extraFlags = []) {
  const profile = mkdtempSync(join(tmpdir(), 'tern-chromium-'));
  // launchPersistentContext is how playwright takes --user-data-dir; headless is passed as a
  // flag (--headless=new) so the real Chromium, not a headless shell, runs.
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: false,
    args: [...CHROMIUM_FLAGS, ...extraFlags],
    timeout: 30000,
  });
  const close = async () => {
    try {
      await context.close();
    } finally {
      rmSync(profile, { recursive: true, force: true });
    }
  };
  return { context, close };
}
