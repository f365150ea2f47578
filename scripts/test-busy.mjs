#!/usr/bin/env node
// `npm run test:busy`: the whole suite (`npm test`) with two CPU-bound burner processes beside it, the way a
// busy two-core machine looks. The burners are bounded (each ends by itself after BURN_MAX_S, default 40
// min) and are stopped when the suite ends, whatever happens (exit, failure, Ctrl-C). Exits with the
// suite's status and prints its wall time.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const burners = Number(process.env.SLUICE_BURNERS ?? 2);
const maxS = Number(process.env.BURN_MAX_S ?? 2400);

// A busy loop that ends by itself, so a burner can never outlive a lost parent by more than maxS.
const burnSource = `const end = Date.now() + ${maxS * 1000}; let x = 0; while (Date.now() < end) x = (x + 1) % 1e9;`;
const procs = Array.from({ length: burners }, () => spawn(process.execPath, ['-e', burnSource], { stdio: 'ignore' }));
console.log(`[test:busy] started ${burners} CPU burners (pids ${procs.map((p) => p.pid).join(', ')}; each stops by itself after ${maxS} s)`);

let stopped = false;
function stopBurners() {
  if (stopped) return;
  stopped = true;
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
}
process.on('exit', stopBurners);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    stopBurners();
    suite?.kill(sig);
    process.exit(130);
  });
}

const t0 = Date.now();
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const suite = spawn(npm, ['test', '--', ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
suite.on('error', (err) => {
  console.error(`[test:busy] could not start npm test: ${err.message}`);
  stopBurners();
  process.exit(1);
});
suite.on('exit', (code, signal) => {
  stopBurners();
  const status = code ?? (signal ? 1 : 0);
  console.log(
    `[test:busy] npm test ${status === 0 ? 'passed' : `FAILED (exit ${status})`} beside ${burners} CPU burners in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
  );
  process.exit(status);
});
