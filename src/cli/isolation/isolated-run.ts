/**
 * `sluicectl run --isolate`: runs the agent's command inside a bubblewrap sandbox whose only way out is the
 * sluice proxy (see sandbox-plan.ts for the fence and sandbox-init.ts for what runs inside). The terminal is
 * inherited, so interactive agents work; signals sent to sluicectl reach the command through a pipe (the
 * command lives in its own pid namespace); the exit status is the command's own.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import type { AgentFence } from '../../shared/protocol/results.js';
import { resolveHome } from '../../shared/rpc/paths.js';
import { CliError } from '../exit-codes.js';
import { sandboxArgs } from './sandbox-plan.js';
import { ttyFilterBytes } from './tty-seccomp.js';

/** sluice's own install (dist/ and the Node fetch preload live here). */
const PACKAGE_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The script that runs first inside the sandbox. */
export const SANDBOX_INIT = fileURLToPath(new URL('../../bootstrap/sandbox-init.js', import.meta.url));

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** What an isolated run needs besides the command. */
export interface IsolatedRun {
  bwrap: string;
  env: NodeJS.ProcessEnv;
  /** The proxy URL the agent's environment names (its port is where the relay listens inside). */
  proxyUrl: string;
  proxySocket: string;
  fence: AgentFence;
}

/** The state directories to empty: the daemon's home, and the default home too when another one exists. */
export function stateDirsFor(fence: AgentFence, env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [...fence.state_dirs];
  const fallback = resolveHome({ ...env, SLUICE_HOME: '' });
  if (!dirs.includes(fallback) && fs.existsSync(fallback)) dirs.push(fallback);
  return dirs;
}

/** Runs `words` fenced; resolves with the status sluicectl should exit with. */
export function runIsolated(words: string[], r: IsolatedRun): Promise<number> {
  const port = Number(new URL(r.proxyUrl).port);
  const args = sandboxArgs({
    bwrap: r.bwrap,
    node: process.execPath,
    initScript: SANDBOX_INIT,
    port,
    proxySocket: r.proxySocket,
    stateDirs: stateDirsFor(r.fence),
    keep: [
      { path: process.cwd(), writable: true },
      ...(r.env.HOME ? [{ path: r.env.HOME, writable: true }] : []),
      { path: PACKAGE_ROOT, writable: false },
      { path: path.dirname(process.execPath), writable: false },
    ],
    readOnlyFiles: r.fence.readable,
    hiddenFiles: r.fence.hidden,
    signalsFd: 3,
    seccompFd: 4,
    command: words,
  });
  return new Promise((resolve, reject) => {
    const child = spawn(r.bwrap, args, { stdio: ['inherit', 'inherit', 'inherit', 'pipe', 'pipe'], env: r.env });
    const signals = child.stdio[3] as Writable;
    // bwrap reads the filter to its end before it starts the command.
    const seccomp = child.stdio[4] as Writable;
    seccomp.on('error', () => {});
    seccomp.end(ttyFilterBytes());
    signals.on('error', () => {});
    const forward = (signal: NodeJS.Signals): void => {
      signals.write(`${signal}\n`);
    };
    for (const s of FORWARDED) process.on(s, forward);
    const cleanup = (): void => {
      for (const s of FORWARDED) process.off(s, forward);
      signals.destroy();
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      cleanup();
      reject(new CliError('command_failed', `cannot start bubblewrap (${r.bwrap}): ${err.code ?? err.message}`, 126));
    });
    child.once('exit', (code, signal) => {
      cleanup();
      if (code !== null) resolve(code);
      else resolve(128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
    });
  });
}
