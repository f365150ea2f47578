/**
 * `sluicectl pool create|list|status|add-member|remove-member|rotate|reset|remove`. A pool is one phantom in front of ordered
 * member credentials; `rotate` parks the active member so the next healthy one takes over.
 */
import type { Argv } from 'yargs';
import type { PoolInfo } from '../../shared/protocol/events.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { formatUntil } from '../human-time.js';
import { UsageError } from '../exit-codes.js';
import { allValues, definedEntry, lastString, rotateBelowOption } from '../option-values.js';
import { formatTable } from '../output-table.js';
import { printResult } from '../print-result.js';

/** Registers the `pool` command group. */
export function poolCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command('pool', 'manage credential pools (one phantom, failover between members)', (p) =>
    p
      .command(
        'create <name>',
        'create a pool from existing credentials, in failover order',
        (c) =>
          c
            .positional('name', { type: 'string', demandOption: true, describe: 'pool name (not a credential name)' })
            .option('member', { type: 'string', demandOption: true, coerce: allValues, describe: 'member credential (repeatable, in order)' })
            .option('rotate-below', { type: 'string', coerce: lastString, describe: ROTATE_BELOW_HELP })
            .option('plan-limits-only', { type: 'boolean', describe: PLAN_LIMITS_HELP })
            .example('$0 pool create claude --member acct-a --member acct-b', 'prints the phantom to give the agent')
            .example('$0 pool create claude --member acct-a --member acct-b --rotate-below 20', 'move on before a member hits its rate limit'),
        action(async (args) => {
          const rotate = rotateBelowOption(args.rotateBelow);
          const pool = await callDaemon(args, 'pool.create', {
            name: args.name,
            members: args.member,
            ...definedEntry('rotate_below', rotate),
            ...definedEntry('plan_limits_only', args.planLimitsOnly),
          });
          printResult(args, pool, (r) => `created pool ${r.name}; phantom: ${r.phantom}${optionsText(r)}`);
        }),
      )
      .command(
        'update <name>',
        "change a pool's options (rotate before the limit, plan limits only); applies to the next request",
        (c) =>
          c
            .positional('name', { type: 'string', demandOption: true, describe: 'pool name' })
            .option('rotate-below', { type: 'string', coerce: lastString, describe: ROTATE_BELOW_HELP })
            .option('plan-limits-only', { type: 'boolean', describe: `${PLAN_LIMITS_HELP} (--no-plan-limits-only: off)` })
            .example('$0 pool update claude --rotate-below 20', 'move off a member below 20 % headroom')
            .example('$0 pool update claude --rotate-below off --no-plan-limits-only', 'both options off'),
        action(async (args) => {
          const rotate = rotateBelowOption(args.rotateBelow);
          if (rotate === undefined && args.planLimitsOnly === undefined) {
            throw new UsageError('pool update needs --rotate-below PCT|off, --plan-limits-only or --no-plan-limits-only');
          }
          const pool = await callDaemon(args, 'pool.update', {
            name: args.name,
            ...definedEntry('rotate_below', rotate),
            ...definedEntry('plan_limits_only', args.planLimitsOnly),
          });
          printResult(args, pool, (r) => `updated pool ${r.name}:${optionsText(r) || ' rotate-below off, plan-limits-only off'}`);
        }),
      )
      .command(
        'list',
        'list pools',
        (l) => l.example('$0 pool list', 'name, active member, members, phantom'),
        action(async (args) => {
          printResult(args, await callDaemon(args, 'pool.list'), (r) => poolListTable(r.pools));
        }),
      )
      .command(
        'status [name]',
        'members, active member, health and cooldowns',
        (s) => s.positional('name', { type: 'string', describe: 'one pool (default: all)' }).example('$0 pool status claude', 'one row per member'),
        action(async (args) => {
          const result = await callDaemon(args, 'pool.status', args.name === undefined ? {} : { name: args.name });
          printResult(args, result, (r) => poolStatusTable(r.pools, Date.now()));
        }),
      )
      .command(
        'rotate <name>',
        'park the active member so the next healthy one takes over',
        (r) =>
          r
            .positional('name', { type: 'string', demandOption: true, describe: 'pool name' })
            .example('$0 pool rotate claude', 'the next healthy member takes over'),
        action(async (args) => {
          const result = await callDaemon(args, 'pool.rotate', { name: args.name });
          printResult(args, result, (r) => `rotated ${r.pool.name}: ${r.from ?? '-'} -> ${r.to ?? '-'}`);
        }),
      )
      .command(
        'reset <name>',
        'clear every member cooldown',
        (r) =>
          r.positional('name', { type: 'string', demandOption: true, describe: 'pool name' }).example('$0 pool reset claude', 'every member healthy again'),
        action(async (args) => {
          const pool = await callDaemon(args, 'pool.reset', { name: args.name });
          printResult(args, pool, (r) => `reset ${r.name}; active: ${r.active ?? '-'}`);
        }),
      )
      .command(
        'add-member <pool> <cred>',
        "add a credential to a pool, after its last member; the pool's phantom stays the same",
        (a) =>
          a
            .positional('pool', { type: 'string', demandOption: true, describe: 'pool name' })
            .positional('cred', { type: 'string', demandOption: true, describe: 'credential to add (in no other pool, same kind as the members)' })
            .example('$0 pool add-member claude acct-c', 'acct-c becomes the last member of pool claude'),
        action(async (args) => {
          const pool = await callDaemon(args, 'pool.add_member', { name: args.pool, member: args.cred });
          printResult(args, pool, (r) => `added ${args.cred} to pool ${r.name}; members: ${r.members.map((m) => m.name).join(', ')} (phantom unchanged)`);
        }),
      )
      .command(
        'remove-member <pool> <cred>',
        "remove a credential from a pool (not its last member); the pool's phantom stays the same",
        (a) =>
          a
            .positional('pool', { type: 'string', demandOption: true, describe: 'pool name' })
            .positional('cred', { type: 'string', demandOption: true, describe: 'member credential to remove (the credential itself stays)' })
            .example('$0 pool remove-member claude acct-a', 'pool claude goes on with its other members'),
        action(async (args) => {
          const pool = await callDaemon(args, 'pool.remove_member', { name: args.pool, member: args.cred });
          printResult(args, pool, (r) => `removed ${args.cred} from pool ${r.name}; members: ${r.members.map((m) => m.name).join(', ')} (phantom unchanged)`);
        }),
      )
      .command(
        'remove <name>',
        'remove a pool (its members stay)',
        (r) =>
          r
            .positional('name', { type: 'string', demandOption: true, describe: 'pool name' })
            .example('$0 pool remove claude', 'agents holding its phantom stop working'),
        action(async (args) => {
          printResult(args, await callDaemon(args, 'pool.remove', { name: args.name }), (r) => `removed pool ${r.removed}`);
        }),
      )
      .example('$0 pool status', 'every pool: members, active one, cooldowns')
      .demandCommand(1, 'pool needs a subcommand: create, update, list, status, add-member, remove-member, rotate, reset or remove'),
  );
}

