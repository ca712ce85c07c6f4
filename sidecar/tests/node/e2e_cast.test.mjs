// End to end in headless Chromium: the demo's TV page and sender page pair by code through
// tern-sidecar and stream relay-only through the TURN relay (TERN_RELAY_BIN). Asserts the TV's
// video really plays (videoWidth > 0, currentTime advancing) and that getStats() on the TV shows
// a relay candidate in the selected pair.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startSidecar } from './sidecar.mjs';
import { startRelay } from './relay.mjs';

const SECRET = 'e2e-cast-secret-5d20';
let relay; let sidecar; let context; let profile;

before(async () => {
  relay = await startRelay(SECRET);
  sidecar = await startSidecar(
    ['--turn-uri', `turn:127.0.0.1:${relay.port}?transport=udp`, '--turn-uri', `turn:127.0.0.1:${relay.port}?transport=tcp`],
    { TERN_SIDECAR_STATIC_AUTH_SECRET: SECRET },
  );
  profile = mkdtempSync(join(tmpdir(), 'tern-e2e-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: false, // the flags below ask for --headless=new explicitly
    args: [
      '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      '--auto-select-desktop-capture-source=Entire screen',
    ],
  });
});

after(async () => {
  await context?.close();
  await sidecar?.stop();
  await relay?.stop();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

const poll = async (what, fn, ms = 20000) => {
  const deadline = Date.now() + ms;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
};

test('TV and sender pair by code and the TV plays the cast through the relay only', async () => {
  const tv = await context.newPage();
  const logs = [];
  tv.on('console', (m) => logs.push(`tv: ${m.text()}`));
  await tv.goto(`${sidecar.url}/?mode=tv`);
  assert.equal(await tv.isChecked('#relayOnly'), true, 'relay only is on by default');
  const code = await poll('the room code', () => tv.evaluate(() => window.ternDemo.code));
  assert.match(code, /^\d{6}$/);
  assert.equal(await tv.textContent('#code'), code, 'the TV shows the code');

  const sender = await context.newPage();
  sender.on('console', (m) => logs.push(`sender: ${m.text()}`));
  await sender.goto(`${sidecar.url}/?mode=send`);
  await sender.fill('#codeInput', code);
  await sender.click('#cast'); // a real click: getDisplayMedia needs the user activation

  try {
    // The TV's video really plays: frames have a size and time advances.
    const width = await poll('TV video frames', () => tv.evaluate(() => document.getElementById('remote').videoWidth));
    assert.ok(width > 0);
    const t0 = await tv.evaluate(() => document.getElementById('remote').currentTime);
    await poll('currentTime to advance', () => tv.evaluate((t) => document.getElementById('remote').currentTime > t + 0.5, t0));

    // getStats() on the TV: the selected candidate pair goes through the relay.
    const path = await poll('a selected candidate pair', () => tv.evaluate(() => window.ternDemo.pathInfo()));
    assert.equal(path.localType, 'relay', `TV path: ${JSON.stringify(path)}`);
    assert.equal(path.relayed, true);
    const shown = await poll('the page to show the path', async () => {
      const t = await tv.textContent('#path');
      return t.startsWith('relayed') ? t : null;
    });
    assert.match(shown, /relayed via TURN/);
    const senderSource = await sender.evaluate(() => window.ternDemo.source);
    const senderPath = await poll('the sender path', () => sender.evaluate(() => window.ternDemo.pathInfo()));
    assert.equal(senderPath.localType, 'relay');
    console.log(`# media source: ${senderSource}; TV selected pair: ${JSON.stringify(path)}; videoWidth ${width}`);
    assert.deepEqual(await tv.evaluate(() => window.ternDemo.errors), []);
  } catch (e) {
    await tv.screenshot({ path: join(tmpdir(), 'tern-e2e-tv.png') }).catch(() => {});
    console.log(logs.join('\n'));
    throw e;
  }
});
