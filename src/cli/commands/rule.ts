/**
 * `sluicectl rule add|list|remove`. Rules map a destination (host glob, optional port, method, path glob)
 * to allow / deny / ask; `--no-coalesce` makes an ask rule prompt once per request instead of per host.
 */
import type { Argv } from 'yargs';
import type { RuleInfo, Verdict } from '../../shared/protocol/entities.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { UsageError } from '../exit-codes.js';
import { definedEntry, intOption, lastNumber, lastString } from '../option-values.js';
import { formatTable } from '../output-table.js';
import { printResult } from '../print-result.js';

const VERDICTS: readonly Verdict[] = ['allow', 'deny', 'ask'];

/** Registers the `rule` command group. */
export function ruleCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('rule', 'manage policy rules', (r) =>
    r
      .command(
        'add <verdict> <host>',
        'add a rule: allow|deny|ask HOSTGLOB',
        (a) =>
          a
            .positional('verdict', { choices: VERDICTS, demandOption: true })
            .positional('host', { type: 'string', demandOption: true, describe: 'host glob, e.g. *.openai.com' })
            .option('port', { type: 'number', coerce: lastNumber })
            .option('method', { type: 'string', coerce: lastString })
            .option('path', { type: 'string', coerce: lastString, describe: 'path glob, starting with /' })
            .option('coalesce', { type: 'boolean', default: true, describe: 'fold concurrent asks into one prompt (--no-coalesce: one per request)' }),
        action(async (args) => {
          const port = intOption('port', args.port, (p) => (p >= 1 && p <= 65535 ? null : 'must be between 1 and 65535'));
          const rule = await callDaemon(args, 'rule.add', {
            verdict: args.verdict,
            host: args.host,
            ...definedEntry('port', port),
            ...definedEntry('method', args.method?.toUpperCase()),
            ...definedEntry('path', args.path),
            coalesce: args.coalesce,
          });
          printResult(args, rule, (x) => `added rule ${x.id}: ${describeRule(x)}`);
        }),
      )
      .command(
        'list',
        'list rules',
        (l) => l,
        action(async (args) => {
          printResult(args, await callDaemon(args, 'rule.list'), (r) => ruleTable(r.rules));
        }),
      )
      .command(
        'remove <id>',
        'remove a rule by id',
        (d) => d.positional('id', { type: 'string', demandOption: true }),
        action(async (args) => {
          if (!/^\d+$/.test(args.id) || Number(args.id) < 1) throw new UsageError('a rule id is a positive whole number');
          const result = await callDaemon(args, 'rule.remove', { id: Number(args.id) });
          printResult(args, result, (x) => `removed rule ${x.removed}`);
        }),
      )
      .demandCommand(1, 'rule needs a subcommand: add, list or remove'),
  );
}

/** One-line description such as `ask api.example.com:443 POST /v1/* (one prompt per request)`. */
export function describeRule(r: RuleInfo): string {
  const where = r.port === null ? r.host : `${r.host}:${r.port}`;
  const parts = [r.verdict, where, r.method ?? '', r.path ?? ''].filter((p) => p !== '');
  return parts.join(' ') + (r.coalesce ? '' : ' (one prompt per request)');
}

/** The `rule list` table. */
export function ruleTable(rules: RuleInfo[]): string[] {
  return formatTable(
    ['ID', 'VERDICT', 'HOST', 'PORT', 'METHOD', 'PATH', 'COALESCE', 'SOURCE'],
    rules.map((r) => [r.id, r.verdict, r.host, r.port, r.method, r.path, r.coalesce, r.source]),
    '(no rules)',
  );
}