const ROTATE_BELOW_HELP = 'move off a member whose rate-limit headroom falls below PCT % (1-99), before it hits the limit; off to disable';
const PLAN_LIMITS_HELP = 'a member whose account moved to paid overage counts as exhausted: never used again until it resets';

/** ` rotate-below 20%, plan-limits-only` (empty when both options are off). */
function optionsText(p: PoolInfo): string {
  const parts: string[] = [];
  if (p.rotate_below !== undefined && p.rotate_below !== null) parts.push(`rotate-below ${p.rotate_below}%`);
  if (p.plan_limits_only) parts.push('plan-limits-only');
  return parts.length === 0 ? '' : ` ${parts.join(', ')}`;
}

/** The OPTIONS column: `rotate<20%`, `plan-only`, or `-`. */
function optionsCell(p: PoolInfo): string {
  const parts: string[] = [];
  if (p.rotate_below !== undefined && p.rotate_below !== null) parts.push(`rotate<${p.rotate_below}%`);
  if (p.plan_limits_only) parts.push('plan-only');
  return parts.length === 0 ? '-' : parts.join(',');
}

/** The `pool list` table. */
export function poolListTable(pools: PoolInfo[]): string[] {
  return formatTable(
    ['NAME', 'ACTIVE', 'MEMBERS', 'OPTIONS', 'PHANTOM'],
    pools.map((p) => [p.name, p.active, p.members.map((m) => m.name).join(','), optionsCell(p), p.phantom]),
    '(no pools)',
  );
}

/** The `pool status` table: one row per member, the active one marked with `*`; OPTIONS on each pool's first row. */
export function poolStatusTable(pools: PoolInfo[], now: number): string[] {
  return formatTable(
    ['POOL', 'MEMBER', 'ACTIVE', 'HEALTH', 'COOLDOWN', 'REASON', 'OPTIONS'],
    pools.flatMap((p) =>
      p.members.map((m, i) => [
        p.name,
        m.name,
        m.name === p.active ? '*' : '',
        m.healthy ? 'ok' : 'cooling',
        formatUntil(m.cooldown_until, now),
        m.reason,
        i === 0 ? optionsCell(p) : '',
      ]),
    ),
    '(no pools)',
  );
}
