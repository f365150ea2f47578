/**
 * The sluicectl command line: every command registered on one yargs parser. Kept apart from main.ts
 * (which runs it) so the help texts can be checked without starting a process per command.
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { agentsCommand } from './commands/agents.js';
import { approvalCommand } from './commands/approval.js';
import { COMPLETION_SHELLS, completeWithNames } from './completion.js';
import { auditCommand } from './commands/audit.js';
import { credCommand } from './commands/cred.js';
import { daemonCommand } from './commands/daemon.js';
import { doctorCommand } from './commands/doctor.js';
import { envCommand } from './commands/env.js';
import { limitsCommand } from './commands/limits.js';
import { poolCommand } from './commands/pool.js';
import { rpcCommand } from './commands/rpc.js';
import { ruleCommand } from './commands/rule.js';
import { runCommand } from './commands/run.js';
import { statsCommand } from './commands/stats.js';
import { statusCommand } from './commands/status.js';
import { tokenCommand } from './commands/token.js';
import { usageCommand } from './commands/usage.js';
import { watchCommand } from './commands/watch.js';
import type { GlobalArgs } from './daemon-call.js';
import { UsageError } from './exit-codes.js';
import { lastNumber, lastString } from './option-values.js';
import { usageMessage } from './usage-messages.js';

const COMMANDS: ((y: Argv<GlobalArgs>) => Argv<GlobalArgs>)[] = [
  statusCommand,
  daemonCommand,
  envCommand,
  runCommand,
  credCommand,
  poolCommand,
  ruleCommand,
  approvalCommand,
  limitsCommand,
  statsCommand,
  usageCommand,
  agentsCommand,
  tokenCommand,
  auditCommand,
  watchCommand,
  rpcCommand,
  doctorCommand,
];

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Builds the sluicectl parser over `argv` (already stripped of node and script paths). */
export function buildParser(argv: string[]): Argv<GlobalArgs> {
  let parser: Argv<GlobalArgs> = yargs(argv)
    .scriptName('sluicectl')
    .usage('$0 <command> [options]\n\nClient of sluiced, the local credential firewall for AI agents.')
    // Repeated options stay arrays so --host/--member can repeat; scalar options take their last value
    // through `coerce: lastString` / `lastNumber`. Words after `--` are kept apart for `run` and `doctor`.
    .parserConfiguration({ 'populate--': true })
    .option('socket', {
      type: 'string',
      global: true,
      requiresArg: true,
      coerce: lastString,
      describe: 'daemon socket (default: $SLUICE_SOCKET or $SLUICE_HOME/sluiced.sock)',
    })
    .option('json', { type: 'boolean', global: true, describe: 'print raw JSON results (errors as JSON on stderr)' })
    .option('timeout', { type: 'number', global: true, coerce: lastNumber, describe: 'per-call timeout in ms (default 30000)' });
  for (const register of COMMANDS) parser = register(parser);
  return (
    parser
      // yargs writes the script and answers completion requests itself; main() checks the shell word.
      .completion('completion', `print a shell completion script: completion ${COMPLETION_SHELLS.join('|')}`, completeWithNames('sluicectl'))
      .example('eval "$($0 env)"', 'send this shell through sluice')
      .example('$0 run -- claude', 'run an agent through sluice')
      .example('$0 pool add-member claude acct-c --help', 'every command has its own help')
      .strict()
      .demandCommand(1, 'give a command')
      .recommendCommands()
      .help()
      .alias('h', 'help')
      .version(packageVersion())
      .wrap(Math.min(110, process.stdout.columns || 100))
      .fail((message, err) => {
        // Usage problems become one line and exit 2 instead of yargs' full help dump.
        // yargs' own validation errors (YError, e.g. a missing option value) are usage errors too.
        if (err && err.name !== 'YError') throw err;
        throw new UsageError(/^Did you mean/.test(message) ? `unknown command. ${message}` : usageMessage(message, argv));
      })
  );
}
