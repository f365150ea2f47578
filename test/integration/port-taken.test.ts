/**
 * A proxy port that something else holds. Foreground `sluiced` used to print nothing and hang, and
 * `sluicectl daemon start` said "did not answer within 15 s" and left the daemon running. Now both exit at
 * once, non-zero, with one line naming the address and what to do, and leave no process and no socket.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { BIN, shortTempDir } from '../fakes/daemon-harness.js';
import { daemonEnv, runNode } from '../fakes/reliability-helpers.js';

let holder: net.Server;
let port = 0;
const homes: string[] = [];

beforeAll(async () => {
  holder = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  port = (holder.address() as net.AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => holder.close(r));
  for (const h of homes) fs.rmSync(h, { recursive: true, force: true });
});

function freshHome(): string {
  const h = shortTempDir();
  fs.chmodSync(h, 0o700);
  homes.push(h);
  return h;
}

/** Pids of this user's processes whose environment names `home` as SLUICE_HOME. */
function processesOn(home: string): number[] {
  const needle = Buffer.from(`SLUICE_HOME=${home}\0`);
  const out: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/environ`).includes(needle)) out.push(Number(e));
    } catch {
      // gone, or not ours
    }
  }
  return out;
}

function expectOneLineNamingTheAddress(stderr: string): void {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toContain(`127.0.0.1:${port}`);
  expect(lines[0]).toContain('EADDRINUSE');
  expect(lines[0]).toContain('SLUICE_PROXY_LISTEN=127.0.0.1:0');
}

test('foreground sluiced on a taken port exits at once, non-zero, with one line; no socket or pid file left', async () => {
  const home = freshHome();
  const r = await runNode(BIN.daemon, [], { env: daemonEnv(home, { SLUICE_PROXY_LISTEN: `127.0.0.1:${port}` }), timeoutMs: 15_000 });
  expect(r.timedOut).toBe(false);
  expect(r.code).not.toBe(0);
  expect(r.code).not.toBeNull();
  expectOneLineNamingTheAddress(r.stderr);
  expect(r.stdout).toBe('');
  // Node start-up, the CA and the database take most of it; the refusal itself is immediate.
  expect(r.ms).toBeLessThan(8_000);
  expect(fs.existsSync(path.join(home, 'sluiced.sock'))).toBe(false);
  expect(fs.existsSync(path.join(home, 'sluiced.pid'))).toBe(false);
  // The log file still records why.
  expect(fs.readFileSync(path.join(home, 'sluiced.log'), 'utf8')).toContain('EADDRINUSE');
});

test('sluicectl daemon start on a taken port relays that line, exits non-zero and leaves no process', async () => {
  const home = freshHome();
  const env = { ...daemonEnv(home, { SLUICE_PROXY_LISTEN: `127.0.0.1:${port}` }), NO_COLOR: '1' };
  const r = await runNode(BIN.cli, ['daemon', 'start'], { env, timeoutMs: 20_000 });
  expect(r.timedOut).toBe(false);
  expect(r.code).toBe(1);
  expectOneLineNamingTheAddress(r.stderr);
  expect(r.ms).toBeLessThan(10_000);
  expect(processesOn(home)).toEqual([]);
  expect(fs.existsSync(path.join(home, 'sluiced.sock'))).toBe(false);
});
