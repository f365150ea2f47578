/**
 * `sluicectl daemon start|stop`. Start is idempotent (an answering daemon is left alone, exit 0) and
 * hands over to `sluiced --detach`, which returns once the socket answers. Stop asks for a graceful
 * shutdown and returns only when the socket has stopped answering, or fails after ~10 s.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { RpcError } from '../../shared/rpc/client.js';
import { action } from '../command-action.js';
import { openClient, socketPathFor, type GlobalArgs } from '../daemon-call.js';
import { CliError, EXIT } from '../exit-codes.js';
import { printLines } from '../print-result.js';
import { daemonServiceCommands } from './daemon-service.js';

const STOP_WAIT_MS = 10_000;
const STOP_POLL_MS = 100;

/** Registers `daemon start` and `daemon stop`. */
export function daemonCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('daemon', 'start or stop sluiced', (d) =>
    d
      .command(
        'start',
        'start sluiced in the background (no-op when it is running)',
        (c) => c.example('$0 daemon start', 'returns once the socket answers'),
        action(startDaemon),
      )
      .command(
        'stop',
        'stop sluiced gracefully and wait until it is gone',
        (c) => c.example('$0 daemon stop', 'pending prompts are denied'),
        action(stopDaemon),
      )
      .command(daemonServiceCommands)
      .example('$0 daemon start', 'start sluiced in the background')
      .demandCommand(1, 'daemon needs a subcommand: start, stop, install or uninstall'),
  );
}

/** The pid of the daemon answering on the socket, or null when none answers. Other errors propagate. */
async function runningPid(args: GlobalArgs): Promise<number | null> {
  try {
    const client = await openClient(args);
    try {
      return (await client.call('daemon.status', {}, { timeoutMs: 2_000 })).pid;
    } finally {
      client.close();
    }
  } catch (err) {
    if (err instanceof RpcError && err.code === 'daemon_unreachable') return null;
    throw err;
  }
}

async function startDaemon(args: GlobalArgs): Promise<void> {
  const pid = await runningPid(args);
  if (pid !== null) {
    printLines(`sluiced is already running (pid ${pid})`);
    return;
  }
  const entry = fileURLToPath(new URL('../../daemon/main.js', import.meta.url));
  if (!existsSync(entry)) throw new CliError('daemon_missing', `cannot find the daemon at ${entry}; run \`npm run build\``);
  // The child inherits the environment; --socket is passed on so the daemon listens where we will look.
  const env = { ...process.env, ...(args.socket ? { SLUICE_SOCKET: socketPathFor(args) } : {}) };
  // stderr is captured, not inherited: a daemon that refuses to start says why in one `sluiced: …` line,
  // which becomes this command's own error (one line, or the --json error object).
  let stderr = '';
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, [entry, '--detach'], { stdio: ['ignore', 'inherit', 'pipe'], env });
    child.stderr!.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-8000);
    });
    child.once('error', reject);
    child.once('close', (exitCode, signal) => resolve(exitCode ?? (signal ? 128 : 1)));
  });
  if (code !== 0) {
    const why = stderr.trim().replace(/^sluiced: /, '');
    throw new CliError('daemon_start_failed', why ? `sluiced did not start: ${why}` : `sluiced did not start (exit ${code}); see its log in SLUICE_HOME`);
  }
  if (stderr.trim()) process.stderr.write(stderr);
}

async function stopDaemon(args: GlobalArgs): Promise<void> {
  try {
    const client = await openClient(args);
    try {
      await client.call('daemon.shutdown', {});
    } catch (err) {
      // The daemon may close the socket before its answer is flushed; that is the outcome we wanted.
      if (!(err instanceof RpcError && err.code === 'daemon_unreachable')) throw err;
    } finally {
      client.close();
    }
  } catch (err) {
    if (err instanceof RpcError && err.code === 'daemon_unreachable') {
      printLines('sluiced is not running');
      return;
    }
    throw err;
  }
  const deadline = Date.now() + STOP_WAIT_MS;
  while (Date.now() < deadline) {
    if ((await runningPid(args).catch(() => -1)) === null) {
      printLines('sluiced stopped');
      return;
    }
    await new Promise((r) => setTimeout(r, STOP_POLL_MS));
  }
  throw new CliError('daemon_still_running', `sluiced still answers after ${STOP_WAIT_MS / 1000} s`, EXIT.daemonError);
}
