// Headless Chromium through tern-relay over TLS: two RTCPeerConnections in one page whose only
// ICE server is `turns:HOST:PORT?transport=tcp` and whose policy is "relay". 100 data-channel
// messages must arrive in order, and getStats() must show that the selected pair's local
// candidate is a relay candidate reached over TLS (relayProtocol "tls").
//
//   node tls_turns.mjs HOST PORT USER PASS
//
// Chromium is Debian's (/usr/bin/chromium, or $CHROMIUM); --ignore-certificate-errors accepts
// the test's self-signed certificate. Exits non-zero with the reason on failure.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [host, port, username, credential] = process.argv.slice(2);
if (!credential) {
  console.error("usage: node tls_turns.mjs HOST PORT USER PASS");
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), "tern-chromium-tls-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--ignore-certificate-errors",
  ],
  timeout: 60_000,
});

let failed = null;
try {
  const page = browser.pages()[0] ?? (await browser.newPage());
  page.on("console", (m) => console.log(`page: ${m.text()}`));
  const result = await page.evaluate(
    async ({ url, username, credential }) => {
      const config = { iceServers: [{ urls: url, username, credential }], iceTransportPolicy: "relay" };
      const a = new RTCPeerConnection(config);
      const b = new RTCPeerConnection(config);
      const candidates = { a: [], b: [] };
      a.onicecandidate = (e) => e.candidate && (candidates.a.push(e.candidate.candidate), b.addIceCandidate(e.candidate));
      b.onicecandidate = (e) => e.candidate && (candidates.b.push(e.candidate.candidate), a.addIceCandidate(e.candidate));
      const received = [];
      const done = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timeout: ${received.length} of 100 messages; ` +
          `ice a=${a.iceConnectionState} b=${b.iceConnectionState}; candidates ${JSON.stringify(candidates)}`)), 30000);
        b.ondatachannel = (e) => {
          e.channel.onmessage = (m) => {
            received.push(m.data);
            if (received.length === 100) {
              clearTimeout(timer);
              resolve();
            }
          };
        };
      });
      const ch = a.createDataChannel("tls", { ordered: true });
      ch.onopen = () => {
        for (let i = 0; i < 100; i++) ch.send(`message ${i}`);
      };
      await a.setLocalDescription(await a.createOffer());
      await b.setRemoteDescription(a.localDescription);
      await b.setLocalDescription(await b.createAnswer());
      await a.setRemoteDescription(b.localDescription);
      await done;
      const inOrder = received.every((m, i) => m === `message ${i}`);
      // The selected pair of each side, and its local candidate.
      const selected = async (pc) => {
        const stats = await pc.getStats();
        let pair = null;
        stats.forEach((s) => {
          if (s.type === "transport" && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
        });
        if (!pair) stats.forEach((s) => { if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded") pair = s; });
        const local = pair && stats.get(pair.localCandidateId);
        return local && { candidateType: local.candidateType, relayProtocol: local.relayProtocol, address: local.address, url: local.url };
      };
      const out = { count: received.length, inOrder, a: await selected(a), b: await selected(b) };
      a.close();
      b.close();
      return out;
    },
    { url: `turns:${host}:${port}?transport=tcp`, username, credential },
  );
  console.log(`chromium: ${JSON.stringify(result)}`);
  if (result.count !== 100 || !result.inOrder) failed = "not all 100 messages arrived in order";
  for (const side of ["a", "b"]) {
    const c = result[side];
    if (!c || c.candidateType !== "relay" || c.relayProtocol !== "tls") {
      failed = `side ${side}: the selected local candidate is not a relay over TLS: ${JSON.stringify(c)}`;
    }
  }
} catch (e) {
  failed = String(e);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
if (failed) {
  console.error(`FAIL: ${failed}`);
  process.exit(1);
}
console.log("chromium: 100 data-channel messages through turns: over TLS, relayProtocol tls");
