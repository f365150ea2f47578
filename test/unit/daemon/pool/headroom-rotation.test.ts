/**
 * Issue 24, rotate before the wall: the headroom arithmetic (pure) and PoolService choosing the member that
 * serves with `--rotate-below` set, against a fake usage ledger and a fake clock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fractionLeft, healthiest, isLow, lowUntil } from '../../../../src/daemon/pool/headroom-rotation.js';
import { DEFAULT_MAX_COOLDOWN_MS, MemberHealth } from '../../../../src/daemon/pool/member-health.js';
import { PoolService } from '../../../../src/daemon/pool/pool-service.js';
import type { UsageLedger } from '../../../../src/daemon/usage/usage-ledger.js';
import type { Headroom, HeadroomWindow, UsageTotals } from '../../../../src/shared/protocol/usage.js';
import type { EventType } from '../../../../src/shared/protocol/events.js';
import { oauthWorld, type OAuthWorld } from '../oauth/oauth-setup.js';

const T0 = Date.UTC(2026, 0, 1);
const iso = (ms: number) => new Date(ms).toISOString();

function win(remaining: number, limit: number, resetAt: number | null): HeadroomWindow {
  return { limit, remaining, reset_at: resetAt === null ? null : iso(resetAt) };
}

function headroom(p: Partial<Headroom>): Headroom {
  return { requests: null, tokens: null, input_tokens: null, output_tokens: null, unified: null, fraction_left: null, updated_at: iso(T0), ...p };
}

/** A usage ledger whose headroom the test sets per credential. */
class FakeLedger implements UsageLedger {
  readonly rooms = new Map<string, Headroom>();
  readonly today = new Map<string, UsageTotals>();
  headroomOf(c: string): Headroom | null {
    return this.rooms.get(c) ?? null;
  }
  todayOf(c: string): UsageTotals {
    return this.today.get(c) ?? { requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 };
  }
}

describe('headroom arithmetic', () => {
  it('fraction left is the smallest window; unknown headroom counts as full', () => {
    expect(fractionLeft(null, T0)).toBe(1);
    const h = headroom({ requests: win(37, 50, T0 + 60_000), tokens: win(10_000, 100_000, T0 + 30_000) });
    expect(fractionLeft(h, T0)).toBeCloseTo(0.1);
    expect(isLow(h, 20, T0)).toBe(true);
    expect(isLow(h, 10, T0)).toBe(false);
    expect(isLow(null, 99, T0)).toBe(false);
  });

  it('a window whose reset has passed counts as full again (its numbers are stale)', () => {
    const h = headroom({ requests: win(1, 50, T0 + 1_000), tokens: win(80, 100, T0 + 60_000) });
    expect(fractionLeft(h, T0)).toBeCloseTo(0.02);
    expect(fractionLeft(h, T0 + 1_000)).toBeCloseTo(0.8);
  });

  it('unified windows count as 1 - utilisation; fraction_left is used when no window is given', () => {
    const h = headroom({ unified: { status: 'allowed', windows: [{ name: '5h', utilization: 0.93, reset_at: iso(T0 + 3_600_000) }] } });
    expect(fractionLeft(h, T0)).toBeCloseTo(0.07);
    expect(fractionLeft(headroom({ fraction_left: 0.15 }), T0)).toBeCloseTo(0.15);
  });

  it('cools until the latest reset of the LOW windows only; 60 s when none says', () => {
    const h = headroom({ requests: win(2, 50, T0 + 30_000), tokens: win(5, 100, T0 + 45_000), input_tokens: win(90, 100, T0 + 600_000) });
    expect(lowUntil(h, 20, T0)).toBe(T0 + 45_000);
    expect(lowUntil(headroom({ requests: win(2, 50, null) }), 20, T0)).toBe(T0 + 60_000);
  });

  it('healthiest: most headroom among the available, unknown = full, ties go to the next in pool order', () => {
    const left: Record<string, number> = { a: 0.1, b: 0.5, c: 0.9, d: 1 };
    const all = () => true;
    expect(healthiest(['a', 'b', 'c'], 'a', all, (m) => left[m]!)).toBe('c');
    expect(
      healthiest(
        ['a', 'b', 'c'],
        'a',
        (m) => m !== 'c',
        (m) => left[m]!,
      ),
    ).toBe('b');
    // d (unknown = 1) and e (unknown = 1) tie: the first after `from` wins
    expect(healthiest(['e', 'a', 'd'], 'a', all, (m) => left[m] ?? 1)).toBe('d');
    expect(healthiest(['a'], 'a', all, () => 1)).toBeNull();
  });
});

