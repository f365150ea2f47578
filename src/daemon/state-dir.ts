/**
 * The state directory guard: sluice keeps secrets and its socket there, so the directory must belong to the
 * user running the daemon and must not be writable by anyone else (someone who can write it could swap the
 * socket or the CA). A directory that is merely readable by others is tightened to 0700.
 */
import fs from 'node:fs';
import type { Logger } from './log.js';

/** Creates `dir` (0700) or checks an existing one; throws a clear error when it is unsafe. */
export function ensurePrivateDir(dir: string, log: Logger): void {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = fs.statSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new Error(`${dir} belongs to user ${st.uid}, not to you (${uid}); sluice will not keep secrets or its socket there`);
  }
  const mode = st.mode & 0o777;
  if ((mode & 0o022) !== 0) {
    throw new Error(`${dir} is writable by group or others (mode ${mode.toString(8)}); run chmod 700 ${dir}`);
  }
  if ((mode & 0o077) !== 0) {
    fs.chmodSync(dir, 0o700);
    log.warn('tightened state directory permissions to 0700', { dir, was: mode.toString(8) });
  }
}
