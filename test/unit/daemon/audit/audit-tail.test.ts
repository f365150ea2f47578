/** `audit.tail` filters, applied by the daemon before the row limit (so `n` counts matching rows), with a fake clock. */
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../../../src/daemon/audit/audit-log.js';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { openDatabase, type Db } from '../../../../src/daemon/store/database.js';

const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
});

function seeded() {
  const db = openDatabase(':memory:');
  dbs.push(db);
  const clock = new FakeClock(Date.UTC(2026, 11, 2, 12, 0, 0));
  const log = new AuditLog(db, clock, 25, Buffer.alloc(32, 3));
  const add = (event: string, host: string | null, credential: string | null, path = '/') => {
    log.append({ event, host, credential, path, method: host ? 'GET' : null, port: host ? 443 : null, status: 200 });
    clock.advance(60_000); // one row a minute
  };
  for (let i = 0; i < 30; i++) add('request', i % 2 ? 'api.openai.com' : 'api.anthropic.com', i % 3 ? 'work' : 'home', `/r/${i}`);
  add('phantom_leak', 'evil.example', 'work,home');
  add('cred_failover', null, 'pool-a');
  return { db, clock, log };
}

describe('audit tail filters', () => {
  it('n counts matching rows: the last 5 rows of credential home, oldest first', () => {
    const { log } = seeded();
    const rows = log.tail(5, { cred: 'home' });
    expect(rows).toHaveLength(5);
    expect(rows.map((r) => r.path)).toEqual(['/r/18', '/r/21', '/r/24', '/r/27', '/']);
    expect(rows.at(-1)!.event).toBe('phantom_leak'); // a row naming several credentials matches each of them
  });

  it('host: an exact name (case-insensitive) or a glob', () => {
    const { log } = seeded();
    expect(log.tail(100, { host: 'API.OpenAI.com' }).every((r) => r.host === 'api.openai.com')).toBe(true);
    expect(log.tail(100, { host: 'api.openai.com' })).toHaveLength(15);
    expect(log.tail(100, { host: '*.com' })).toHaveLength(30);
    expect(log.tail(100, { host: 'evil.*' }).map((r) => r.event)).toEqual(['phantom_leak']);
  });

  it('event, and filters combined', () => {
    const { log } = seeded();
    expect(log.tail(100, { event: 'cred_failover' }).map((r) => r.credential)).toEqual(['pool-a']);
    const rows = log.tail(3, { event: 'request', host: 'api.anthropic.com', cred: 'work' });
    expect(rows).toHaveLength(3);
    for (const r of rows) expect(r).toMatchObject({ event: 'request', host: 'api.anthropic.com', credential: 'work' });
  });

  it('since: only rows from the last 10m / 2h by the daemon clock', () => {
    const { log } = seeded();
    // 32 rows, one a minute; the clock stands a minute past the last one.
    expect(log.tail(1000, { since: '10m' })).toHaveLength(10);
    expect(log.tail(1000, { since: '2h' })).toHaveLength(32);
    expect(log.tail(1000, { since: '10m', event: 'request' })).toHaveLength(8);
  });

  it("agent: rows carry no agent yet, so only that agent's own start/stop rows match (never everything)", () => {
    const { log } = seeded();
    expect(log.tail(100, { agent: 'claude' })).toEqual([]);
    log.append({ event: 'agent_started', detail: 'claude (a1)' });
    log.append({ event: 'agent_started', detail: 'claude-2 (a2)' });
    log.append({ event: 'agent_stopped', detail: 'claude (a1)' });
    expect(log.tail(100, { agent: 'claude' }).map((r) => [r.event, r.detail])).toEqual([
      ['agent_started', 'claude (a1)'],
      ['agent_stopped', 'claude (a1)'],
    ]);
  });

  it('a bad glob or duration is refused with a clear error', () => {
    const { log } = seeded();
    expect(() => log.tail(5, { host: 'api.[openai.com' })).toThrow(/invalid host glob/);
    expect(() => log.tail(5, { since: '10 minutes' })).toThrow(/since must be a number and a unit/);
  });
});
