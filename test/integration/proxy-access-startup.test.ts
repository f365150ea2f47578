/**
 * The daemon's own hygiene at start: a home or socket directory that others could write to, or that belongs
 * to another user, makes it refuse to start (with a clear reason) before it creates any key or socket.
 * (Split out of proxy-access.test.ts so these node starts run beside that file's other groups.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from 'vitest';
import { shortTempDir } from '../fakes/daemon-harness.js';
import { UPSTREAM_CA } from '../fakes/fake-upstream.js';
import { runDaemonOnce } from '../fakes/reliability-helpers.js';

describe('unsafe directories: the daemon refuses to start', () => {
  test('a home directory writable by group refuses to start', async () => {
    const home = shortTempDir();
    try {
      fs.chmodSync(home, 0o770);
      const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_HOME: home, SLUICE_PROXY_LISTEN: '127.0.0.1:0', SLUICE_UPSTREAM_CA: UPSTREAM_CA };
      delete env.SLUICE_SOCKET;
      const r = await runDaemonOnce(env);
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/writable by group/i);
      expect(fs.existsSync(path.join(home, 'sluiced.sock'))).toBe(false);
      expect(fs.existsSync(path.join(home, 'master.key'))).toBe(false);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('a home directory owned by another user refuses to start', async () => {
    if (process.getuid?.() !== 0) return; // only root can hand a directory to someone else
    const home = shortTempDir();
    try {
      fs.chmodSync(home, 0o700);
      fs.chownSync(home, 65534, 65534);
      const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_HOME: home, SLUICE_PROXY_LISTEN: '127.0.0.1:0', SLUICE_UPSTREAM_CA: UPSTREAM_CA };
      delete env.SLUICE_SOCKET;
      const r = await runDaemonOnce(env);
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/belongs to user|owned by/i);
      expect(fs.existsSync(path.join(home, 'master.key'))).toBe(false);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  test('a socket directory writable by others (SLUICE_SOCKET) refuses to start', async () => {
    const home = shortTempDir();
    const sockDir = shortTempDir('sks');
    try {
      fs.chmodSync(home, 0o700);
      fs.chmodSync(sockDir, 0o777);
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        SLUICE_HOME: home,
        SLUICE_SOCKET: path.join(sockDir, 's.sock'),
        SLUICE_PROXY_LISTEN: '127.0.0.1:0',
        SLUICE_UPSTREAM_CA: UPSTREAM_CA,
      };
      const r = await runDaemonOnce(env);
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/writable by group or others/i);
      expect(fs.existsSync(path.join(sockDir, 's.sock'))).toBe(false);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(sockDir, { recursive: true, force: true });
    }
  });
});
