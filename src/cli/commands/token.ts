/** `sluicectl token rotate`: replaces the proxy access token; running agents keep the old one until they re-read it. */
import type { Argv } from 'yargs';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { printResult } from '../print-result.js';

/** Registers `token rotate`. */
export function tokenCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('token', 'manage the proxy access token', (t) =>
    t
      .command(
        'rotate',
        'issue a new proxy access token (the old one stops working)',
        (r) => r.example('$0 token rotate && eval "$($0 env)"', 'new token, re-read into this shell'),
        action(async (args) => {
          printResult(args, await callDaemon(args, 'token.rotate'), () => [
            'proxy access token rotated.',
            'Agents must re-read `sluicectl env` (or be restarted under `sluicectl run`); the old token now gets 407.',
          ]);
        }),
      )
      .example('$0 token rotate', 'issue a new proxy access token')
      .demandCommand(1, 'token needs a subcommand: rotate'),
  );
}
