/**
 * `sluicectl audit tail|verify`. `tail` asks the daemon for the last N rows that match its filters (the
 * daemon filters, so `-n` counts matching rows) and fits them to 100 columns in local time. `verify` checks
 * the keyed chain and its signed head and exits 1 when anything is wrong, so it can gate a script or a cron
 * job; `--json` keeps that exit code.
 */
import type { Argv } from 'yargs';
import { sinceMs } from '../../shared/protocol/audit.js';
import type { AuditRow } from '../../shared/protocol/entities.js';
import { auditTailLines, verifyLines } from '../audit-render.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { EXIT, UsageError } from '../exit-codes.js';
import { definedEntry, intOption, lastNumber, lastString } from '../option-values.js';
import { printResult } from '../print-result.js';

/** Registers `audit tail` and `audit verify`. */
export function auditCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('audit', 'read and check the audit log', (a) =>
    a
      .command(
        'tail',
        'the last N audit rows (matching the filters), oldest first',
        (t) =>
          t
            .option('n', { type: 'number', default: 20, coerce: lastNumber, describe: 'how many matching rows (1-10000)' })
            .option('utc', { type: 'boolean', default: false, describe: 'show times in UTC (default: local time)' })
            .option('cred', { type: 'string', coerce: lastString, describe: 'only rows for this credential or pool' })
            .option('host', { type: 'string', coerce: lastString, describe: 'only rows for this host or host glob (*.openai.com)' })
            .option('agent', {
              type: 'string',
              coerce: lastString,
              describe: 'only rows of this agent (named with `run --name`): today its start and stop rows; request rows once they carry an agent',
            })
            .option('event', { type: 'string', coerce: lastString, describe: 'only rows of this event (request, phantom_leak, cred_failover, …)' })
            .option('since', { type: 'string', coerce: lastString, describe: 'only rows from the last 10m, 2h, 1d, …' })
            .example('$0 audit tail -n 50 --cred work --since 2h', 'the last 50 rows for credential "work" in the last two hours')
            .example("$0 audit tail --host '*.openai.com' --event request --utc", 'OpenAI requests, times in UTC')
            .example('$0 audit tail --json | jq .rows[].path', 'rows as JSON (snake_case fields, as the RPC returns them)'),
        action(async (args) => {
          const n = intOption('n', args.n, (v) => (v >= 1 && v <= 10_000 ? null : 'must be between 1 and 10000'));
          if (args.since !== undefined && sinceMs(args.since) === null)
            throw new UsageError(`--since must be a whole number and a unit (s, m, h, d), e.g. 10m, 2h, 1d; got ${JSON.stringify(args.since)}`);
          for (const opt of ['cred', 'host', 'agent', 'event'] as const) {
            if (args[opt] !== undefined && args[opt].trim() === '') throw new UsageError(`--${opt} needs a value`);
          }
          const result = await callDaemon(args, 'audit.tail', {
            n: n ?? 20,
            ...definedEntry('cred', args.cred),
            ...definedEntry('host', args.host),
            ...definedEntry('agent', args.agent),
            ...definedEntry('event', args.event),
            ...definedEntry('since', args.since?.trim()),
          });
          printResult(args, result, (r) => auditTable(r.rows, args.utc));
        }),
      )
      .command(
        'verify',
        'check the keyed hash chain and its signed head; exit 1 when a row was edited, removed or re-hashed',
        (v) => v.example('$0 audit verify || echo "audit log tampered with"', 'gate a script on an intact log'),
        action(async (args) => {
          const result = await callDaemon(args, 'audit.verify');
          printResult(args, result, (r) => verifyLines(r));
          if (!result.ok) process.exitCode = EXIT.daemonError;
        }),
      )
      .demandCommand(1, 'audit needs a subcommand: tail or verify'),
  );
}

/** The `audit tail` table (100 columns; local time unless `utc`). */
export function auditTable(rows: AuditRow[], utc = false): string[] {
  return auditTailLines(rows, { utc });
}
