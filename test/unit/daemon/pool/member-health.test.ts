/**
 * Member health (DESIGN §7): process-wide cooldowns that only ever extend, read as healthy once expired,
 * are persisted through the callback on every change, and can be cleared (pool reset).
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { MemberHealth } from '../../../../src/daemon/pool/member-health.js';

function setup() {
  const clock = new FakeClock();
  const writes: [string, number | null, string | null][] = [];
  const health = new MemberHealth(clock, (name, until, reason) => writes.push([name, until, reason]));
  return { clock, health, writes, t0: clock.now() };
}

describe('MemberHealth', () => {
  it('an unknown member is healthy', () => {
    const { health } = setup();
    expect(health.isHealthy('a')).toBe(true);
    expect(health.get('a')).toBeNull();
  });

  it('cool marks the member cooling until the given time and persists it', () => {
    const { health, writes, t0 } = setup();
    expect(health.cool('a', t0 + 60_000, 'rate_limited')).toEqual({ until: t0 + 60_000, reason: 'rate_limited' });
    expect(health.isHealthy('a')).toBe(false);
    expect(health.get('a')).toEqual({ until: t0 + 60_000, reason: 'rate_limited' });
    expect(health.isHealthy('b')).toBe(true);
    expect(writes).toEqual([['a', t0 + 60_000, 'rate_limited']]);
  });

  it('only extends: a shorter cooldown never shortens one in force (and is not persisted)', () => {
    const { health, writes, t0 } = setup();
    health.cool('a', t0 + 300_000, 'auth_failed');
    expect(health.cool('a', t0 + 7_000, 'rate_limited')).toEqual({ until: t0 + 300_000, reason: 'auth_failed' });
    expect(health.cool('a', t0 + 300_000, 'rate_limited')).toEqual({ until: t0 + 300_000, reason: 'auth_failed' });
    expect(health.get('a')).toEqual({ until: t0 + 300_000, reason: 'auth_failed' });
    expect(writes).toHaveLength(1);
  });

  it('a longer cooldown extends one in force and is persisted', () => {
    const { health, writes, t0 } = setup();
    health.cool('a', t0 + 7_000, 'rate_limited');
    expect(health.cool('a', t0 + 300_000, 'auth_failed')).toEqual({ until: t0 + 300_000, reason: 'auth_failed' });
    expect(health.get('a')?.until).toBe(t0 + 300_000);
    expect(writes).toEqual([
      ['a', t0 + 7_000, 'rate_limited'],
      ['a', t0 + 300_000, 'auth_failed'],
    ]);
  });

  it('an expired cooldown reads healthy (the boundary instant included)', () => {
    const { health, clock, t0 } = setup();
    health.cool('a', t0 + 7_000, 'rate_limited');
    clock.advance(6_999);
    expect(health.isHealthy('a')).toBe(false);
    clock.advance(1);
    expect(health.isHealthy('a')).toBe(true);
    expect(health.get('a')).toBeNull();
  });

  it('after expiry a shorter cooldown than the old one applies again', () => {
    const { health, clock, writes, t0 } = setup();
    health.cool('a', t0 + 60_000, 'rate_limited');
    clock.advance(61_000);
    expect(health.cool('a', clock.now() + 5_000, 'rate_limited')).toEqual({ until: t0 + 66_000, reason: 'rate_limited' });
    expect(health.isHealthy('a')).toBe(false);
    expect(writes.at(-1)).toEqual(['a', t0 + 66_000, 'rate_limited']);
  });

  it('clear makes the member healthy and persists null', () => {
    const { health, writes, t0 } = setup();
    health.cool('a', t0 + 60_000, 'rate_limited');
    health.clear('a');
    expect(health.isHealthy('a')).toBe(true);
    expect(writes.at(-1)).toEqual(['a', null, null]);
    // a new cooldown after a clear is not blocked by the old one
    health.cool('a', t0 + 1_000, 'manual rotate');
    expect(health.get('a')).toEqual({ until: t0 + 1_000, reason: 'manual rotate' });
  });

  it('clear of a healthy member writes nothing', () => {
    const { health, writes } = setup();
    health.clear('a');
    expect(writes).toEqual([]);
  });

  it('cooldowns are per member', () => {
    const { health, clock, t0 } = setup();
    health.cool('a', t0 + 10_000, 'rate_limited');
    health.cool('b', t0 + 20_000, 'auth_failed');
    clock.advance(15_000);
    expect(health.isHealthy('a')).toBe(true);
    expect(health.get('b')).toEqual({ until: t0 + 20_000, reason: 'auth_failed' });
  });

  it('load restores persisted cooldowns, ignores expired ones, and does not write them back', () => {
    const { health, writes, t0 } = setup();
    health.load([
      { name: 'a', until: t0 + 120_000, reason: 'auth_failed' },
      { name: 'b', until: t0 - 1, reason: 'rate_limited' },
      { name: 'c', until: t0, reason: 'rate_limited' },
    ]);
    expect(health.get('a')).toEqual({ until: t0 + 120_000, reason: 'auth_failed' });
    expect(health.isHealthy('b')).toBe(true);
    expect(health.isHealthy('c')).toBe(true);
    expect(writes).toEqual([]);
    // a loaded cooldown still only extends
    health.cool('a', t0 + 1_000, 'rate_limited');
    expect(health.get('a')?.until).toBe(t0 + 120_000);
  });

  it('the default persist callback is a no-op', () => {
    const clock = new FakeClock();
    const health = new MemberHealth(clock);
    expect(() => health.cool('a', clock.now() + 1, 'x')).not.toThrow();
    expect(() => health.clear('a')).not.toThrow();
  });
});
