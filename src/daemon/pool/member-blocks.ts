/**
 * What keeps a pool member from serving, in one place for the member choice (pool-resolver.ts) and for what
 * `pool.status` reports: a cooldown (member-health.ts, a `plan_limit` one included) and a spent daily budget
 * (daily-budgets.ts). Both read the same sources, so the status can never call a member healthy that the
 * choice skips.
 */
import type { PoolRow } from '../store/pools-repo.js';
import type { DailyBudgets } from './daily-budgets.js';
import type { MemberHealth } from './member-health.js';
import type { MemberGate } from './pool-resolver.js';

/** `pool.status` reason of a member past its daily budget (also the `cred.failover` reason when the pool moves off it). */
export const DAILY_BUDGET = 'daily_budget';

/** See the module comment. */
export class MemberBlocks {
  constructor(
    private readonly health: MemberHealth,
    private readonly budgets: DailyBudgets | undefined,
  ) {}

  /**
   * Who may serve in `pool`: a member cooling or past its daily budget is blocked (until the cooldown ends or
   * local midnight); one past its budget, or out of plan allowance in a `--plan-limits-only` pool, is not
   * even a last resort.
   */
  gate(pool: PoolRow): MemberGate {
    const budgets = this.budgets;
    return {
      blockedUntil: (m) => {
        const cooling = this.health.get(m)?.until ?? 0;
        return budgets?.breach(m) ? Math.max(cooling, budgets.resetAt()) : cooling;
      },
      lastResort: (m) => !budgets?.breach(m) && !(pool.plan_limits_only && this.health.get(m)?.reason === 'plan_limit'),
    };
  }

  /**
   * Why, and until when, `member` may not serve (null: it may): the same two blocks as {@link gate}. Cooling →
   * its cooldown; past its daily budget → `daily_budget` until the next local midnight. When both hold,
   * `until` is the later end (the moment it may serve again) and `reason` the block that lasts that long; on
   * a tie the budget, which is what its 429s say.
   */
  blocked(member: string): { until: number; reason: string } | null {
    const c = this.health.get(member);
    if (!this.budgets?.breach(member)) return c;
    const refill = this.budgets.resetAt();
    return c && c.until > refill ? c : { until: refill, reason: DAILY_BUDGET };
  }
}
