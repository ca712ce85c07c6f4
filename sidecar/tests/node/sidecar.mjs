// Starts a tern-sidecar binary (TERN_SIDECAR_BIN) on an ephemeral loopback port and resolves to
// { url, stop() } once it logs its address.
import { spawn } from 'node:child_process';

export function startSidecar(extraArgs = [], env = {}) {
  const bin = process.env.TERN_SIDECAR_BIN;
  if (!bin) throw new Error('set TERN_SIDECAR_BIN to the tern-sidecar binary');
  const child = spawn(bin, ['--listen', '127.0.0.1:0', ...extraArgs], {
    env: { ...process.env, RUST_LOG: 'info', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error(`sidecar did not start: ${log}`)); }, 10000);
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/http:\/\/(127\.0\.0\.1:\d+)\//);
      if (m) {
        clearTimeout(timer);
        resolve({
          url: `http://${m[1]}`,
          log: () => log,
          stop: () => new Promise((r) => { child.once('exit', r); child.kill(); }),
        });
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`sidecar exited ${code}: ${log}`)); });
  });
}
