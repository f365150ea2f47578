/**
 * `sluicectl audit tail|verify`. `verify` checks the hash chain and exits 1 when it is broken, so it can
 * gate a script or a cron job; `--json` keeps that exit code.
 */
import type { Argv } from 'yargs';
import type { AuditRow } from '../../shared/protocol/entities.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { EXIT } from '../exit-codes.js';
import { intOption, lastNumber } from '../option-values.js';
import { formatTable, truncate } from '../output-table.js';
import { printResult } from '../print-result.js';

/** Registers `audit tail` and `audit verify`. */
export function auditCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('audit', 'read and check the audit log', (a) =>
    a
      .command(
        'tail',
        'the last N audit rows',
        (t) => t.option('n', { type: 'number', default: 20, coerce: lastNumber, describe: 'how many rows (1-10000)' }),
        action(async (args) => {
          const n = intOption('n', args.n, (v) => (v >= 1 && v <= 10_000 ? null : 'must be between 1 and 10000'));
          printResult(args, await callDaemon(args, 'audit.tail', { n: n ?? 20 }), (r) => auditTable(r.rows));
        }),
      )
      .command(
        'verify',
        'check the hash chain; exit 1 when a row was altered',
        (v) => v,
        action(async (args) => {
          const result = await callDaemon(args, 'audit.verify');
          printResult(args, result, (r) =>
            r.ok
              ? `audit chain ok (${r.rows} rows)`
              : `audit chain BROKEN at row ${r.first_bad_id ?? '?'}: ${r.reason ?? 'hash mismatch'} (${r.rows} rows checked)`,
          );
          if (!result.ok) process.exitCode = EXIT.daemonError;
        }),
      )
      .demandCommand(1, 'audit needs a subcommand: tail or verify'),
  );
}

/** The `audit tail` table. */
export function auditTable(rows: AuditRow[]): string[] {
  return formatTable(
    ['ID', 'TIME', 'EVENT', 'VERDICT', 'REQUEST', 'STATUS', 'CREDENTIAL', 'DETAIL'],
    rows.map((r) => [
      r.id,
      r.ts,
      r.event,
      r.verdict,
      truncate(`${r.method ?? ''} ${r.host ?? ''}${r.port ? `:${r.port}` : ''}${r.path ?? ''}`.trim(), 60),
      r.status,
      r.credential,
      r.detail === null ? null : truncate(r.detail, 40),
    ]),
    '(no audit rows)',
  );
}
