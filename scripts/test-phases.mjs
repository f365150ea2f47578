#!/usr/bin/env node
// `npm test`: build, then the unit, integration and e2e tests, one vitest run per phase with a header line
// and the wall time of each, so a log says which phase is running and which one failed. Every phase runs
// even after a failed one (one run tells you everything); a failed build stops at once. Exits non-zero
// when any phase failed. Extra arguments go to every vitest run (e.g. `npm test -- --reporter=dot`).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const extra = process.argv.slice(2);
const npx = process.platform === 'win32' ? 'npx.cmd' : 'npx';

const allPhases = [
  { name: 'build', cmd: 'npm', args: ['run', 'build'] },
  { name: 'lint', cmd: 'npm', args: ['run', 'lint'] },
  { name: 'unit', cmd: npx, args: ['vitest', 'run', 'test/unit', ...extra] },
  { name: 'integration', cmd: npx, args: ['vitest', 'run', 'test/integration', ...extra] },
  { name: 'e2e', cmd: npx, args: ['vitest', 'run', 'test/e2e', ...extra] },
];
// SLUICE_TEST_PHASES=build,unit runs only those (in the order above); unset runs all.
const only = process.env.SLUICE_TEST_PHASES?.split(',')
  .map((x) => x.trim())
  .filter(Boolean);
const unknown = (only ?? []).filter((n) => !allPhases.some((p) => p.name === n));
if (unknown.length > 0) {
  console.error(`[test] unknown phase(s) in SLUICE_TEST_PHASES: ${unknown.join(', ')} (known: ${allPhases.map((p) => p.name).join(', ')})`);
  process.exit(2);
}
const phases = only ? allPhases.filter((p) => only.includes(p.name)) : allPhases;

/** Runs one command with inherited stdio; resolves with its exit code (a signal counts as failure). */
function run(cmd, args) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: root, stdio: 'inherit' });
    child.on('error', (err) => {
      console.error(`[test] could not start ${cmd}: ${err.message}`);
      resolve(1);
    });
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

const results = [];
const t0 = Date.now();
for (const phase of phases) {
  console.log(`\n[test] ── ${phase.name} ── ${phase.cmd} ${phase.args.join(' ')}`);
  const start = Date.now();
  const code = await run(phase.cmd, phase.args);
  const secs = ((Date.now() - start) / 1000).toFixed(1);
  results.push({ name: phase.name, code, secs });
  console.log(`[test] ── ${phase.name}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${secs} s`);
  if (phase.name === 'build' && code !== 0) break;
}
const total = ((Date.now() - t0) / 1000).toFixed(1);
console.log(`\n[test] summary: ${results.map((r) => `${r.name} ${r.code === 0 ? 'ok' : 'FAILED'} ${r.secs} s`).join(' · ')} · total ${total} s`);
process.exit(results.some((r) => r.code !== 0) || results.length < phases.length ? 1 : 0);
