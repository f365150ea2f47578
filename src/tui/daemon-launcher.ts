/**
 * Finds a daemon for the dashboard: connect, and when nothing answers, start `sluiced --detach` (which
 * returns once its socket answers) and connect again, unless `--no-start` forbids it. Process spawning
 * and connecting are injected so the decision logic is testable without either.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { DaemonClient } from '../shared/rpc/client.js';
import { toRpcError } from '../shared/rpc/client.js';

/** How the launch went. */
export type LaunchResult =
  { kind: 'connected'; client: DaemonClient; started: boolean } | { kind: 'refused'; message: string } | { kind: 'failed'; message: string };

/** What {@link connectOrStart} needs. */
export interface LaunchDeps {
  connect: () => Promise<DaemonClient>;
  /** Starts a detached daemon; resolves with its exit code (0 = the socket answers). */
  startDaemon: () => Promise<number>;
  noStart: boolean;
  socketPath: string;
}

/** Connects, starting a daemon first when none answers and that is allowed. */
export async function connectOrStart(deps: LaunchDeps): Promise<LaunchResult> {
  try {
    return { kind: 'connected', client: await deps.connect(), started: false };
  } catch (err) {
    const e = toRpcError(err);
    if (e.code !== 'daemon_unreachable') return { kind: 'failed', message: `sluice: ${e.message}` };
  }
  if (deps.noStart) {
    return {
      kind: 'refused',
      message: `sluice: no daemon answers on ${deps.socketPath}, and --no-start was given. Start one with \`sluicectl daemon start\` or \`sluiced\`.`,
    };
  }
  const code = await deps.startDaemon();
  if (code !== 0) {
    return {
      kind: 'failed',
      message: `sluice: could not start sluiced (exit ${code}). Run \`sluiced\` in a terminal to see why, or read sluiced.log in $SLUICE_HOME.`,
    };
  }
  try {
    return { kind: 'connected', client: await deps.connect(), started: true };
  } catch (err) {
    return { kind: 'failed', message: `sluice: started sluiced but cannot connect: ${toRpcError(err).message}` };
  }
}

/** How long `sluiced --detach` may take before we give up on it. */
const START_TIMEOUT_MS = 20_000;

/**
 * Runs `node <dist>/daemon/main.js --detach` with the socket in the environment and resolves with its
 * exit code (-1 when it could not run or took too long).
 */
export function startDetachedDaemon(socketPath: string | undefined): Promise<number> {
  const daemonMain = fileURLToPath(new URL('../daemon/main.js', import.meta.url));
  const env = socketPath === undefined ? process.env : { ...process.env, SLUICE_SOCKET: socketPath };
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [daemonMain, '--detach'], { stdio: 'ignore', env });
    const timer = setTimeout(() => {
      child.kill();
      resolve(-1);
    }, START_TIMEOUT_MS);
    child.once('error', () => {
      clearTimeout(timer);
      resolve(-1);
    });
    // `--detach` exits once the socket answers; the daemon it leaves behind runs on without us.
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve(code ?? -1);
    });
  });
}
