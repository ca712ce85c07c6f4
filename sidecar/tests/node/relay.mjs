// Starts a TURN relay that takes coturn's flags (TERN_RELAY_BIN: tern-relay, or coturn's
// turnserver with TERN_RELAY_EXTRA_ARGS) on loopback and resolves once it answers a STUN Binding.
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

const bindingAnswered = (port) => new Promise((resolve) => {
  const sock = createSocket('udp4');
  const req = Buffer.concat([Buffer.from([0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42]), randomBytes(12)]);
  const t = setTimeout(() => { sock.close(); resolve(false); }, 300);
  sock.once('message', (m) => { clearTimeout(t); sock.close(); resolve(m.readUInt16BE(0) === 0x0101); });
  sock.send(req, port, '127.0.0.1');
});

export async function startRelay(secret, realm = 'tern.test') {
  const bin = process.env.TERN_RELAY_BIN;
  if (!bin) throw new Error('set TERN_RELAY_BIN to tern-relay (or coturn turnserver)');
  const port = await freePort();
  const base = 30000 + (process.pid % 100) * 100;
  const args = ['-n', '--listening-ip=127.0.0.1', `--listening-port=${port}`, '--relay-ip=127.0.0.1',
    `--min-port=${base}`, `--max-port=${base + 99}`, `--realm=${realm}`, '--use-auth-secret',
    `--static-auth-secret=${secret}`, '--allow-loopback-peers',
    ...(process.env.TERN_RELAY_EXTRA_ARGS || '').split(/\s+/).filter(Boolean)];
  const child = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr.on('data', (d) => { log += d; });
  let exited = null;
  child.once('exit', (code) => { exited = code; });
  for (let i = 0; i < 50; i++) {
    if (exited !== null) throw new Error(`relay exited ${exited}: ${log}`);
    if (await bindingAnswered(port)) {
      return { port, stop: () => new Promise((r) => { if (exited !== null) r(); else { child.once('exit', r); child.kill(); } }) };
    }
  }
  child.kill();
  throw new Error(`relay did not answer on 127.0.0.1:${port}: ${log}`);
}
