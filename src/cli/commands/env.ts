/**
 * `sluicectl env`: the variables an agent needs to go through the proxy, as lines to `eval` (sh or fish)
 * or, with `--json`, the `vars` object (plus NO_PROXY). They carry the proxy access token, which is what lets a process
 * use the proxy; credential secrets never appear here.
 */
import type { Argv } from 'yargs';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { SHELL_KINDS, envLines, type ShellKind } from '../env-lines.js';
import { withNoProxy } from '../no-proxy.js';
import { printLines } from '../print-result.js';

/** Registers `env [--shell bash|zsh|sh|fish]`. */
export function envCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'env',
    'print proxy environment lines: eval "$(sluicectl env)"',
    (c) =>
      c
        .option('shell', {
          describe: 'shell syntax of the lines',
          choices: SHELL_KINDS,
          requiresArg: true,
          default: 'sh' as ShellKind,
        })
        .example('eval "$($0 env)"', 'bash, zsh or sh: send this shell through sluice')
        .example('$0 env --shell fish | source', 'fish')
        .example('$0 env --json', 'the variables as a JSON object'),
    action(async (args) => {
      // NO_PROXY merges the evaluating shell's own entries with loopback, like `run` does.
      const vars = withNoProxy((await callDaemon(args, 'proxy.env')).vars, process.env);
      if (args.json) {
        process.stdout.write(JSON.stringify(vars, null, 2) + '\n');
        return;
      }
      printLines(envLines(vars, args.shell));
    }),
  );
}
