/**
 * UsageService with a fake clock over a migrated in-memory database: hourly buckets, batched writes, the
 * 90-day prune, today's totals (across midnight and a restart), headroom expiry, tokens per minute and the
 * coalescing of `usage.updated`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { EventBus } from '../../../../src/daemon/events/event-bus.js';
import { openDatabase, type Db } from '../../../../src/daemon/store/database.js';
import { UsageRepo } from '../../../../src/daemon/store/usage-repo.js';
import { UsageService, type UsageRecord } from '../../../../src/daemon/usage/usage-service.js';
import type { CredentialUsage } from '../../../../src/shared/protocol/usage.js';

const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
});

function setup(clock = new FakeClock(Date.UTC(2026, 0, 10, 10, 15)), db?: Db) {
  if (!db) dbs.push((db = openDatabase(':memory:')));
  const bus = new EventBus();
  const events: CredentialUsage[][] = [];
  bus.subscribe((type, payload) => {
    if (type === 'usage.updated') events.push((payload as { credentials: CredentialUsage[] }).credentials);
  });
  const svc = new UsageService({
    clock,
    repo: new UsageRepo(db),
    bus,
    names: () => ['a', 'b'],
    budgetOf: () => ({ daily_tokens: null, daily_requests: null }),
    maskText: (t) => t.replaceAll('sk-REAL-SECRET', 'sk-phantom'),
  });
  svc.start();
  return { clock, db, svc, events };
}

const rec = (over: Partial<UsageRecord> = {}): UsageRecord => ({
  credential: 'a',
  pool: null,
  agent: null,
  model: 'm1',
  requests: 1,
  input_tokens: 100,
  output_tokens: 10,
  cached_tokens: 40,
  ...over,
});

const rows = (db: Db) => db.prepare('SELECT * FROM usage_hourly ORDER BY hour, credential, pool, agent, model').all();

describe('UsageService', () => {
  it('accumulates in memory and writes hourly buckets once a second, not per request', () => {
    const { clock, db, svc } = setup();
    svc.record(rec());
    svc.record(rec({ pool: 'p', agent: 'bot', model: 'm2', input_tokens: 5, output_tokens: 1, cached_tokens: 0 }));
    svc.record(rec());
    expect(rows(db)).toEqual([]);
    clock.advance(1000);
    expect(rows(db)).toEqual([
      {
        hour: '2026-01-10T10:00:00.000Z',
        credential: 'a',
        pool: '',
        agent: '',
        model: 'm1',
        requests: 2,
        input_tokens: 200,
        output_tokens: 20,
        cached_tokens: 80,
      },
      {
        hour: '2026-01-10T10:00:00.000Z',
        credential: 'a',
        pool: 'p',
        agent: 'bot',
        model: 'm2',
        requests: 1,
        input_tokens: 5,
        output_tokens: 1,
        cached_tokens: 0,
      },
    ]);
    // The next hour is a new bucket; the same key in the same hour adds up.
    clock.advance(45 * 60_000);
    svc.record(rec({ requests: 1, input_tokens: 1, output_tokens: 1, cached_tokens: 1 }));
    clock.advance(1000);
    expect(rows(db)).toHaveLength(3);
    expect((rows(db)[2] as { hour: string }).hour).toBe('2026-01-10T11:00:00.000Z');
  });

  it('usage.snapshot groups by cred, pool, agent and model over the period, unknown as "-"', () => {
    const { clock, svc } = setup();
    svc.record(rec({ model: null }));
    svc.record(rec({ credential: 'b', pool: 'p', agent: 'bot', model: 'm2', input_tokens: 1000, output_tokens: 0, cached_tokens: 0 }));
    clock.advance(3 * 3_600_000);
    svc.record(rec({ requests: 2, input_tokens: 1, output_tokens: 2, cached_tokens: 0 }));
    // Not flushed yet: the snapshot still sees it.
    const byCred = svc.snapshot('cred', '24h');
    expect(byCred.rows).toEqual([
      { key: 'b', requests: 1, input_tokens: 1000, output_tokens: 0, cached_tokens: 0 },
      { key: 'a', requests: 3, input_tokens: 101, output_tokens: 12, cached_tokens: 40 },
    ]);
    expect(svc.snapshot('pool', '24h').rows.map((r) => r.key)).toEqual(['p', '-']);
    expect(svc.snapshot('agent', '24h').rows.map((r) => r.key)).toEqual(['bot', '-']);
    expect(svc.snapshot('model', '24h').rows.map((r) => [r.key, r.requests])).toEqual([
      ['m2', 1],
      ['-', 1],
      ['m1', 2],
    ]);
    // 1h: only the current hour and the one before it.
    expect(svc.snapshot('cred', '1h').rows).toEqual([{ key: 'a', requests: 2, input_tokens: 1, output_tokens: 2, cached_tokens: 0 }]);
    expect(byCred.credentials.map((c) => c.name)).toEqual(['a', 'b']);
  });

  it('deletes buckets older than 90 days at start and once a day', () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1, 0, 30));
    const first = setup(clock);
    first.svc.record(rec());
    first.svc.flush();
    clock.advance(89 * 86_400_000);
    expect(rows(first.db)).toHaveLength(1);
    // The daily prune after day 90 removes it.
    clock.advance(2 * 86_400_000);
    expect(rows(first.db)).toHaveLength(0);
    // And at start.
    first.svc.record(rec());
    first.svc.stop();
    clock.advance(91 * 86_400_000);
    setup(clock, first.db);
    expect(rows(first.db)).toHaveLength(0);
  });

  it("today's totals reset at local midnight and are reloaded from the buckets after a restart", () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 10, 22, 0));
    const first = setup(clock);
    first.svc.record(rec());
    first.svc.record(rec({ credential: 'b' }));
    expect(first.svc.todayOf('a')).toEqual({ requests: 1, input_tokens: 100, output_tokens: 10, cached_tokens: 40 });
    first.svc.stop();
    // A restart the same day sees the same totals.
    const second = setup(clock, first.db);
    expect(second.svc.todayOf('a')).toEqual({ requests: 1, input_tokens: 100, output_tokens: 10, cached_tokens: 40 });
    second.svc.record(rec());
    expect(second.svc.todayOf('a').requests).toBe(2);
    // Past midnight (TZ is UTC in the test run): a new day.
    clock.advance(2 * 3_600_000 + 1);
    expect(second.svc.todayOf('a')).toEqual({ requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0 });
    second.svc.record(rec({ input_tokens: 7, output_tokens: 0, cached_tokens: 0 }));
    second.svc.stop();
    const third = setup(clock, first.db);
    expect(third.svc.todayOf('a')).toEqual({ requests: 1, input_tokens: 7, output_tokens: 0, cached_tokens: 0 });
  });

  it('keeps the latest headroom per credential and drops it once every window reset', () => {
    const { clock, svc } = setup();
    svc.observeHeaders('a', { 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '9', 'x-ratelimit-reset-requests': '30s' });
    svc.observeHeaders('a', { 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '8', 'x-ratelimit-reset-requests': '30s' });
    svc.observeHeaders('a', { 'content-type': 'application/json' });
    expect(svc.headroomOf('a')?.requests?.remaining).toBe(8);
    expect(svc.headroomOf('a')?.fraction_left).toBeCloseTo(0.8);
    expect(svc.headroomOf('b')).toBeNull();
    clock.advance(29_000);
    expect(svc.headroomOf('a')).not.toBeNull();
    clock.advance(1_000);
    expect(svc.headroomOf('a')).toBeNull();
  });

  it('tokens per minute over a rolling five minutes', () => {
    const { clock, svc } = setup();
    svc.record(rec({ input_tokens: 400, output_tokens: 100 }));
    expect(svc.tokensPerMinute('a')).toBe(100);
    clock.advance(60_000);
    svc.record(rec({ input_tokens: 500, output_tokens: 0 }));
    expect(svc.tokensPerMinute('a')).toBe(200);
    clock.advance(4 * 60_000);
    // The first record left the window.
    expect(svc.tokensPerMinute('a')).toBe(100);
    clock.advance(60_000);
    expect(svc.tokensPerMinute('a')).toBe(0);
  });

  it('coalesces usage.updated to at most one event a second, with the latest numbers', () => {
    const { clock, svc, events } = setup();
    svc.record(rec());
    svc.record(rec());
    expect(events).toHaveLength(0);
    clock.advance(0);
    expect(events).toHaveLength(1);
    expect(events[0]!.find((c) => c.name === 'a')?.today.requests).toBe(2);
    for (let i = 0; i < 10; i++) {
      clock.advance(50);
      svc.record(rec());
    }
    // 500 ms after the first event: none yet.
    expect(events).toHaveLength(1);
    clock.advance(500);
    expect(events).toHaveLength(2);
    expect(events[1]!.find((c) => c.name === 'a')?.today.requests).toBe(12);
    clock.advance(5000);
    expect(events).toHaveLength(2);
    svc.observeHeaders('b', { 'anthropic-ratelimit-unified-status': 'allowed' });
    clock.advance(0);
    expect(events).toHaveLength(3);
    expect(events[2]!.find((c) => c.name === 'b')?.headroom?.unified?.status).toBe('allowed');
  });

  it('a real secret an upstream echoes in a model name or a header string is stored and reported as its phantom', () => {
    const { db, svc } = setup();
    svc.record(rec({ model: 'model-sk-REAL-SECRET' }));
    svc.observeHeaders('a', { 'anthropic-ratelimit-unified-status': 'x sk-REAL-SECRET', 'anthropic-ratelimit-unified-5h-utilization': '0.5' });
    const snap = svc.snapshot('model', '24h');
    expect(JSON.stringify(snap)).not.toContain('sk-REAL-SECRET');
    expect(JSON.stringify(rows(db))).not.toContain('sk-REAL-SECRET');
    expect(snap.rows[0]!.key).toBe('model-sk-phantom');
    expect(svc.headroomOf('a')?.unified?.status).toBe('x sk-phantom');
  });

  it('a failed flush keeps the counts and writes them next time', () => {
    const { clock, db, svc } = setup();
    svc.record(rec());
    db.exec('CREATE TRIGGER no_usage BEFORE INSERT ON usage_hourly BEGIN SELECT RAISE(ABORT, "locked"); END');
    clock.advance(1000);
    expect(rows(db)).toHaveLength(0);
    expect(svc.snapshot('cred', '24h').rows[0]).toMatchObject({ key: 'a', requests: 1 });
    db.exec('DROP TRIGGER no_usage');
    clock.advance(1000);
    expect(rows(db)).toHaveLength(1);
  });
});
