/**
 * Where sluice keeps its state and its socket. Shared by the daemon and every client so they always agree;
 * resolution order is fixed: explicit override, then environment, then the XDG default.
 */
import os from 'node:os';
import path from 'node:path';

/** Linux `sun_path` holds 108 bytes including the NUL; longer paths are silently truncated by Node. */
export const MAX_SOCKET_PATH_BYTES = 107;

/** The state directory: `$SLUICE_HOME`, else `$XDG_DATA_HOME/sluice`, else `~/.local/share/sluice`. */
export function resolveHome(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLUICE_HOME) return path.resolve(env.SLUICE_HOME);
  const base = env.XDG_DATA_HOME ? path.resolve(env.XDG_DATA_HOME) : path.join(os.homedir(), '.local', 'share');
  return path.join(base, 'sluice');
}

/** The RPC socket path: `$SLUICE_SOCKET`, else `<home>/sluiced.sock`. */
export function resolveSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SLUICE_SOCKET) return path.resolve(env.SLUICE_SOCKET);
  return path.join(resolveHome(env), 'sluiced.sock');
}

/** Returns a reason when `socketPath` is too long for a Unix socket, else null. */
export function socketPathProblem(socketPath: string): string | null {
  const n = Buffer.byteLength(socketPath);
  if (n > MAX_SOCKET_PATH_BYTES) {
    return `socket path is ${n} bytes, longer than the ${MAX_SOCKET_PATH_BYTES} a Unix socket allows: set SLUICE_SOCKET to a shorter path`;
  }
  return null;
}