describe('PoolService with --rotate-below', () => {
  let w: OAuthWorld;
  let ledger: FakeLedger;
  let pools: PoolService;
  let health: MemberHealth;
  const notices: string[] = [];
  afterEach(() => {
    w?.close();
    notices.length = 0;
  });

  function setup(members: string[], rotateBelow: number | null) {
    w = oauthWorld();
    ledger = new FakeLedger();
    health = new MemberHealth(w.clock);
    pools = new PoolService(w.poolsRepo, health, w.vault, w.audit, w.bus, w.clock, w.log, (_l, _k, m) => notices.push(m), { ledger });
    for (const m of members)
      w.vault.add({ name: m, kind: 'api-key', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: `sk-ant-api03-REAL${m}xxxxxxxxxxxxxxxxxxxxxxxx` });
    pools.create('p', members, { rotate_below: rotateBelow, plan_limits_only: false });
  }

  function rows(event: string) {
    w.audit.flush();
    return w.audit.tail(1000).filter((r) => r.event === event);
  }

  it('moves off a member below PCT to the one with most headroom (unknown = full), cools it until its low windows reset', () => {
    setup(['a', 'b', 'c'], 20);
    const seen: { type: EventType; payload: unknown }[] = [];
    w.bus.subscribe((type, payload) => seen.push({ type, payload }));
    const now = w.clock.now();
    expect(pools.activeMember(pools.get('p'))).toBe('a');
    ledger.rooms.set('a', headroom({ requests: win(5, 50, now + 30_000), tokens: win(90_000, 100_000, now + 120_000) }));
    ledger.rooms.set('b', headroom({ requests: win(25, 50, now + 30_000) }));
    // c: no headroom known → full → chosen over b's 50 %
    expect(pools.activeMember(pools.get('p'))).toBe('c');
    expect(health.get('a')).toEqual({ until: now + 30_000, reason: 'headroom_low' });
    expect(rows('cred_headroom_low').map((r) => [r.credential, r.detail])).toEqual([['a', 'p:a:20%']]);
    expect(notices.some((n) => n.includes('a below 20% headroom') && n.includes('switched to c'))).toBe(true);
    expect(seen.find((e) => e.type === 'cred.failover')?.payload).toEqual({ pool: 'p', from: 'a', to: 'c', reason: 'headroom_low' });
    expect(seen.some((e) => e.type === 'pool.changed')).toBe(true);
    expect(pools.info(pools.get('p'))).toMatchObject({
      active: 'c',
      rotate_below: 20,
      members: [{ name: 'a', healthy: false, reason: 'headroom_low' }, {}, {}],
    });
    // Sticky: a recovers, c stays.
    w.clock.advance(30_000);
    expect(health.isHealthy('a')).toBe(true);
    expect(pools.activeMember(pools.get('p'))).toBe('c');
  });

  it('never moves to a cooling member: b (less headroom) serves when c cools', () => {
    setup(['a', 'b', 'c'], 20);
    const now = w.clock.now();
    health.cool('c', now + 600_000, 'rate_limited');
    ledger.rooms.set('a', headroom({ requests: win(1, 50, now + 30_000) }));
    ledger.rooms.set('b', headroom({ requests: win(30, 50, now + 30_000) }));
    expect(pools.activeMember(pools.get('p'))).toBe('b');
  });

  it('does nothing when the option is off, or when no other member has more headroom', () => {
    setup(['a', 'b'], null);
    const now = w.clock.now();
    ledger.rooms.set('a', headroom({ requests: win(1, 50, now + 30_000) }));
    expect(pools.activeMember(pools.get('p'))).toBe('a');
    expect(health.get('a')).toBeNull();
    w.close();

    setup(['a', 'b'], 20);
    ledger.rooms.set('a', headroom({ requests: win(5, 50, now + 30_000) }));
    ledger.rooms.set('b', headroom({ requests: win(3, 50, now + 30_000) }));
    expect(pools.activeMember(pools.get('p'))).toBe('a');
    expect(health.get('a')).toBeNull();
    expect(rows('cred_headroom_low')).toEqual([]);
    expect(notices.some((n) => n.includes('no other member has more; staying on it'))).toBe(true);
  });

  it('a reset far in the future is clamped like any cooldown', () => {
    setup(['a', 'b'], 50);
    const now = w.clock.now();
    ledger.rooms.set('a', headroom({ tokens: win(1, 100, now + 365 * 86_400_000) }));
    expect(pools.activeMember(pools.get('p'))).toBe('b');
    expect(health.get('a')?.until).toBe(now + DEFAULT_MAX_COOLDOWN_MS);
  });

  it('pool update turns the option on and off and is audited; bad values never reach the repo', () => {
    setup(['a', 'b'], null);
    expect(pools.update('p', { rotate_below: 30 })).toMatchObject({ rotate_below: 30, plan_limits_only: false });
    expect(pools.update('p', { plan_limits_only: true })).toMatchObject({ rotate_below: 30, plan_limits_only: true });
    expect(pools.update('p', { rotate_below: null })).toMatchObject({ rotate_below: null, plan_limits_only: true });
    expect(rows('pool_updated').map((r) => r.detail)).toEqual([
      'rotate_below=30% plan_limits_only=off',
      'rotate_below=30% plan_limits_only=on',
      'rotate_below=off plan_limits_only=on',
    ]);
    // The CHECK constraint refuses what the RPC schema would have refused.
    expect(() => w.poolsRepo.setOptions('p', { rotate_below: 150, plan_limits_only: false })).toThrow(/CHECK/);
  });
});
