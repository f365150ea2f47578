/** Request statistics: per-credential counters by status class, rejects, and the rolling rate. */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { RequestStats } from '../../../../src/daemon/events/request-stats.js';

describe('RequestStats counters', () => {
  it('counts finished requests per credential by status class, with null as an error', () => {
    const stats = new RequestStats(new FakeClock());
    for (const s of [200, 201, 204, 301, 404, 429, 500, 503, null]) stats.recordFinished('work', s);
    expect(stats.countersFor('work')).toEqual({ total: 9, status_2xx: 3, status_3xx: 1, status_4xx: 2, status_5xx: 2, errors: 1, rejected: 0 });
  });

  it('keeps credentials apart and counts requests without a credential only globally', () => {
    const stats = new RequestStats(new FakeClock());
    stats.recordFinished('a', 200);
    stats.recordFinished('b', 500);
    stats.recordFinished(null, 200);
    expect(stats.countersFor('a').status_2xx).toBe(1);
    expect(stats.countersFor('a').status_5xx).toBe(0);
    expect(stats.countersFor('b').status_5xx).toBe(1);
    expect(stats.global().requests_total).toBe(3);
  });

  it('counts cap refusals per credential and globally', () => {
    const stats = new RequestStats(new FakeClock());
    stats.recordRejected('work');
    stats.recordRejected('work');
    stats.recordRejected(null);
    expect(stats.countersFor('work').rejected).toBe(2);
    expect(stats.global().rejected).toBe(3);
  });

  it('returns a copy, and zeros for unknown or forgotten credentials', () => {
    const stats = new RequestStats(new FakeClock());
    stats.recordFinished('work', 200);
    const c = stats.countersFor('work');
    c.total = 99;
    expect(stats.countersFor('work').total).toBe(1);
    stats.forget('work');
    expect(stats.countersFor('work').total).toBe(0);
    expect(stats.countersFor('never').total).toBe(0);
  });
});

describe('RequestStats rate', () => {
  it('averages requests over the last five full seconds, leaving out the current one', () => {
    const clock = new FakeClock();
    const stats = new RequestStats(clock);
    for (let i = 0; i < 10; i++) stats.recordFinished('work', 200);
    expect(stats.global().requests_per_s).toBe(0);
    clock.advance(1_000);
    expect(stats.global().requests_per_s).toBe(2);
  });

  it('follows a steady rate across seconds', () => {
    const clock = new FakeClock();
    const stats = new RequestStats(clock);
    for (let s = 0; s < 8; s++) {
      for (let i = 0; i < 3; i++) stats.recordFinished(null, 200);
      clock.advance(1_000);
    }
    expect(stats.global().requests_per_s).toBe(3);
  });

  it('drops seconds that fell out of the window, even after a long quiet spell', () => {
    const clock = new FakeClock();
    const stats = new RequestStats(clock);
    for (let i = 0; i < 50; i++) stats.recordFinished(null, 200);
    clock.advance(5_000);
    expect(stats.global().requests_per_s).toBe(10);
    clock.advance(1_000);
    expect(stats.global().requests_per_s).toBe(0);
    clock.advance(60_000);
    stats.recordFinished(null, 200);
    clock.advance(1_000);
    expect(stats.global().requests_per_s).toBe(0.2);
    expect(stats.global().requests_total).toBe(51);
  });
});
