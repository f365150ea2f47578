import { describe, expect, it } from 'vitest';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState, type DashboardState } from '../../../src/tui/state/dashboard-state.js';
import {
  approvalRows,
  connectionLabel,
  credentialRows,
  currentSettingText,
  headerView,
  poolRows,
  selectedApproval,
  selectedKey,
} from '../../../src/tui/state/selectors.js';
import type { Snapshot } from '../../../src/shared/protocol/events.js';
import { approval, credStats, credential, ev, iso, pool, snapshot, stats, T0 } from './fixtures.js';

function withSnapshot(over: Partial<Snapshot>): DashboardState {
  return dashboardReducer(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snapshot(over) });
}

describe('approvalRows', () => {
  it('shows host:port, waiters, first method + path, age and time left', () => {
    const s = withSnapshot({ approvals: [approval({ waiters: 8, created_at: iso(T0), expires_at: iso(T0 + 120_000) })] });
    expect(approvalRows(s, T0 + 12_000)).toEqual([
      {
        id: 'ap-1',
        target: 'api.anthropic.com:443',
        waiters: 8,
        method: 'POST',
        path: '/v1/messages',
        ageMs: 12_000,
        leftMs: 108_000,
        answering: null,
        selected: true,
      },
    ]);
  });

  it('never shows negative time left', () => {
    const s = withSnapshot({ approvals: [approval({ expires_at: iso(T0) })] });
    expect(approvalRows(s, T0 + 5000)[0]?.leftMs).toBe(0);
  });

  it('marks the row being answered', () => {
    const s = dashboardReducer(withSnapshot({ approvals: [approval()] }), { type: 'answer-started', id: 'ap-1', decision: 'deny' });
    expect(approvalRows(s, T0)[0]?.answering).toBe('deny');
  });
});

describe('selection', () => {
  it('falls back to the first row when nothing (or a vanished row) is selected', () => {
    const s = withSnapshot({ approvals: [approval({ id: 'x' }), approval({ id: 'y', created_at: iso(T0 + 1) })] });
    expect(selectedKey(s, 'approvals')).toBe('x');
    expect(selectedKey({ ...s, selected: { ...s.selected, approvals: 'gone' } }, 'approvals')).toBe('x');
  });

  it('moves to the next row, not the first, when the selected middle row is resolved', () => {
    let s = withSnapshot({
      approvals: [approval({ id: 'x' }), approval({ id: 'y', created_at: iso(T0 + 1) }), approval({ id: 'z', created_at: iso(T0 + 2) })],
    });
    s = dashboardReducer(s, { type: 'move', delta: 1 });
    s = dashboardReducer(s, { type: 'events', at: T0, events: [ev(2, 'approval.resolved', { id: 'y', decision: 'deny', waiters: 1, reason: 'timeout' })] });
    expect(selectedApproval(s)?.id).toBe('z');
  });
});

describe('credentialRows', () => {
  it('takes live counters from stats and the cap from limits', () => {
    const s = withSnapshot({
      credentials: [credential({ max_concurrent: 8 })],
      stats: stats({}, [credStats({ in_flight: 3, queued: 2, cap: 8, status_2xx: 120, status_4xx: 2, status_5xx: 1, rejected: 4 })]),
    });
    expect(credentialRows(s, T0)[0]).toMatchObject({
      name: 'anthropic',
      inFlight: 3,
      queued: 2,
      cap: 8,
      ok2xx: 120,
      client4xx: 2,
      server5xx: 1,
      rejected: 4,
      cooldownLeftMs: null,
    });
  });

  it('falls back to the credential list before any stats', () => {
    const s = { ...withSnapshot({ credentials: [credential({ max_concurrent: 5, in_flight: 1 })] }), stats: null };
    expect(credentialRows(s, T0)[0]).toMatchObject({ inFlight: 1, cap: 5, ok2xx: 0 });
  });

  it('shows a pool cooldown on the member credential while it runs', () => {
    const s = withSnapshot({
      credentials: [credential({ name: 'alice' })],
      pools: [pool({ members: [{ name: 'alice', healthy: false, cooldown_until: iso(T0 + 60_000), reason: 'rate_limited' }] })],
    });
    expect(credentialRows(s, T0 + 18_000)[0]?.cooldownLeftMs).toBe(42_000);
    expect(credentialRows(s, T0 + 61_000)[0]?.cooldownLeftMs).toBeNull();
  });
});

describe('poolRows', () => {
  it('lists members in order with the active marker and a live countdown', () => {
    const s = withSnapshot({
      pools: [
        pool({
          active: 'bob',
          members: [
            { name: 'alice', healthy: false, cooldown_until: iso(T0 + 60_000), reason: 'rate_limited' },
            { name: 'bob', healthy: true, cooldown_until: null, reason: null },
            { name: 'carol', healthy: false, cooldown_until: null, reason: 'invalid_grant' },
          ],
        }),
      ],
    });
    const row = poolRows(s, T0 + 20_000)[0];
    expect(row?.members.map((m) => [m.name, m.active, m.health, m.cooldownLeftMs])).toEqual([
      ['alice', false, 'cooling', 40_000],
      ['bob', true, 'ok', null],
      ['carol', false, 'down', null],
    ]);
    // The countdown runs with the clock and ends on its own.
    expect(poolRows(s, T0 + 59_000)[0]?.members[0]?.cooldownLeftMs).toBe(1_000);
    expect(poolRows(s, T0 + 60_000)[0]?.members[0]?.health).toBe('ok');
  });
});

describe('header', () => {
  it('shows proxy, auth, rate and global in-flight/cap', () => {
    const s = withSnapshot({
      stats: stats({ in_flight: 5, cap: 16, requests_per_s: 12.5 }, [credStats({ queued: 2 })]),
      limits: { global: 16, credentials: [] },
    });
    expect(headerView(s)).toMatchObject({
      listen: '127.0.0.1:8787',
      auth: 'on',
      requestsPerS: 12.5,
      inFlight: 5,
      globalCap: 16,
      queued: 2,
      pending: 0,
    });
  });

  it('says disconnected while reconnecting', () => {
    const s = dashboardReducer(withSnapshot({}), { type: 'disconnected', attempt: 2, retryAt: T0 + 2000, reason: 'connection closed', at: T0 });
    expect(connectionLabel(headerView(s), T0).text).toBe('✗ disconnected — reconnecting (connection closed, next try in 2s)');
    const retrying = dashboardReducer(s, { type: 'connecting', attempt: 2 });
    expect(connectionLabel(headerView(retrying), T0).text).toContain('disconnected');
  });
});

describe('currentSettingText', () => {
  it('pre-fills the cap, the queue wait and the global cap (empty = unlimited)', () => {
    const s = withSnapshot({ credentials: [credential({ max_concurrent: 8, queue_timeout_ms: 250 })] });
    expect(currentSettingText(s, { kind: 'cred-cap', cred: 'anthropic' })).toBe('8');
    expect(currentSettingText(s, { kind: 'queue-wait', cred: 'anthropic' })).toBe('250');
    expect(currentSettingText(s, { kind: 'global-cap' })).toBe('');
    const capped = dashboardReducer(s, { type: 'limits-saved', limits: { ...s.limits, global: 64 }, message: 'x', at: T0 });
    expect(currentSettingText(capped, { kind: 'global-cap' })).toBe('64');
  });
});
