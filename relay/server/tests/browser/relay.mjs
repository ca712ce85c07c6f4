// Helpers shared by the browser tests: start a tern-relay child on free loopback ports, wait
// until it answers STUN, stop it by its own PID; TURN REST credentials; free ports.
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';

/** The relay binary: TERN_RELAY_BIN, set by scripts/tests.d/50-browser.sh. */
export const RELAY_BIN = process.env.TERN_RELAY_BIN ?? new URL('../../../../target/debug/tern-relay', import.meta.url).pathname;

/** A loopback port free for both TCP and UDP at the time of the call. */
export async function freePort() {
  for (let i = 0; i < 50; i++) {
    const port = await new Promise((resolve, reject) => {
      const s = net.createServer();
      s.once('error', reject);
      s.listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise((resolve) => {
      const u = dgram.createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, '127.0.0.1', () => u.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free loopback port');
}

/** TURN REST credentials: username `expiry:user`, password base64(HMAC-SHA1(secret, username)). */
export function restCredentials(secret, user, ttlSeconds = 3600) {
  const username = `${Math.floor(Date.now() / 1000) + ttlSeconds}:${user}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/** One STUN Binding request over UDP; resolves true when a STUN answer comes back in time. */
function stunPing(port, timeoutMs = 300) {
  return new Promise((resolve) => {
    const s = dgram.createSocket('udp4');
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0); // Binding request
    req.writeUInt16BE(0, 2);
    req.writeUInt32BE(0x2112a442, 4);
    randomBytes(12).copy(req, 8);
    const done = (ok) => {
      clearTimeout(t);
      s.close();
      resolve(ok);
    };
    const t = setTimeout(() => done(false), timeoutMs);
    s.on('message', (m) => done(m.length >= 20 && m.readUInt16BE(0) === 0x0101 && m.subarray(8, 20).equals(req.subarray(8, 20))));
    s.on('error', () => done(false));
    s.send(req, port, '127.0.0.1');
  });
}

/**
 * Starts tern-relay on 127.0.0.1 with REST auth and loopback peers allowed (two browsers on one
 * machine reach each other's relayed addresses through 127.0.0.1), plus `extra` flags.
 * Returns { port, secret, realm, stop(), log() }.
 */
export async function startRelay(extra = []) {
  const secret = randomBytes(16).toString('hex');
  const realm = 'browser.test';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const min = 10000 + Math.floor(Math.random() * 50) * 200;
    const args = [
      '-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
      `--min-port=${min}`, `--max-port=${min + 199}`, `--realm=${realm}`,
      '--use-auth-secret', `--static-auth-secret=${secret}`, '--allow-loopback-peers',
      '--fingerprint', '--no-cli', ...extra,
    ];
    const child = spawn(RELAY_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    let exited = false;
    child.on('exit', () => { exited = true; });
    const stop = async () => {
      if (exited) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    };
    const deadline = Date.now() + 15000;
    while (Date.now() < deadline && !exited) {
      if (await stunPing(port)) return { port, secret, realm, stop, log: () => output };
    }
    await stop();
    if (!/in use/i.test(output)) throw new Error(`tern-relay did not start: ${RELAY_BIN} ${args.join(' ')}\n${output}`);
  }
  throw new Error('tern-relay: no free port after 3 tries');
}
