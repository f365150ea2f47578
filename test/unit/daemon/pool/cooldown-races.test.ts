/** Issue 22 #4: reset headers read as epoch times when large, auth cooldowns never shortened, every cooldown clamped. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { classify, headerCooldownEnd } from '../../../../src/daemon/pool/failover-classifier.js';
import { MemberHealth } from '../../../../src/daemon/pool/member-health.js';

const NOW = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

describe('issue 22 #4: reset headers', () => {
  it('x-ratelimit-reset as epoch seconds (GitHub style) is an absolute time, not 56 years', () => {
    const epochS = Math.floor(NOW / 1000) + 90;
    expect(classify(429, { 'x-ratelimit-reset': String(epochS) }, null, false, NOW)).toEqual({ reason: 'rate_limited', until: epochS * 1000 });
  });

  it('retry-after as epoch milliseconds is an absolute time', () => {
    expect(headerCooldownEnd({ 'retry-after': String(NOW + 45_000) }, NOW)).toBe(NOW + 45_000);
  });

  it('small bare numbers stay seconds from now', () => {
    expect(headerCooldownEnd({ 'x-ratelimit-reset-requests': '12' }, NOW)).toBe(NOW + 12_000);
  });

  it('a 401 carrying OpenAI reset headers cools 300 s, not 2 s', () => {
    const r = classify(401, { 'x-ratelimit-reset-requests': '2s', 'x-ratelimit-reset-tokens': '1s' }, null, false, NOW);
    expect(r).toEqual({ reason: 'auth_failed', until: NOW + 300_000 });
  });

  it('an invalid_grant with a short retry-after still cools 300 s', () => {
    expect(classify(400, { 'retry-after': '1' }, '{"error":"invalid_grant"}', true, NOW)).toEqual({ reason: 'auth_failed', until: NOW + 300_000 });
  });
});

describe('issue 22 #4: every cooldown is clamped (24 h default, SLUICE_MAX_COOLDOWN_S)', () => {
  it('retry-after: 31536000 cools one day, not 365', () => {
    const clock = new FakeClock(NOW);
    const health = new MemberHealth(clock);
    const f = classify(429, { 'retry-after': '31536000' }, null, false, NOW)!;
    expect(health.cool('a', f.until, f.reason).until).toBe(NOW + DAY);
  });

  it('a configured maximum clamps shorter, and persisted overlong cooldowns are clamped on load', () => {
    const clock = new FakeClock(NOW);
    const persisted: (number | null)[] = [];
    const health = new MemberHealth(clock, (_n, until) => persisted.push(until), 600_000);
    expect(health.cool('a', NOW + 3_600_000, 'rate_limited').until).toBe(NOW + 600_000);
    expect(persisted).toEqual([NOW + 600_000]);
    const reloaded = new MemberHealth(clock, () => {}, 600_000);
    reloaded.load([{ name: 'b', until: NOW + 56 * 365 * DAY, reason: 'rate_limited' }]);
    expect(reloaded.get('b')?.until).toBe(NOW + 600_000);
  });

  it('a clamped cooldown still only ever extends', () => {
    const clock = new FakeClock(NOW);
    const health = new MemberHealth(clock);
    health.cool('a', NOW + 300_000, 'auth_failed');
    expect(health.cool('a', NOW + 2_000, 'rate_limited')).toEqual({ until: NOW + 300_000, reason: 'auth_failed' });
  });
});
