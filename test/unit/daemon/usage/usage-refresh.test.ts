/**
 * `usage.updated` also follows what changes with no new traffic: the dashboard keeps the numbers of the last
 * event, so a tokens-per-minute rate that rolls down to 0 and a headroom whose windows all reset must be
 * published too (else an idle credential shows its last rate, and a red `req 1/50`, forever).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { EventBus } from '../../../../src/daemon/events/event-bus.js';
import { openDatabase, type Db } from '../../../../src/daemon/store/database.js';
import { UsageRepo } from '../../../../src/daemon/store/usage-repo.js';
import { UsageService } from '../../../../src/daemon/usage/usage-service.js';
import type { CredentialUsage } from '../../../../src/shared/protocol/usage.js';

const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
});

function setup() {
  const db = openDatabase(':memory:');
  dbs.push(db);
  const clock = new FakeClock(Date.UTC(2026, 0, 10, 10, 15));
  const bus = new EventBus();
  const events: { at: number; credentials: CredentialUsage[] }[] = [];
  bus.subscribe((type, payload) => {
    if (type === 'usage.updated') events.push({ at: clock.now(), credentials: (payload as { credentials: CredentialUsage[] }).credentials });
  });
  const svc = new UsageService({
    clock,
    repo: new UsageRepo(db),
    bus,
    names: () => ['a'],
    budgetOf: () => ({ daily_tokens: null, daily_requests: null }),
    maskText: (t) => t,
  });
  svc.start();
  return { clock, svc, events };
}

const last = (events: { credentials: CredentialUsage[] }[]) => events.at(-1)!.credentials.find((c) => c.name === 'a')!;

describe('usage.updated without new traffic', () => {
  it('publishes the rolling rate as it falls, down to 0, then stops', () => {
    const { clock, svc, events } = setup();
    svc.record({ credential: 'a', pool: null, agent: null, model: 'm', requests: 1, input_tokens: 400, output_tokens: 100, cached_tokens: 0 });
    clock.advance(0);
    expect(last(events).tokens_per_min).toBe(100);
    clock.advance(5 * 60_000 + 10_000);
    expect(last(events).tokens_per_min).toBe(0);
    // Refreshed while it moved (about every 10 s), not once per request or per millisecond.
    expect(events.length).toBeGreaterThan(2);
    expect(events.length).toBeLessThanOrEqual(2 + (5 * 60_000 + 10_000) / 10_000);
    const settled = events.length;
    clock.advance(60 * 60_000);
    expect(events).toHaveLength(settled);
  });

  it('publishes a headroom going away once all its windows reset, then stops', () => {
    const { clock, svc, events } = setup();
    svc.observeHeaders('a', { 'x-ratelimit-limit-requests': '50', 'x-ratelimit-remaining-requests': '1', 'x-ratelimit-reset-requests': '30s' });
    clock.advance(0);
    expect(last(events).headroom?.requests?.remaining).toBe(1);
    const shown = events.length;
    clock.advance(29_000);
    expect(events).toHaveLength(shown);
    clock.advance(2_000);
    expect(last(events).headroom).toBeNull();
    const settled = events.length;
    clock.advance(60 * 60_000);
    expect(events).toHaveLength(settled);
  });
});
