// The seed's socket.io flow, event for event, with the unmodified socket.io-client v4 from npm
// against tern-sidecar: io(URL, { transports: ['websocket'] }).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { io } from 'socket.io-client';
import { startSidecar } from './sidecar.mjs';

const SECRET = 'node-seed-flow-secret-93c1';
let sidecar;
const sockets = [];

before(async () => {
  sidecar = await startSidecar(
    ['--turn-uri', 'stun:127.0.0.1:3478', '--turn-uri', 'turn:127.0.0.1:3478?transport=udp',
      '--ping-interval', '300ms', '--ping-timeout', '2s'],
    { TERN_SIDECAR_STATIC_AUTH_SECRET: SECRET },
  );
});
after(async () => {
  sockets.forEach((s) => s.disconnect());
  await sidecar.stop();
  assert.ok(!sidecar.log().includes(SECRET), 'the secret reached the log');
});

const connect = (nsp = '') => {
  const s = io(sidecar.url + nsp, { transports: ['websocket'], reconnection: false, timeout: 5000 });
  sockets.push(s);
  return new Promise((resolve, reject) => { s.once('connect', () => resolve(s)); s.once('connect_error', reject); });
};
// The next `event` on `socket`, within 5 s.
const next = (socket, event) => new Promise((resolve, reject) => {
  const t = setTimeout(() => reject(new Error(`no ${event} within 5 s`)), 5000);
  socket.once(event, (...args) => { clearTimeout(t); resolve(args); });
});
// Resolves if `event` does NOT arrive within `ms`.
const silent = (socket, event, ms = 300) => new Promise((resolve, reject) => {
  const h = (...a) => reject(new Error(`unexpected ${event}: ${JSON.stringify(a)}`));
  socket.once(event, h);
  setTimeout(() => { socket.off(event, h); resolve(); }, ms);
});
const checkIceServers = (payload) => {
  const servers = payload.config.iceServers;
  assert.deepEqual(servers[0], { urls: ['stun:127.0.0.1:3478'] });
  const { username, credential, urls } = servers[1];
  assert.deepEqual(urls, ['turn:127.0.0.1:3478?transport=udp']);
  assert.match(username, /^\d+:[0-9a-f]{16}$/);
  // TURN REST: password = base64(HMAC-SHA1(secret, username)), checked independently here.
  assert.equal(credential, createHmac('sha1', SECRET).update(username).digest('base64'));
  assert.ok(Number(username.split(':')[0]) > Date.now() / 1000 + 3500);
};

async function seedFlow(nsp) {
  const tv = await connect(nsp);
  const sender = await connect(nsp);

  // TV_INIT -> TV_INIT_OK with the code.
  const tvInitOk = next(tv, 'TV_INIT_OK');
  tv.emit('TV_INIT');
  const [code] = await tvInitOk;
  assert.match(code, /^\d{6}$/);

  // JOIN_ROOM -> CONFIG_FEEDBACK with fresh credentials for both members.
  const senderConfig = next(sender, 'CONFIG_FEEDBACK');
  const tvConfig = next(tv, 'CONFIG_FEEDBACK');
  sender.emit('JOIN_ROOM', code);
  checkIceServers((await senderConfig)[0]);
  checkIceServers((await tvConfig)[0]);

  // CLIENT_OFFER_TO_SERVER -> CLIENT_OFFER_TO_TV.
  const offer = { type: 'offer', sdp: 'v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n' };
  const gotOffer = next(tv, 'CLIENT_OFFER_TO_TV');
  const noEcho = silent(sender, 'CLIENT_OFFER_TO_TV');
  sender.emit('CLIENT_OFFER_TO_SERVER', offer);
  assert.deepEqual(await gotOffer, [offer]);
  await noEcho;

  // TV_ANSWER_TO_SERVER -> TV_ANSWER_TO_CLIENT.
  const answer = { type: 'answer', sdp: 'v=0\r\n' };
  const gotAnswer = next(sender, 'TV_ANSWER_TO_CLIENT');
  tv.emit('TV_ANSWER_TO_SERVER', answer);
  assert.deepEqual(await gotAnswer, [answer]);

  // RTC_Candidate_Exchange both ways, unchanged.
  const cand = { candidate: 'candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay raddr 0.0.0.0 rport 0', sdpMid: '0', sdpMLineIndex: 0 };
  let got = next(tv, 'RTC_Candidate_Exchange');
  sender.emit('RTC_Candidate_Exchange', cand);
  assert.deepEqual(await got, [cand]);
  got = next(sender, 'RTC_Candidate_Exchange');
  tv.emit('RTC_Candidate_Exchange', cand);
  assert.deepEqual(await got, [cand]);

  // Any other event goes to the others unchanged, every argument.
  got = next(tv, 'SCREEN_META');
  sender.emit('SCREEN_META', { w: 1920, h: 1080 }, 'second', 3, null);
  assert.deepEqual(await got, [{ w: 1920, h: 1080 }, 'second', 3, null]);

  // Acknowledgements work like socket.io's: TV_INIT's ack carries the code.
  const other = await connect(nsp);
  const ackCode = await other.timeout(5000).emitWithAck('TV_INIT');
  assert.match(ackCode, /^\d{6}$/);
  // Room isolation: the third socket's room never sees this room's events.
  const isolated = silent(other, 'RTC_Candidate_Exchange');
  sender.emit('RTC_Candidate_Exchange', cand);
  await next(tv, 'RTC_Candidate_Exchange');
  await isolated;

  // Heartbeats: with pingInterval 300 ms the client answers the server's pings and stays up.
  await new Promise((r) => setTimeout(r, 1200));
  assert.ok(tv.connected && sender.connected);

  // A member leaving: the other is told.
  const left = next(tv, 'PEER_LEFT');
  sender.disconnect();
  const [info] = await left;
  assert.match(info.id, /^[0-9a-f]{16}$/);
}

test('seed flow in the default namespace', () => seedFlow(''));
test('seed flow in a named namespace (/rtc)', () => seedFlow('/rtc'));

test('a wrong code gets an ERROR event and a failed ack', async () => {
  const s = await connect();
  const err = next(s, 'ERROR');
  const ack = await s.timeout(5000).emitWithAck('JOIN_ROOM', '000000');
  assert.equal(ack.error.code, 'room-unavailable');
  assert.equal((await err)[0].code, 'room-unavailable');
});

test('HTTP long-polling gets a clear 400', async () => {
  const r = await fetch(`${sidecar.url}/socket.io/?EIO=4&transport=polling&t=abc`);
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.match(body.message, /transports: \['websocket'\]/);
  // The default client (polling first) fails to connect instead of hanging.
  const s = io(sidecar.url, { reconnection: false, timeout: 3000 });
  sockets.push(s);
  await next(s, 'connect_error');
});
