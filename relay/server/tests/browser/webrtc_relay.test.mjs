// A real browser through tern-relay: one headless Chromium page holds two RTCPeerConnections
// whose only ICE server is tern-relay, with iceTransportPolicy "relay". They exchange 100
// data-channel messages (each echoed back) over turn: UDP and over turn: TCP, and getStats()
// must show that each side's selected pair uses a local candidate of type "relay" allocated
// over that protocol. Both browsers' relayed addresses are on 127.0.0.1, so the relay runs with
// --allow-loopback-peers. Run by scripts/tests.d/50-browser.sh (node --test).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launch } from './browser.mjs';
import { restCredentials, startRelay } from './relay.mjs';

const MESSAGES = 100;

// The page: everything WebRTC happens in the browser; node only reads the result.
const PAGE = `<!doctype html><meta charset="utf-8"><title>tern-relay WebRTC test</title>
<script>
function withTimeout(p, ms, what, state) {
  return Promise.race([p, new Promise((_, rej) => setTimeout(() => rej(new Error(what + ' timed out; ' + JSON.stringify(state()))), ms))]);
}

async function selectedPair(pc) {
  const stats = await pc.getStats();
  let pair;
  stats.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId); });
  if (!pair) stats.forEach((s) => { if (!pair && s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') pair = s; });
  if (!pair) return null;
  const pick = (c) => c && { candidateType: c.candidateType, relayProtocol: c.relayProtocol, protocol: c.protocol, address: c.address, port: c.port, url: c.url };
  return { state: pair.state, local: pick(stats.get(pair.localCandidateId)), remote: pick(stats.get(pair.remoteCandidateId)),
           bytesSent: pair.bytesSent, bytesReceived: pair.bytesReceived };
}

window.gatherOnly = async ({ iceServers, timeoutMs }) => {
  const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy: 'relay' });
  const candidates = [], errors = [];
  pc.onicecandidateerror = (e) => errors.push(e.errorCode + ' ' + e.errorText);
  const done = new Promise((resolve) => { pc.onicecandidate = (e) => { if (e.candidate) candidates.push(e.candidate.candidate); else resolve(); }; });
  pc.createDataChannel('x');
  await pc.setLocalDescription(await pc.createOffer());
  await withTimeout(done, timeoutMs, 'gathering', () => ({ candidates, errors }));
  pc.close();
  return { candidates, errors };
};

window.relayRoundTrip = async ({ iceServers, messages, timeoutMs }) => {
  const cfg = { iceServers, iceTransportPolicy: 'relay' };
  const a = new RTCPeerConnection(cfg), b = new RTCPeerConnection(cfg);
  const log = { a: [], b: [], errors: [] };
  const state = () => ({ a: a.iceConnectionState, b: b.iceConnectionState, log });
  for (const [name, pc, other] of [['a', a, b], ['b', b, a]]) {
    pc.onicecandidate = (e) => { if (e.candidate) { log[name].push(e.candidate.candidate); other.addIceCandidate(e.candidate).catch((err) => log.errors.push(String(err))); } };
    pc.onicecandidateerror = (e) => log.errors.push(name + ': ' + e.errorCode + ' ' + e.errorText + ' ' + e.url);
  }
  const dcA = a.createDataChannel('tern', { ordered: true });
  const dcBReady = new Promise((resolve) => { b.ondatachannel = (e) => resolve(e.channel); });
  await a.setLocalDescription(await a.createOffer());
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription(await b.createAnswer());
  await a.setRemoteDescription(b.localDescription);

  await withTimeout(new Promise((resolve) => { dcA.onopen = resolve; }), timeoutMs, 'data channel open', state);
  const dcB = await withTimeout(dcBReady, timeoutMs, 'remote data channel', state);
  dcB.onmessage = (e) => dcB.send('echo ' + e.data);

  const echoed = [];
  const allBack = new Promise((resolve) => {
    dcA.onmessage = (e) => { echoed.push(e.data); if (echoed.length === messages) resolve(); };
  });
  const sent = [];
  for (let i = 0; i < messages; i++) {
    const m = 'message ' + i + ' ' + 'x'.repeat(i * 13);
    sent.push(m);
    dcA.send(m);
  }
  await withTimeout(allBack, timeoutMs, 'echoes', () => ({ ...state(), echoed: echoed.length }));
  const inOrder = echoed.every((m, i) => m === 'echo ' + sent[i]);
  const result = { echoed: echoed.length, inOrder, a: await selectedPair(a), b: await selectedPair(b), log };
  dcA.close();
  a.close();
  b.close();
  return result;
};
</script>`;

let relay;
let browser;

before(async () => {
  relay = await startRelay();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await relay?.stop();
});

for (const transport of ['udp', 'tcp']) {
  test(`two peer connections exchange ${MESSAGES} data-channel messages through turn: over ${transport}`, async () => {
    const { username, credential } = restCredentials(relay.secret, `browser-${transport}`);
    const page = await browser.context.newPage();
    try {
      await page.setContent(PAGE);
      const iceServers = [{ urls: `turn:127.0.0.1:${relay.port}?transport=${transport}`, username, credential }];
      const r = await page.evaluate((cfg) => window.relayRoundTrip(cfg), { iceServers, messages: MESSAGES, timeoutMs: 20000 });
      if (process.env.TERN_BROWSER_VERBOSE) console.log(JSON.stringify({ transport, a: r.a, b: r.b }, null, 1));
      assert.equal(r.echoed, MESSAGES, `all ${MESSAGES} messages came back`);
      assert.ok(r.inOrder, 'every echo matches its message, in order');
      for (const side of ['a', 'b']) {
        const pair = r[side];
        assert.ok(pair, `getStats() of ${side} shows a selected candidate pair`);
        assert.equal(pair.local.candidateType, 'relay', `${side}'s selected local candidate is relayed: ${JSON.stringify(pair)}`);
        assert.equal(pair.local.relayProtocol, transport, `${side}'s relay candidate was allocated over ${transport}`);
        assert.equal(pair.remote.candidateType, 'relay', `${side}'s remote candidate is the other side's relayed address`);
        assert.equal(pair.local.address, '127.0.0.1', 'the relayed address is on the relay-ip');
        assert.ok(pair.bytesSent > 0 && pair.bytesReceived > 0, 'bytes flowed on the selected pair');
      }
      // The relay saw these allocations arrive over the same transport.
      assert.match(relay.log(), new RegExp(`allocation created tuple=${transport}:127\\.0\\.0\\.1:`), 'relay log');
    } finally {
      await page.close();
    }
  });
}

test('wrong credentials gather no relay candidate', async () => {
  const page = await browser.context.newPage();
  try {
    await page.setContent(PAGE);
    const { username } = restCredentials(relay.secret, 'intruder');
    const iceServers = [{ urls: `turn:127.0.0.1:${relay.port}?transport=udp`, username, credential: 'not-the-password' }];
    const r = await page.evaluate((cfg) => window.gatherOnly(cfg), { iceServers, timeoutMs: 20000 });
    assert.deepEqual(r.candidates, [], 'no candidate without valid credentials');
    assert.ok(r.errors.some((e) => e.startsWith('401')), `the browser saw 401: ${JSON.stringify(r.errors)}`);
  } finally {
    await page.close();
  }
});
