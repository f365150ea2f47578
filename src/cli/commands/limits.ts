/**
 * `sluicectl limits get|set`. Values are checked with the same bound functions the daemon and TUI use, so
 * an out-of-range cap exits 2 with the reason and never reaches the daemon.
 */
import type { Argv } from 'yargs';
import type { LimitsInfo } from '../../shared/protocol/entities.js';
import { capProblem, dailyBudgetProblem, globalCapProblem, queueTimeoutProblem } from '../../shared/protocol/limits.js';
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
              .option('daily-tokens', {
                type: 'string',
                coerce: lastString,
                describe: 'input+output tokens per local day, then 429 until midnight (a pool skips the member); none to clear; needs --cred',
              })
              .option('daily-requests', { type: 'string', coerce: lastString, describe: 'requests per local day; none to clear; needs --cred' })
              .example('$0 limits set --global 32', 'at most 32 requests in flight in total')
              .example('$0 limits set --cred anthropic --daily-tokens 2000000', 'at most 2M tokens a day on one credential')
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
  dailyTokens?: string | undefined;
  dailyRequests?: string | undefined;
}): ParamsIn<'limits.set'> {
  const global = capOrNone('global', args.global);
  const globalReason = global === undefined ? null : globalCapProblem(global);
  if (globalReason) throw new UsageError(boundMessage('--global', globalReason));
  const maxConcurrent = intOption('max-concurrent', args.maxConcurrent, capProblem);
  const queueTimeout = intOption('queue-timeout-ms', args.queueTimeoutMs, queueTimeoutProblem);
  const dailyTokens = budgetOption('daily-tokens', 'daily_tokens', args.dailyTokens);
  const dailyRequests = budgetOption('daily-requests', 'daily_requests', args.dailyRequests);
  const perCred = maxConcurrent !== undefined || queueTimeout !== undefined || dailyTokens !== undefined || dailyRequests !== undefined;
  if (perCred && args.cred === undefined) {
    throw new UsageError('--max-concurrent, --queue-timeout-ms, --daily-tokens and --daily-requests need --cred NAME');
  }
  if (args.cred !== undefined && !perCred) {
    throw new UsageError('--cred needs --max-concurrent, --queue-timeout-ms, --daily-tokens or --daily-requests');
  }
  if (global === undefined && args.cred === undefined) {
    throw new UsageError('nothing to set: give --global N|none, or --cred NAME with --max-concurrent, --queue-timeout-ms, --daily-tokens or --daily-requests');
  }
  return {
    ...definedEntry('global', global),
    ...definedEntry('cred', args.cred),
    ...definedEntry('max_concurrent', maxConcurrent),
    ...definedEntry('queue_timeout_ms', queueTimeout),
    ...definedEntry('daily_tokens', dailyTokens),
    ...definedEntry('daily_requests', dailyRequests),
  };
}

/** `--daily-tokens N|none` and `--daily-requests N|none`: a whole number in bounds, null for none, undefined when absent. */
function budgetOption(option: string, what: 'daily_tokens' | 'daily_requests', value: string | undefined): number | null | undefined {
  if (value === undefined) return undefined;
  const text = String(value).trim().toLowerCase();
  if (text === 'none') return null;
  if (!/^-?\d+$/.test(text)) throw new UsageError(`--${option} must be a whole number or "none"`);
  const reason = dailyBudgetProblem(what, Number(text));
  if (reason) throw new UsageError(boundMessage(`--${option}`, reason));
  return Number(text);
}

/** Human lines for {@link LimitsInfo}. */
export function renderLimits(l: LimitsInfo): string[] {
  return [
    `global cap: ${l.global ?? 'unlimited'}`,
    ...formatTable(
      ['CREDENTIAL', 'IN-FLIGHT', 'QUEUED', 'QUEUE-TIMEOUT', 'DAILY-TOKENS', 'DAILY-REQUESTS'],
      l.credentials.map((c) => [
        c.name,
        `${c.in_flight}/${c.max_concurrent}`,
        c.queued,
        `${c.queue_timeout_ms} ms`,
        c.daily_tokens ?? '-',
        c.daily_requests ?? '-',
      ]),
      '(no credentials)',
    ),
  ];
}
