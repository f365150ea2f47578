/**
 * Issue 24, daily budgets: the budget check against a fake usage ledger, the next LOCAL midnight (TZ set in
 * this test process; vitest runs each file in its own forked process), the once-a-day report, and a pool
 * skipping a member past its budget like a cooling one (429 only when every member is out).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { breachOf, DailyBudgets, nextLocalMidnight, type BudgetStore } from '../../../../src/daemon/pool/daily-budgets.js';
import { MemberHealth } from '../../../../src/daemon/pool/member-health.js';
import { PoolService } from '../../../../src/daemon/pool/pool-service.js';
import { BudgetsRepo } from '../../../../src/daemon/store/budgets-repo.js';
import type { UsageLedger } from '../../../../src/daemon/usage/usage-ledger.js';
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

class MapStore implements BudgetStore {
  readonly rows = new Map<string, { daily_tokens: number | null; daily_requests: number | null }>();
  list() {
    return [...this.rows].map(([name, b]) => ({ name, ...b }));
  }
  set(name: string, t: number | null, r: number | null) {
    this.rows.set(name, { daily_tokens: t, daily_requests: r });
    return true;
  }
}

describe('next local midnight', () => {
  it('is the next midnight in the process time zone, not UTC (New York: 05:00Z in winter, 04:00Z in summer)', () => {
    // 2026-01-15 22:30 in New York = 2026-01-16 03:30Z; UTC midnight has passed but NY's has not.
    expect(new Date(nextLocalMidnight(Date.UTC(2026, 0, 16, 3, 30))).toISOString()).toBe('2026-01-16T05:00:00.000Z');
    expect(new Date(nextLocalMidnight(Date.UTC(2026, 6, 1, 12, 0))).toISOString()).toBe('2026-07-02T04:00:00.000Z');
    // Exactly at midnight: the NEXT one (a day later).
    expect(new Date(nextLocalMidnight(Date.UTC(2026, 0, 16, 5, 0))).toISOString()).toBe('2026-01-17T05:00:00.000Z');
  });

  it('across a DST change the local day is 23 h long', () => {
    // 2026-03-08 is the spring-forward day in New York: 00:00 EST (05:00Z) to 00:00 EDT next day (04:00Z).
    expect(nextLocalMidnight(Date.UTC(2026, 2, 8, 5, 0, 0, 1)) - Date.UTC(2026, 2, 8, 5, 0)).toBe(23 * 3_600_000);
  });
});

describe('budget checks', () => {
  it('tokens are input + output (cached ones are part of input); requests count separately; at the limit is past it', () => {
    const b = { daily_tokens: 1000, daily_requests: 3 };
    expect(breachOf(b, totals({ input_tokens: 600, output_tokens: 399, cached_tokens: 500, requests: 2 }))).toBeNull();
    expect(breachOf(b, totals({ input_tokens: 600, output_tokens: 400 }))).toEqual({ kind: 'tokens', used: 1000, limit: 1000 });
    expect(breachOf(b, totals({ requests: 3 }))).toEqual({ kind: 'requests', used: 3, limit: 3 });
    expect(breachOf({ daily_tokens: null, daily_requests: null }, totals({ requests: 1e9, input_tokens: 1e12 }))).toBeNull();
  });

  it('check: retry-after is the seconds to the next local midnight; reported once per credential and local day', () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 16, 3, 30)); // 22:30 in New York
    const ledger = new FakeLedger();
    const store = new MapStore();
    const reports: string[] = [];
    const budgets = new DailyBudgets(store, ledger, clock, (n, b, until) =>
      reports.push(`${n}:${b.kind}:${b.used}/${b.limit}:${new Date(until).toISOString()}`),
    );
    budgets.set('a', { daily_requests: 2 });
    ledger.today.set('a', totals({ requests: 1 }));
    expect(budgets.check('a')).toBeNull();
    ledger.today.set('a', totals({ requests: 2 }));
    expect(budgets.check('a')).toEqual({ breach: { kind: 'requests', used: 2, limit: 2 }, until: Date.UTC(2026, 0, 16, 5, 0), retryAfterS: 5400 });
    budgets.check('a');
    budgets.check('a');
    expect(reports).toEqual(['a:requests:2/2:2026-01-16T05:00:00.000Z']);
    // The next local day: counts reset in the ledger; spent again → reported again.
    clock.advance(2 * 3_600_000);
    ledger.today.set('a', totals({ requests: 2 }));
    budgets.check('a');
    expect(reports).toHaveLength(2);
    // Cleared: no refusal at all.
    budgets.set('a', { daily_requests: null });
    expect(budgets.check('a')).toBeNull();
    expect(store.rows.get('a')).toEqual({ daily_tokens: null, daily_requests: null });
  });

  it('requests in flight (sent, not yet counted by the ledger) count against the request budget, not the token one', () => {
    const ledger = new FakeLedger();
    let inFlight = 0;
    const budgets = new DailyBudgets(
      new MapStore(),
      ledger,
      new FakeClock(),
      () => {},
      () => inFlight,
    );
    budgets.set('a', { daily_requests: 3, daily_tokens: 100 });
    ledger.today.set('a', totals({ requests: 1, input_tokens: 50 }));
    inFlight = 1;
    expect(budgets.breach('a')).toBeNull();
    inFlight = 2;
    expect(budgets.breach('a')).toEqual({ kind: 'requests', used: 3, limit: 3 });
    budgets.set('a', { daily_requests: null });
    expect(budgets.breach('a')).toBeNull();
  });

  it('set keeps the other budget when one is given, and budgets reload from the store (restart)', () => {
    const clock = new FakeClock();
    const store = new MapStore();
    const budgets = new DailyBudgets(store, new FakeLedger(), clock);
    budgets.set('a', { daily_tokens: 5000 });
    budgets.set('a', { daily_requests: 10 });
    expect(budgets.budgetOf('a')).toEqual({ daily_tokens: 5000, daily_requests: 10 });
    expect(new DailyBudgets(store, new FakeLedger(), clock).budgetOf('a')).toEqual({ daily_tokens: 5000, daily_requests: 10 });
    expect(budgets.budgetOf('nobody')).toEqual({ daily_tokens: null, daily_requests: null });
  });
});

describe('budgets in SQLite and in pools', () => {
  let w: OAuthWorld;
  afterEach(() => w?.close());

  function world(members: string[]) {
    w = oauthWorld();
    const ledger = new FakeLedger();
    for (const m of members)
      w.vault.add({ name: m, kind: 'api-key', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: `sk-ant-api03-REAL${m}xxxxxxxxxxxxxxxxxxxxxxxx` });
    const repo = new BudgetsRepo(w.db);
    const reports: string[] = [];
    const budgets = new DailyBudgets(repo, ledger, w.clock, (n) => reports.push(n));
    const health = new MemberHealth(w.clock);
    const pools = new PoolService(w.poolsRepo, health, w.vault, w.audit, w.bus, w.clock, w.log, () => {}, { ledger, budgets });
    return { ledger, repo, budgets, health, pools, reports };
  }

  it('the repo stores budgets with the credential, clears them with none, and they go when the credential goes', () => {
    const { repo, budgets } = world(['a']);
    budgets.set('a', { daily_tokens: 100, daily_requests: 2 });
    expect(repo.list()).toEqual([{ name: 'a', daily_tokens: 100, daily_requests: 2 }]);
    expect(() => repo.set('a', -1, null, w.clock.iso())).toThrow(/CHECK/);
    expect(repo.set('ghost', 1, 1, w.clock.iso())).toBe(false);
    w.vault.remove('a');
    expect(repo.list()).toEqual([]);
  });

  it('a pool skips a member past its budget like a cooling one; when every member is out, the request is refused with daily_budget', () => {
    const { ledger, budgets, pools, reports } = world(['a', 'b']);
    pools.create('p', ['a', 'b']);
    budgets.set('a', { daily_requests: 2 });
    budgets.set('b', { daily_tokens: 1000 });
    expect(pools.activeMember(pools.get('p'))).toBe('a');
    ledger.today.set('a', totals({ requests: 2 }));
    expect(pools.activeMember(pools.get('p'))).toBe('b');
    expect(reports).toEqual(['a']);
    expect(pools.memberRefusal('b', 'p')).toBeNull();
    ledger.today.set('b', totals({ input_tokens: 700, output_tokens: 300 }));
    const m = pools.activeMember(pools.get('p'));
    const r = pools.memberRefusal(m, 'p');
    expect(r).toMatchObject({ status: 429, code: 'daily_budget' });
    expect(r!.retryAfterS).toBeGreaterThan(0);
    expect(r!.retryAfterS).toBeLessThanOrEqual(25 * 3600);
    expect(r!.message).not.toMatch(/sk-ant/);
  });

  it('a credential outside any pool is refused past its budget, with retry-after to local midnight', () => {
    const { ledger, budgets, pools } = world(['solo']);
    w.clock.advance(Date.UTC(2026, 0, 16, 3, 30) - w.clock.now()); // 22:30 in New York
    budgets.set('solo', { daily_tokens: 10 });
    ledger.today.set('solo', totals({ output_tokens: 10 }));
    expect(pools.memberRefusal('solo', null)).toMatchObject({ status: 429, code: 'daily_budget', retryAfterS: 5400 });
  });
});
