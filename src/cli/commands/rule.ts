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
import { HTTP_METHODS, matchesEverything, ruleMethod, ruleTarget } from '../rule-target.js';

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
            .positional('verdict', { choices: VERDICTS, demandOption: true, describe: 'allow (no prompt), deny (refuse) or ask (prompt)' })
            .positional('host', {
              type: 'string',
              demandOption: true,
              describe: 'host glob, e.g. *.openai.com (host:port and https:// URLs are read as host + --port)',
            })
            .option('port', { type: 'number', coerce: lastNumber, describe: 'only this port (1-65535; default: any)' })
            .option('method', { type: 'string', coerce: lastString, describe: `only this HTTP method: ${HTTP_METHODS.join(', ')}` })
            .option('path', { type: 'string', coerce: lastString, describe: 'path glob, starting with /' })
            .option('coalesce', { type: 'boolean', default: true, describe: 'fold concurrent asks into one prompt (--no-coalesce: one per request)' })
            .option('yes', { type: 'boolean', default: false, describe: "confirm a rule that allows every host ('*'), which turns every prompt off" })
            .example('$0 rule add allow api.anthropic.com', 'no prompt for Anthropic')
            .example("$0 rule add ask api.openai.com --method POST --path '/v1/*' --no-coalesce", 'one prompt per POST'),
        action(async (args) => {
          const port = intOption('port', args.port, (p) => (p >= 1 && p <= 65535 ? null : 'must be between 1 and 65535'));
          const target = ruleTarget(args.verdict, args.host, port);
          if (args.verdict === 'allow' && matchesEverything(target.host) && !args.yes) {
            throw new UsageError(`allow '${target.host}' lets every destination through without a prompt; add --yes if that is what you want`);
          }
          const rule = await callDaemon(args, 'rule.add', {
            verdict: args.verdict,
            host: target.host,
            ...definedEntry('port', target.port),
            ...definedEntry('method', ruleMethod(args.method)),
            ...definedEntry('path', args.path),
            coalesce: args.coalesce,
          });
          printResult(args, rule, (x) => `${target.readAs ? `read ${args.host} as ${target.readAs}\n` : ''}added rule ${x.id}: ${describeRule(x)}`);
        }),
      )
      .command(
        'list',
        'list rules',
        (l) => l.example('$0 rule list', 'id, verdict, host, port, method, path'),
        action(async (args) => {
          printResult(args, await callDaemon(args, 'rule.list'), (r) => ruleTable(r.rules));
        }),
      )
      .command(
        'remove <id>',
        'remove a rule by id',
        (d) => d.positional('id', { type: 'string', demandOption: true, describe: 'rule id (see rule list)' }).example('$0 rule remove 3', 'remove rule 3'),
        action(async (args) => {
          if (!/^\d+$/.test(args.id) || Number(args.id) < 1) throw new UsageError('a rule id is a positive whole number');
          const result = await callDaemon(args, 'rule.remove', { id: Number(args.id) });
          printResult(args, result, (x) => `removed rule ${x.removed}`);
        }),
      )
      .example('$0 rule add allow api.anthropic.com', 'no prompt for this host')
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
