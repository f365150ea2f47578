/**
 * `sluicectl limits get|set`. Values are checked with the same bound functions the daemon and TUI use, so
 * an out-of-range cap exits 2 with the reason and never reaches the daemon.
 */
import type { Argv } from 'yargs';
import type { LimitsInfo } from '../../shared/protocol/entities.js';
import { capProblem, globalCapProblem, queueTimeoutProblem } from '../../shared/protocol/limits.js';
import type { ParamsIn } from '../../shared/protocol/params.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { UsageError } from '../exit-codes.js';
import { boundMessage } from '../usage-messages.js';
import { capOrNone, definedEntry, intOption, lastNumber, lastString } from '../option-values.js';
import { formatTable } from '../output-table.js';
import { printResult } from '../print-result.js';

/** Registers `limits` (alone: the same as `limits get`), `limits get` and `limits set`. */
export function limitsCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'limits',
    'show or change concurrency caps (alone: show them)',
    (l) =>
      l
        .command(
          'get',
          'global cap and per-credential caps',
          (g) => g.example('$0 limits get --json', 'the limits.get result'),
          action(async (args) => {
            printResult(args, await callDaemon(args, 'limits.get'), renderLimits);
          }),
        )
        .command(
          'set',
          'change caps; applies to the next request',
          (s) =>
            s
              .option('global', { type: 'string', coerce: lastString, describe: 'global in-flight cap, or none for unlimited' })
              .option('cred', { type: 'string', coerce: lastString, describe: 'credential whose cap or queue timeout to set' })
              .option('max-concurrent', { type: 'number', coerce: lastNumber, describe: 'per-credential cap (1-256), needs --cred' })
              .option('queue-timeout-ms', { type: 'number', coerce: lastNumber, describe: 'per-credential queue wait, needs --cred' })
              .example('$0 limits set --global 32', 'at most 32 requests in flight in total')
              .example('$0 limits set --cred anthropic --max-concurrent 4', 'at most 4 for one credential'),
          action(async (args) => {
            const params = limitsParams(args);
            printResult(args, await callDaemon(args, 'limits.set', params), renderLimits);
          }),
        )
        .example('$0 limits', 'show the global cap and every credential cap')
        .example('$0 limits set --cred anthropic --max-concurrent 4', 'cap one credential'),
    action(async (args) => {
      printResult(args, await callDaemon(args, 'limits.get'), renderLimits);
    }),
  );
}

/** Builds and checks `limits.set` params from the options; throws a usage error naming the first problem. */
export function limitsParams(args: {
  global?: string | undefined;
  cred?: string | undefined;
  maxConcurrent?: number | undefined;
  queueTimeoutMs?: number | undefined;
}): ParamsIn<'limits.set'> {
  const global = capOrNone('global', args.global);
  const globalReason = global === undefined ? null : globalCapProblem(global);
  if (globalReason) throw new UsageError(boundMessage('--global', globalReason));
  const maxConcurrent = intOption('max-concurrent', args.maxConcurrent, capProblem);
  const queueTimeout = intOption('queue-timeout-ms', args.queueTimeoutMs, queueTimeoutProblem);
  if ((maxConcurrent !== undefined || queueTimeout !== undefined) && args.cred === undefined) {
    throw new UsageError('--max-concurrent and --queue-timeout-ms need --cred NAME');
  }
  if (args.cred !== undefined && maxConcurrent === undefined && queueTimeout === undefined) {
    throw new UsageError('--cred needs --max-concurrent or --queue-timeout-ms');
  }
  if (global === undefined && args.cred === undefined) {
    throw new UsageError('nothing to set: give --global N|none, or --cred NAME with --max-concurrent or --queue-timeout-ms');
  }
  return {
    ...definedEntry('global', global),
    ...definedEntry('cred', args.cred),
    ...definedEntry('max_concurrent', maxConcurrent),
    ...definedEntry('queue_timeout_ms', queueTimeout),
  };
}

/** Human lines for {@link LimitsInfo}. */
export function renderLimits(l: LimitsInfo): string[] {
  return [
    `global cap: ${l.global ?? 'unlimited'}`,
    ...formatTable(
      ['CREDENTIAL', 'IN-FLIGHT', 'QUEUED', 'QUEUE-TIMEOUT'],
      l.credentials.map((c) => [c.name, `${c.in_flight}/${c.max_concurrent}`, c.queued, `${c.queue_timeout_ms} ms`]),
      '(no credentials)',
    ),
  ];
}
