/**
 * The active-member resolver (DESIGN §7): sticky while healthy; when the current member cools, the next
 * healthy one after it (wrapping); when every member cools, the one that recovers first, flagged.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { MemberHealth } from '../../../../src/daemon/pool/member-health.js';
import { chooseActive } from '../../../../src/daemon/pool/pool-resolver.js';

function setup() {
  const clock = new FakeClock();
  const health = new MemberHealth(clock);
  const t0 = clock.now();
  return { clock, health, t0 };
}

const M = ['a', 'b', 'c'] as const;

describe('chooseActive', () => {
  it('no current member → the first healthy one', () => {
    const { health, t0 } = setup();
    expect(chooseActive(M, null, health)).toEqual({ member: 'a', allCooling: false });
    health.cool('a', t0 + 60_000, 'rate_limited');
    expect(chooseActive(M, null, health)).toEqual({ member: 'b', allCooling: false });
  });

  it('sticky: a healthy current member stays active even when an earlier one is healthy', () => {
    const { health } = setup();
    expect(chooseActive(M, 'b', health)).toEqual({ member: 'b', allCooling: false });
    expect(chooseActive(M, 'c', health)).toEqual({ member: 'c', allCooling: false });
  });

  it('sticky after recovery: the first member recovering does not take over from the current one', () => {
    const { health, clock, t0 } = setup();
    health.cool('a', t0 + 1_000, 'rate_limited');
    expect(chooseActive(M, 'a', health).member).toBe('b');
    clock.advance(2_000);
    expect(health.isHealthy('a')).toBe(true);
    expect(chooseActive(M, 'b', health)).toEqual({ member: 'b', allCooling: false });
  });

  it('current cooling → the next healthy member after it', () => {
    const { health, t0 } = setup();
    health.cool('b', t0 + 60_000, 'rate_limited');
    expect(chooseActive(M, 'b', health)).toEqual({ member: 'c', allCooling: false });
  });

  it('skips cooling members after the current one', () => {
    const { health, t0 } = setup();
    health.cool('a', t0 + 60_000, 'rate_limited');
    health.cool('b', t0 + 60_000, 'rate_limited');
    expect(chooseActive(M, 'a', health)).toEqual({ member: 'c', allCooling: false });
  });

  it('wraps around past the end', () => {
    const { health, t0 } = setup();
    health.cool('c', t0 + 60_000, 'rate_limited');
    expect(chooseActive(M, 'c', health)).toEqual({ member: 'a', allCooling: false });
    health.cool('a', t0 + 60_000, 'rate_limited');
    expect(chooseActive(M, 'c', health)).toEqual({ member: 'b', allCooling: false });
  });

  it('a current member that is no longer in the pool counts as none', () => {
    const { health } = setup();
    expect(chooseActive(M, 'zz', health)).toEqual({ member: 'a', allCooling: false });
  });

  it('all cooling → the one that recovers first, flagged', () => {
    const { health, t0 } = setup();
    health.cool('a', t0 + 300_000, 'auth_failed');
    health.cool('b', t0 + 20_000, 'rate_limited');
    health.cool('c', t0 + 60_000, 'rate_limited');
    expect(chooseActive(M, 'a', health)).toEqual({ member: 'b', allCooling: true });
    expect(chooseActive(M, 'c', health)).toEqual({ member: 'b', allCooling: true });
    expect(chooseActive(M, null, health)).toEqual({ member: 'b', allCooling: true });
  });

  it('all cooling → soonest even when it is before the current one', () => {
    const { health, t0 } = setup();
    health.cool('a', t0 + 10_000, 'rate_limited');
    health.cool('b', t0 + 40_000, 'rate_limited');
    health.cool('c', t0 + 50_000, 'rate_limited');
    expect(chooseActive(M, 'c', health)).toEqual({ member: 'a', allCooling: true });
  });

  it('as cooldowns expire, the first member to recover after the current one serves again', () => {
    const { health, clock, t0 } = setup();
    health.cool('a', t0 + 10_000, 'rate_limited');
    health.cool('b', t0 + 40_000, 'rate_limited');
    health.cool('c', t0 + 50_000, 'rate_limited');
    clock.advance(10_000);
    expect(chooseActive(M, 'c', health)).toEqual({ member: 'a', allCooling: false });
    clock.advance(30_000);
    expect(chooseActive(M, 'a', health)).toEqual({ member: 'a', allCooling: false });
    expect(chooseActive(M, 'c', health)).toEqual({ member: 'a', allCooling: false });
  });

  it('a single-member pool: healthy → it; cooling → still it, flagged', () => {
    const { health, t0 } = setup();
    expect(chooseActive(['solo'], 'solo', health)).toEqual({ member: 'solo', allCooling: false });
    health.cool('solo', t0 + 60_000, 'rate_limited');
    expect(chooseActive(['solo'], 'solo', health)).toEqual({ member: 'solo', allCooling: true });
  });

  it('never fails hard: it always returns a member of the pool', () => {
    const { health, t0 } = setup();
    for (const m of M) health.cool(m, t0 + 1_000, 'rate_limited');
    const r = chooseActive(M, null, health);
    expect(M).toContain(r.member);
    expect(r.allCooling).toBe(true);
  });
});
