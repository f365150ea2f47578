/**
 * `pool.status` must not call a member healthy when the pool's member choice would skip it: past its daily
 * budget (reason `daily_budget`, until the next local midnight) or out of plan allowance in a
 * `--plan-limits-only` pool (reason `plan_limit`, until its reset). Fake clock, fixed time zone.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DailyBudgets } from '../../../../src/daemon/pool/daily-budgets.js';
import { MemberHealth } from '../../../../src/daemon/pool/member-health.js';
import { PoolService } from '../../../../src/daemon/pool/pool-service.js';
import { BudgetsRepo } from '../../../../src/daemon/store/budgets-repo.js';
import type { UsageLedger } from '../../../../src/daemon/usage/usage-ledger.js';
import type { PoolInfo } from '../../../../src/shared/protocol/events.js';
import type { UsageTotals } from '../../../../src/shared/protocol/usage.js';
import { oauthWorld, type OAuthWorld } from '../oauth/oauth-setup.js';

const tzBefore = process.env.TZ;
beforeAll(() => {
  process.env.TZ = 'America/New_York';
});
afterAll(() => {
  if (tzBefore === undefined) delete process.env.TZ;
  else process.env.TZ = tzBefore;
});

/** 2026-01-15 22:30 in New York; its next local midnight is 2026-01-16T05:00Z (UTC midnight has passed). */
const NOW = Date.UTC(2026, 0, 16, 3, 30);
const NY_MIDNIGHT = '2026-01-16T05:00:00.000Z';

const totals = (p: Partial<UsageTotals>): UsageTotals => ({ requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, ...p });

class FakeLedger implements UsageLedger {
  readonly today = new Map<string, UsageTotals>();
  headroomOf() {
    return null;
  }
  todayOf(c: string): UsageTotals {
    return this.today.get(c) ?? totals({});
  }
}

let w: OAuthWorld;
afterEach(() => w?.close());

function world(members: string[]) {
  w = oauthWorld();
  w.clock.advance(NOW - w.clock.now());
  const ledger = new FakeLedger();
  for (const m of members)
    w.vault.add({ name: m, kind: 'api-key', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: `sk-ant-api03-REAL${m}xxxxxxxxxxxxxxxxxxxxxxxx` });
  const budgets = new DailyBudgets(new BudgetsRepo(w.db), ledger, w.clock);
  const health = new MemberHealth(w.clock);
  const pools = new PoolService(w.poolsRepo, health, w.vault, w.audit, w.bus, w.clock, w.log, () => {}, { ledger, budgets });
  const changed: PoolInfo[] = [];
  w.bus.subscribe((type, payload) => {
    if (type === 'pool.changed') changed.push((payload as { pool: PoolInfo }).pool);
  });
  return { ledger, budgets, health, pools, changed };
}

const member = (p: PoolInfo, name: string) => p.members.find((m) => m.name === name)!;

describe('pool.status of a member that may not serve', () => {
  it('past its daily budget: not healthy, reason daily_budget, cooldown_until the next local midnight; healthy again the next day', () => {
    const { ledger, budgets, pools } = world(['a', 'b']);
    pools.create('p', ['a', 'b']);
    budgets.set('a', { daily_requests: 2 });
    expect(member(pools.info(pools.get('p')), 'a')).toEqual({ name: 'a', healthy: true, cooldown_until: null, reason: null });
    ledger.today.set('a', totals({ requests: 2 }));
    const st = pools.info(pools.get('p'));
    expect(member(st, 'a')).toEqual({ name: 'a', healthy: false, cooldown_until: NY_MIDNIGHT, reason: 'daily_budget' });
    expect(member(st, 'b')).toEqual({ name: 'b', healthy: true, cooldown_until: null, reason: null });
    // What status says agrees with what the pool does.
    expect(st.active).toBe('b');
    expect(pools.activeMember(pools.get('p'))).toBe('b');
    // A token budget reads the same.
    budgets.set('b', { daily_tokens: 100 });
    ledger.today.set('b', totals({ input_tokens: 60, output_tokens: 40 }));
    expect(member(pools.info(pools.get('p')), 'b')).toMatchObject({ healthy: false, reason: 'daily_budget', cooldown_until: NY_MIDNIGHT });
    // After local midnight the ledger's day starts empty again: both may serve.
    w.clock.advance(Date.parse(NY_MIDNIGHT) - w.clock.now() + 1);
    ledger.today.clear();
    expect(pools.info(pools.get('p')).members.every((m) => m.healthy && m.reason === null && m.cooldown_until === null)).toBe(true);
  });

  it('cooling and past its budget: cooldown_until is whichever ends later, with that block as the reason', () => {
    const { ledger, budgets, health, pools } = world(['a', 'b']);
    pools.create('p', ['a', 'b']);
    budgets.set('a', { daily_requests: 1 });
    ledger.today.set('a', totals({ requests: 1 }));
    // A 60 s rate limit ends long before midnight: the budget is what keeps it out.
    health.cool('a', NOW + 60_000, 'rate_limited');
    expect(member(pools.info(pools.get('p')), 'a')).toMatchObject({ healthy: false, reason: 'daily_budget', cooldown_until: NY_MIDNIGHT });
    // An auth cooldown past midnight outlasts the budget.
    const later = Date.parse(NY_MIDNIGHT) + 3_600_000;
    health.cool('a', later, 'auth_failed');
    expect(member(pools.info(pools.get('p')), 'a')).toMatchObject({ healthy: false, reason: 'auth_failed', cooldown_until: new Date(later).toISOString() });
  });

  it('out of plan allowance in a --plan-limits-only pool: not healthy, reason plan_limit, until its reset', () => {
    const { health, pools } = world(['a', 'b']);
    pools.create('p', ['a', 'b'], { rotate_below: null, plan_limits_only: true });
    const reset = NOW + 3 * 3_600_000;
    pools.failover('p', 'a', 'plan_limit', reset);
    expect(health.get('a')?.reason).toBe('plan_limit');
    const st = pools.info(pools.get('p'));
    expect(member(st, 'a')).toEqual({ name: 'a', healthy: false, cooldown_until: new Date(reset).toISOString(), reason: 'plan_limit' });
    expect(st.active).toBe('b');
  });

  it('a budget found spent or changed publishes pool.changed with the new health (dashboards keep pool state from events)', () => {
    const { ledger, budgets, pools, changed } = world(['a']);
    budgets.onChange = (name) => pools.memberBudgetChanged(name);
    pools.create('p', ['a']);
    budgets.set('a', { daily_requests: 1 });
    ledger.today.set('a', totals({ requests: 1 }));
    changed.length = 0;
    pools.memberBudgetChanged('a');
    expect(member(changed.at(-1)!, 'a')).toMatchObject({ healthy: false, reason: 'daily_budget' });
    // Raised: it may serve again, and the event says so at once.
    budgets.set('a', { daily_requests: 5 });
    expect(member(changed.at(-1)!, 'a')).toEqual({ name: 'a', healthy: true, cooldown_until: null, reason: null });
    // A credential outside any pool publishes nothing.
    w.vault.add({ name: 'solo', kind: 'api-key', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: 'sk-ant-api03-REALsoloxxxxxxxxxxxxxxxxxxxxxxxx' });
    const n = changed.length;
    pools.memberBudgetChanged('solo');
    expect(changed.length).toBe(n);
  });
});
