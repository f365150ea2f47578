/**
 * `sluicectl doctor [-- CMD]`: checks that an environment really routes through sluice (proxy variables
 * point at this daemon with the current token, CA files include the sluice CA, NO_PROXY spares bound
 * hosts). Without CMD it checks the current shell; with CMD it checks the environment `sluicectl run`
 * would give CMD (it does not run CMD). Exits 1 when any check fails.
 */
import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { action } from '../command-action.js';
import { withClient, type GlobalArgs } from '../daemon-call.js';
import { runDoctorChecks } from '../doctor-checks.js';
import { EXIT } from '../exit-codes.js';
import { printResult } from '../print-result.js';
import { commandWords } from './run.js';

/** Registers `doctor [-- CMD]`. */
export function doctorCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'doctor [cmd..]',
    'check that an environment goes through sluice',
    (d) => d.positional('cmd', { type: 'string', array: true, describe: 'check the environment sluicectl run would give this command' }),
    action(async (args) => {
      const words = commandWords(args as { cmd?: unknown; '--'?: unknown });
      const facts = await withClient(args, async (c) => ({
        status: await c.call('daemon.status', {}),
        proxyEnv: await c.call('proxy.env', {}),
        boundHosts: (await c.call('cred.list', {})).credentials.flatMap((cred) => cred.hosts),
      }));
      const env = words.length > 0 ? { ...process.env, ...facts.proxyEnv.vars } : process.env;
      const checks = runDoctorChecks(env, { ...facts, readText });
      const ok = checks.every((c) => c.ok);
      printResult(args, { ok, checks }, () => [
        ...(words.length > 0 ? [`environment sluicectl run would give ${words[0]}:`] : []),
        ...checks.map((c) => `${c.ok ? 'ok     ' : 'MISSING'}  ${c.detail}`),
      ]);
      if (!ok) process.exitCode = EXIT.daemonError;
    }),
  );
}

function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
