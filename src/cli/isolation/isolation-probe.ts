/**
 * Whether `run --isolate` can fence a command on this machine: bubblewrap installed, and the kernel lets it
 * create the namespaces. Checked by running bwrap itself with the same namespaces the sandbox uses, because
 * sysctls differ between distributions (Debian's unprivileged_userns_clone, Ubuntu's AppArmor restriction).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

/** The answer of {@link probeIsolation}. */
export type IsolationSupport = { ok: true; bwrap: string; version: string } | { ok: false; reason: string };

/** How to install bubblewrap, for the message when it is missing. */
export const INSTALL_HINT = 'install bubblewrap (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap; Arch: pacman -S bubblewrap)';

/** Finds `name` on PATH. */
export function which(name: string, envPath = process.env.PATH ?? ''): string | null {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const f = path.join(dir, name);
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return f;
    } catch {
      // not here
    }
  }
  return null;
}

/** Checks that bubblewrap exists and can create the sandbox's namespaces (a run of `true` inside, ≤ 10 s). */
export function probeIsolation(platform: NodeJS.Platform = process.platform): IsolationSupport {
  if (platform === 'darwin') return { ok: false, reason: 'run --isolate is not supported on macOS yet (it needs Linux namespaces; see the README)' };
  if (platform !== 'linux') return { ok: false, reason: `run --isolate needs Linux (this is ${platform})` };
  const bwrap = which('bwrap');
  if (!bwrap) return { ok: false, reason: `run --isolate needs bubblewrap (bwrap), which is not on PATH: ${INSTALL_HINT}` };
  const version = spawnSync(bwrap, ['--version'], { encoding: 'utf8', timeout: 10_000 }).stdout.trim();
  const r = spawnSync(bwrap, ['--unshare-net', '--unshare-pid', '--unshare-ipc', '--dev-bind', '/', '/', '--proc', '/proc', 'true'], {
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (r.status !== 0) {
    const said = (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0];
    return {
      ok: false,
      reason: `bubblewrap cannot create namespaces here (bwrap: ${said}); user namespaces may be disabled: allow them (e.g. sysctl kernel.unprivileged_userns_clone=1, or on Ubuntu kernel.apparmor_restrict_unprivileged_userns=0) or run without --isolate`,
    };
  }
  return { ok: true, bwrap, version };
}
