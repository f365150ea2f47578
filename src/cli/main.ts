#!/usr/bin/env node
/**
 * `sluicectl`: the scriptable client of sluiced. Every command is one JSON-RPC exchange on the daemon's
 * Unix socket (DESIGN §9). Exit codes: 0 ok, 1 the daemon refused, 2 bad usage, 3 daemon not running;
 * `--json` prints raw RPC results on stdout and errors as JSON on stderr.
 */
import { readFileSync } from 'node:fs';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { approvalCommand } from './commands/approval.js';
import { COMPLETION_SHELLS, COMPLETIONS_FLAG, completeWithNames, completionShell } from './completion.js';
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
import { watchCommand } from './commands/watch.js';
import type { GlobalArgs } from './daemon-call.js';
import { UsageError } from './exit-codes.js';
import { lastNumber, lastString } from './option-values.js';
import { reportError, setCommandPath } from './report-error.js';
import { commandPath, usageMessage } from './usage-messages.js';

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
function buildParser(argv: string[]): Argv<GlobalArgs> {
  let parser: Argv<GlobalArgs> = yargs(argv)
    .scriptName('sluicectl')
    .usage('$0 <command> [options]\n\nClient of sluiced, the local credential firewall for AI agents.')
    // Repeated options stay arrays so --host/--member can repeat; scalar options take their last value
    // through `coerce: lastString` / `lastNumber`. Words after `--` are kept apart for `run` and `doctor`.
    .parserConfiguration({ 'populate--': true })
    .option('socket', { type: 'string', global: true, requiresArg: true, coerce: lastString, describe: 'daemon socket (default: $SLUICE_SOCKET or $SLUICE_HOME/sluiced.sock)' })
    .option('json', { type: 'boolean', global: true, describe: 'print raw JSON results (errors as JSON on stderr)' })
    .option('timeout', { type: 'number', global: true, coerce: lastNumber, describe: 'per-call timeout in ms (default 30000)' });
  for (const register of COMMANDS) parser = register(parser);
  return parser
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
    });
}

async function main(): Promise<void> {
  const argv = hideBin(process.argv);
  const dashes = argv.indexOf('--');
  const json = (dashes === -1 ? argv : argv.slice(0, dashes)).includes('--json');
  const words = commandPath(argv);
  setCommandPath(words);
  if (words[0] === 'completion') {
    // `completion SHELL`: yargs takes the shell from $SHELL (set below), and the shell word itself is
    // dropped, or yargs would take it for a mistyped command.
    const at = argv.indexOf('completion');
    const shellWord = argv[at + 1] ?? '';
    if (!(COMPLETION_SHELLS as readonly string[]).includes(shellWord)) {
      process.exitCode = reportError(new UsageError(`completion needs a shell: sluicectl completion ${COMPLETION_SHELLS.join('|')}`), json);
      return;
    }
    process.env.SHELL = `/bin/${shellWord}`;
    argv.splice(at + 1, 1);
  } else {
    // yargs reads $SHELL when the parser is built to choose the answer format of a completion request.
    const shell = completionShell(argv, process.env);
    if (shell) process.env.SHELL = `/bin/${shell}`;
  }
  try {
    const parser = buildParser(argv);
    // A completion request parses half-typed lines: no strict checks, no error output, ever.
    if (argv.includes(COMPLETIONS_FLAG)) await parser.strict(false).fail(() => undefined).parseAsync();
    else await parser.parseAsync();
  } catch (err) {
    process.exitCode = reportError(err, json);
  }
}

await main();
