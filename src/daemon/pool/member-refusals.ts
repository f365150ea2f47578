/**
 * The 429s for a credential that may not be sent a request now (issue 24): past its daily budget, or every
 * member of a `--plan-limits-only` pool out of plan allowance. Pure; messages carry names and numbers only.
 */
import type { BudgetBreach } from './daily-budgets.js';

/** A member the pool may not send to now, as a refusal: the proxy answers it with a provider-shaped 429. */
export interface MemberRefusal {
  status: 429;
  code: 'daily_budget' | 'plan_limits_exhausted';
  message: string;
  retryAfterS: number;
}

/** `credential` (serving `poolName`, when pooled) is past a daily budget: retry at the next local midnight. */
export function dailyBudgetRefusal(credential: string, poolName: string | null, breach: BudgetBreach, retryAfterS: number): MemberRefusal {
  const what = breach.kind === 'tokens' ? 'token' : 'request';
  const who = poolName ? `every member of pool ${poolName} is past its daily budget (${credential}: ` : `credential ${credential} is past its daily budget (`;
  return {
    status: 429,
    code: 'daily_budget',
    message: `sluice: ${who}${breach.used}/${breach.limit} ${what}s today); it refills at local midnight.`,
    retryAfterS,
  };
}

/** Every member of `poolName` is out of plan allowance; retry when the first comes back (`backAt`, epoch ms). */
export function planLimitsRefusal(poolName: string, backAt: number, now: number): MemberRefusal {
  return {
    status: 429,
    code: 'plan_limits_exhausted',
    message: `sluice: every member of pool ${poolName} is out of plan allowance; not spilling into paid overage (--plan-limits-only).`,
    retryAfterS: Math.max(1, Math.ceil((backAt - now) / 1000)),
  };
}
