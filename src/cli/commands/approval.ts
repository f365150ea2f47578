/**
 * `sluicectl approval list|allow|deny`. One answer resolves a whole coalesced prompt, so the output says
 * how many waiting requests it applied to. `--next` answers the oldest pending prompt; with none pending
 * it fails (exit 1) rather than doing nothing silently. `--always` also saves a rule.
 */
import type { Argv } from 'yargs';
import type { ApprovalDecision, ApprovalInfo } from '../../shared/protocol/entities.js';
import { action } from '../command-action.js';
import { withClient, type GlobalArgs } from '../daemon-call.js';
import { CliError, EXIT, UsageError } from '../exit-codes.js';
import { formatDuration, formatUntil, secondsSince } from '../human-time.js';
import { formatTable, truncate } from '../output-table.js';
import { printResult } from '../print-result.js';

type Answer = 'allow' | 'deny';

/** Registers the `approval` command group. */
export function approvalCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('approval', 'list and answer pending approval prompts', (a) =>
    a
      .command(
        'list',
        'pending prompts, oldest first, with their waiter counts',
        (l) => l.example('$0 approval list', 'id, host:port, first request, waiters, age, time left'),
        action(async (args) => {
          const result = await withClient(args, (c) => c.call('approval.list', {}));
          printResult(args, result, (r) => approvalTable(oldestFirst(r.approvals), Date.now()));
        }),
      )
      .command(answerCommand('allow'))
      .command(answerCommand('deny'))
      .example('$0 approval allow --next', 'allow the oldest pending prompt')
      .demandCommand(1, 'approval needs a subcommand: list, allow or deny'),
  );
}

function answerCommand(answer: Answer) {
  return {
    command: `${answer} [id]`,
    describe: `${answer} a pending prompt (every request waiting on it)`,
    builder: (b: Argv<GlobalArgs>) =>
      b
        .positional('id', { type: 'string', describe: 'approval id (see approval list)' })
        .option('next', { type: 'boolean', default: false, describe: 'answer the oldest pending prompt' })
        .option('always', { type: 'boolean', default: false, describe: `also save an ${answer} rule for this host:port` })
        .example(`$0 approval ${answer} --next`, `${answer} the oldest pending prompt`)
        .example(`$0 approval ${answer} ID --always`, `${answer} it and save a rule for its host:port`),
    handler: action(async (args: GlobalArgs & { id?: string | undefined; next: boolean; always: boolean }) => {
      if (args.next === (args.id !== undefined)) throw new UsageError(`give either an approval id or --next`);
      if (args.id !== undefined && args.id.trim() === '') throw new UsageError('the approval id is empty (see sluicectl approval list)');
      const decision = decisionFor(answer, args.always);
      const outcome = await withClient(args, async (client) => {
        const pending = oldestFirst((await client.call('approval.list', {})).approvals);
        const target = args.next ? pending[0] : pending.find((p) => p.id === args.id);
        if (args.next && !target) throw new CliError('nothing_pending', 'nothing pending', EXIT.daemonError);
        const id = target?.id ?? args.id!;
        const result = await client.call('approval.resolve', { id, decision });
        return { result, label: target ? `${target.host}:${target.port}` : id };
      });
      printResult(args, outcome.result, (r) => {
        const verb = `${args.always ? 'always ' : ''}${answer === 'allow' ? 'allowed' : 'denied'}`;
        const saved = r.saved ? `; saved rule ${r.saved.rule_id}${r.saved.replaced !== null ? `, replacing ask rule ${r.saved.replaced}` : ''}` : '';
        return `${verb} ${outcome.label} (applied to ${r.waiters} request${r.waiters === 1 ? '' : 's'})${saved}`;
      });
    }),
  };
}

/** Maps the CLI answer and `--always` onto the RPC decision. */
export function decisionFor(answer: Answer, always: boolean): ApprovalDecision {
  if (answer === 'allow') return always ? 'always_allow' : 'allow_once';
  return always ? 'always_deny' : 'deny';
}

/** Pending prompts ordered by arrival (the daemon's order breaks ties). */
export function oldestFirst(approvals: ApprovalInfo[]): ApprovalInfo[] {
  return approvals
    .map((a, i) => ({ a, i, t: Date.parse(a.created_at) }))
    .sort((x, y) => (x.t === y.t || Number.isNaN(x.t - y.t) ? x.i - y.i : x.t - y.t))
    .map((x) => x.a);
}

/** The `approval list` table. */
export function approvalTable(approvals: ApprovalInfo[], now: number): string[] {
  return formatTable(
    ['ID', 'DESTINATION', 'REQUEST', 'WAITERS', 'AGE', 'LEFT'],
    approvals.map((a) => [
      a.id,
      `${a.host}:${a.port}`,
      truncate(`${a.method} ${a.path}`, 48),
      a.waiters,
      formatDuration(secondsSince(a.created_at, now)),
      formatUntil(a.expires_at, now),
    ]),
    '(nothing pending)',
  );
}
