#!/usr/bin/env node
/**
 * `sluicectl`: the scriptable client of sluiced. Every command is one JSON-RPC exchange on the daemon's
 * Unix socket (DESIGN §9). Exit codes: 0 ok, 1 the daemon refused, 2 bad usage, 3 daemon not running;
 * `--json` prints raw RPC results on stdout and errors as JSON on stderr.
 */
import { hideBin } from 'yargs/helpers';
import { COMPLETION_SHELLS, COMPLETIONS_FLAG, completionShell } from './completion.js';
import { UsageError } from './exit-codes.js';
import { buildParser } from './parser.js';
import { reportError, setCommandPath } from './report-error.js';
import { commandPath } from './usage-messages.js';

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
    if (argv.includes(COMPLETIONS_FLAG))
      await parser
        .strict(false)
        .fail(() => undefined)
        .parseAsync();
    else await parser.parseAsync();
  } catch (err) {
    process.exitCode = reportError(err, json);
  }
}

await main();
