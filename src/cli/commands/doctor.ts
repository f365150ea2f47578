/**
 * `sluicectl doctor [-- CMD]`: checks that an environment really routes through sluice (proxy variables
 * point at this daemon with the current token, CA files include the sluice CA, NO_PROXY spares bound
 * hosts). Without CMD it checks the current shell; with CMD it checks the environment `sluicectl run`
 * would give CMD (it does not run CMD), plus what that kind of program needs (the fetch bootstrap for
 * Node, CURL_CA_BUNDLE for curl, GIT_SSL_CAINFO for git, REQUESTS_CA_BUNDLE for Python). Exits 1 when any
 * check fails. Without a daemon, "daemon not running" is one failed check among the others (still exit 1,
 * not 3): a doctor that stops at the first problem would hide the rest.
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import path from 'node:path';
import type { Argv } from 'yargs';
import { action } from '../command-action.js';
import { withClient, type GlobalArgs } from '../daemon-call.js';
import { RpcError } from '../../shared/rpc/client.js';
import { commandKind, runDoctorChecks, runOfflineChecks, type DoctorFacts } from '../doctor-checks.js';
import { EXIT } from '../exit-codes.js';
import { printResult } from '../print-result.js';
import { probeIsolation, type IsolationSupport } from '../isolation/isolation-probe.js';
import { agentEnvFor, commandWords } from './run.js';

/** Registers `doctor [-- CMD]`. */
export function doctorCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'doctor [cmd..]',
    'check that an environment goes through sluice',
    (d) =>
      d
        .positional('cmd', { type: 'string', array: true, describe: 'check the environment sluicectl run would give this command' })
        .example('$0 doctor', 'check this shell')
        .example('$0 doctor -- node agent.mjs', 'check what sluicectl run would give a Node script'),
    action(async (args) => {
      const words = commandWords(args as { cmd?: unknown; '--'?: unknown });
      const facts = await daemonFacts(args);
      // Without a daemon `run` could not give CMD anything, so its environment is checked as it is now.
      const env = words.length > 0 && facts ? agentEnvFor(process.env, facts.proxyEnv.vars) : process.env;
      const kind = words[0] ? commandKind(words[0], firstLine(which(words[0], env.PATH))) : undefined;
      const checks = facts ? runDoctorChecks(env, { ...facts, readText }, kind) : runOfflineChecks(env, readText, kind);
      const ok = checks.every((c) => c.ok);
      // Advisory: isolation is the recommended way to run an agent, but a shell without it is not broken.
      const isolation = isolationReport(probeIsolation(), words[0]);
      printResult(args, { ok, checks, isolation }, () => [
        ...(words.length > 0 ? [`environment sluicectl run would give ${words[0]}:`] : []),
        ...checks.map((c) => `${c.ok ? 'ok     ' : 'MISSING'}  ${c.detail}`),
        `note     ${isolation.detail}`,
      ]);
      if (!ok) process.exitCode = EXIT.daemonError;
    }),
  );
}

/** Whether `run --isolate` works here and, for a command, what it would give it. */
export function isolationReport(support: IsolationSupport, command: string | undefined): { available: boolean; detail: string } {
  if (!support.ok) return { available: false, detail: `run --isolate is not available here: ${support.reason}` };
  const what = command ? `run --isolate -- ${command} would give it` : 'run --isolate gives an agent';
  return {
    available: true,
    detail: `${what} (${support.version}): no network but the proxy (same HTTPS_PROXY address, relayed inside), sluice's state directory empty but for the CA files, the RPC socket and master key out of reach, its own pid namespace and /tmp; same uid, home and working directory (read-write), terminal, signals and exit code`,
  };
}

/** What the daemon reports, or null when no daemon answers (any other failure still propagates). */
async function daemonFacts(args: GlobalArgs): Promise<Omit<DoctorFacts, 'readText'> | null> {
  try {
    return await withClient(args, async (c) => ({
      status: await c.call('daemon.status', {}),
      proxyEnv: await c.call('proxy.env', {}),
      boundHosts: (await c.call('cred.list', {})).credentials.flatMap((cred) => cred.hosts),
    }));
  } catch (err) {
    if (err instanceof RpcError && err.code === 'daemon_unreachable') return null;
    throw err;
  }
}

function readText(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** The file `cmd` names, looked up on PATH when it has no slash; null when not found. */
function which(cmd: string, pathVar: string | undefined): string | null {
  if (cmd.includes('/')) return cmd;
  for (const dir of (pathVar ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, cmd);
    if (readFirstBytes(candidate) !== null) return candidate;
  }
  return null;
}

function readFirstBytes(file: string): Buffer | null {
  try {
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(256);
      const n = readSync(fd, buf, 0, buf.length, 0);
      return buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
}

/** The first line of a script (its `#!`), or null for a binary or an unreadable file. */
function firstLine(file: string | null): string | null {
  const head = file ? readFirstBytes(file) : null;
  if (!head || head[0] !== 0x23 /* # */) return null;
  return head.toString('utf8').split('\n')[0] ?? null;
}
