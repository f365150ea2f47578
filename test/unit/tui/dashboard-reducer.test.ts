import { describe, expect, it } from 'vitest';
import type { DashboardAction } from '../../../src/tui/state/dashboard-actions.js';
import { dashboardReducer } from '../../../src/tui/state/dashboard-reducer.js';
import { initialDashboardState, type DashboardState } from '../../../src/tui/state/dashboard-state.js';
import type { SluiceEvent } from '../../../src/shared/protocol/events.js';
import { approval, credStats, credential, ev, iso, pool, snapshot, stats, T0 } from './fixtures.js';

function run(state: DashboardState, ...actions: DashboardAction[]): DashboardState {
  return actions.reduce(dashboardReducer, state);
}

/** A live state after a snapshot at seq 10 with two pending approvals and one pool. */
function live(): DashboardState {
  return run(
    initialDashboardState,
    { type: 'connected', at: T0 },
    {
      type: 'snapshot',
      seq: 10,
      snapshot: snapshot({
        approvals: [approval({ id: 'a1', waiters: 3 }), approval({ id: 'a2', host: 'api.openai.com', created_at: iso(T0 + 1000) })],
        pools: [pool()],
        credentials: [credential(), credential({ name: 'openai', max_concurrent: 4 })],
      }),
    },
  );
}

function events(state: DashboardState, ...evs: SluiceEvent[]): DashboardState {
  return dashboardReducer(state, { type: 'events', events: evs, at: T0 + 5000 });
}

describe('snapshot', () => {
  it('replaces the daemon data and goes live at the snapshot seq', () => {
    const s = live();
    expect(s.sync).toBe('live');
    expect(s.seq).toBe(10);
    expect(s.approvals.map((a) => a.id)).toEqual(['a1', 'a2']);
    expect(s.credentials.map((c) => c.name)).toEqual(['anthropic', 'openai']);
    expect(s.daemon?.proxy.listen).toBe('127.0.0.1:8787');
  });

  it('orders approvals by arrival', () => {
    const s = run(
      initialDashboardState,
      { type: 'connected', at: T0 },
      {
        type: 'snapshot',
        seq: 1,
        snapshot: snapshot({ approvals: [approval({ id: 'late', created_at: iso(T0 + 9000) }), approval({ id: 'early' })] }),
      },
    );
    expect(s.approvals.map((a) => a.id)).toEqual(['early', 'late']);
  });

  it('adds snapshot notices once, even when a re-subscribe repeats them', () => {
    const notice = { ts: iso(T0), level: 'warn' as const, kind: 'cap', message: 'anthropic at cap 8' };
    const snap = snapshot({ notices: [notice] });
    const s = run(initialDashboardState, { type: 'snapshot', seq: 1, snapshot: snap }, { type: 'snapshot', seq: 5, snapshot: snap });
    expect(s.notices.map((n) => n.message)).toEqual(['anthropic at cap 8']);
  });

  it('ignores events before the first snapshot', () => {
    const s = run(initialDashboardState, { type: 'connected', at: T0 });
    const next = events(s, ev(1, 'approval.pending', { approval: approval() }));
    expect(next.approvals).toEqual([]);
  });
});

describe('seq handling', () => {
  it('drops events the snapshot already covers and applies the next one', () => {
    expect(events(live(), ev(10, 'approval.updated', { id: 'a1', waiters: 5 })).approvals[0]?.waiters).toBe(3);
    expect(events(live(), ev(11, 'approval.updated', { id: 'a1', waiters: 6 })).approvals[0]?.waiters).toBe(6);
  });

  it('applies consecutive events and drops duplicates', () => {
    const s = events(
      live(),
      ev(11, 'approval.updated', { id: 'a1', waiters: 5 }),
      ev(12, 'approval.updated', { id: 'a1', waiters: 7 }),
      ev(12, 'approval.updated', { id: 'a1', waiters: 99 }),
    );
    expect(s.approvals[0]?.waiters).toBe(7);
    expect(s.seq).toBe(12);
    expect(s.sync).toBe('live');
  });

  it('marks resync-needed on a seq jump and stops applying the batch', () => {
    const s = events(
      live(),
      ev(11, 'approval.updated', { id: 'a1', waiters: 5 }),
      ev(13, 'approval.updated', { id: 'a1', waiters: 9 }),
      ev(14, 'approval.updated', { id: 'a1', waiters: 10 }),
    );
    expect(s.sync).toBe('resync-needed');
    expect(s.approvals[0]?.waiters).toBe(5);
  });

  it('marks resync-needed on a gap event and applies nothing after it', () => {
    const s = events(live(), ev(11, 'gap', { dropped: 40 }), ev(12, 'approval.updated', { id: 'a1', waiters: 77 }));
    expect(s.sync).toBe('resync-needed');
    expect(s.approvals[0]?.waiters).toBe(3);
  });

  it('ignores further events while a resync is needed, and a new snapshot makes it live again', () => {
    let s = events(live(), ev(11, 'gap', { dropped: 1 }));
    s = events(s, ev(12, 'approval.updated', { id: 'a1', waiters: 50 }));
    expect(s.approvals[0]?.waiters).toBe(3);
    s = dashboardReducer(s, { type: 'snapshot', seq: 40, snapshot: snapshot({ approvals: [approval({ id: 'a9' })] }) });
    expect(s.sync).toBe('live');
    expect(s.approvals.map((a) => a.id)).toEqual(['a9']);
    s = events(s, ev(40, 'approval.updated', { id: 'a9', waiters: 2 }), ev(41, 'approval.updated', { id: 'a9', waiters: 4 }));
    expect(s.approvals[0]?.waiters).toBe(4);
  });
});

describe('events', () => {
  it('request.started only advances seq (in-flight comes from stats)', () => {
    const before = live();
    const s = events(before, ev(11, 'request.started', { id: 'r1', host: 'h', port: 443, method: 'GET', path: '/', credential: 'anthropic' }));
    expect(s.seq).toBe(11);
    expect({ ...s, seq: before.seq }).toEqual(before);
  });

  it('request.finished is kept as a recent request without the envelope', () => {
    const s = events(
      live(),
      ev(11, 'request.finished', {
        id: 'r1',
        ts: iso(T0),
        host: 'api.anthropic.com',
        port: 443,
        method: 'POST',
        path: '/v1/messages',
        credential: 'anthropic',
        status: 200,
        outcome: 'ok',
        duration_ms: 12,
      }),
    );
    expect(s.recent[0]).toMatchObject({ id: 'r1', status: 200 });
    expect(s.recent[0]).not.toHaveProperty('seq');
  });

  it('approval.pending appends a new destination, and replaces a known id in place', () => {
    let s = events(live(), ev(11, 'approval.pending', { approval: approval({ id: 'a3', host: 'auth.openai.com' }) }));
    expect(s.approvals.map((a) => a.id)).toEqual(['a1', 'a2', 'a3']);
    s = events(s, ev(12, 'approval.pending', { approval: approval({ id: 'a1', waiters: 9 }) }));
    expect(s.approvals.map((a) => `${a.id}:${a.waiters}`)).toEqual(['a1:9', 'a2:1', 'a3:1']);
  });

  it('approval.updated sets the waiter count', () => {
    expect(events(live(), ev(11, 'approval.updated', { id: 'a2', waiters: 12 })).approvals[1]?.waiters).toBe(12);
  });

  it('approval.resolved removes the row and explains a timeout', () => {
    const s = events(live(), ev(11, 'approval.resolved', { id: 'a1', decision: 'deny', waiters: 3, reason: 'timeout' }));
    expect(s.approvals.map((a) => a.id)).toEqual(['a2']);
    expect(s.notices.at(-1)?.message).toBe('api.anthropic.com:443 timed out unanswered: denied 3 requests');
  });

  it('approval.resolved by another client says so', () => {
    const s = events(live(), ev(11, 'approval.resolved', { id: 'a1', decision: 'allow_once', waiters: 3, reason: 'answered' }));
    expect(s.notices.at(-1)?.message).toBe('allowed api.anthropic.com:443 (3 requests) by another client');
  });

  it('pool.changed replaces the pool', () => {
    const s = events(live(), ev(11, 'pool.changed', { pool: pool({ active: 'bob' }) }));
    expect(s.pools[0]?.active).toBe('bob');
  });

  it('cred.failover moves the active member at once (the daemon sends the words as a notice)', () => {
    const s = events(live(), ev(11, 'cred.failover', { pool: 'codex', from: 'alice', to: 'bob', reason: 'rate_limited' }));
    expect(s.pools[0]?.active).toBe('bob');
    expect(s.notices).toEqual([]);
  });

  it('cred.failover with no healthy member keeps the active member', () => {
    const s = events(live(), ev(11, 'cred.failover', { pool: 'codex', from: 'alice', to: null, reason: 'rate_limited' }));
    expect(s.pools[0]?.active).toBe('alice');
  });

  it('cred.changed adds, updates and removes credentials', () => {
    let s = events(live(), ev(11, 'cred.changed', { action: 'added', name: 'groq', credential: credential({ name: 'groq' }) }));
    expect(s.credentials.map((c) => c.name)).toEqual(['anthropic', 'openai', 'groq']);
    s = events(s, ev(12, 'cred.changed', { action: 'updated', name: 'groq', credential: credential({ name: 'groq', max_concurrent: 2 }) }));
    expect(s.credentials[2]?.max_concurrent).toBe(2);
    s = events(s, ev(13, 'cred.changed', { action: 'removed', name: 'openai', credential: null }));
    expect(s.credentials.map((c) => c.name)).toEqual(['anthropic', 'groq']);
  });

  it('rule.changed adds and removes rules', () => {
    const rule = {
      id: 7,
      verdict: 'allow' as const,
      host: 'api.x.com',
      port: 443,
      method: null,
      path: null,
      coalesce: true,
      source: 'approval' as const,
      created_at: iso(T0),
    };
    let s = events(live(), ev(11, 'rule.changed', { action: 'added', rule }));
    expect(s.rules.map((r) => r.id)).toEqual([7]);
    s = events(s, ev(12, 'rule.changed', { action: 'removed', rule }));
    expect(s.rules).toEqual([]);
  });

  it('limits.changed shows the new caps everywhere at once', () => {
    const s = events(
      live(),
      ev(11, 'limits.changed', {
        limits: { global: 32, credentials: [{ name: 'anthropic', max_concurrent: 12, queue_timeout_ms: 500, in_flight: 0, queued: 0 }] },
      }),
    );
    expect(s.limits.global).toBe(32);
    expect(s.credentials[0]).toMatchObject({ max_concurrent: 12, queue_timeout_ms: 500 });
    expect(s.stats?.credentials[0]?.cap).toBe(12);
    expect(s.stats?.global.cap).toBe(32);
  });

  it('stats replaces the counters', () => {
    const s = events(live(), ev(11, 'stats', { stats: stats({ in_flight: 3, requests_per_s: 4.5 }, [credStats({ in_flight: 3 })]) }));
    expect(s.stats?.global.in_flight).toBe(3);
    expect(s.stats?.credentials[0]?.in_flight).toBe(3);
  });

  it('notice is listed, and identical notices fold into one line with a count', () => {
    const n = { ts: iso(T0), level: 'warn' as const, kind: 'cap_reject', message: 'anthropic refused: cap 8' };
    const s = events(live(), ev(11, 'notice', { notice: n }), ev(12, 'notice', { notice: { ...n, ts: iso(T0 + 1000) } }));
    expect(s.notices).toHaveLength(1);
    expect(s.notices[0]).toMatchObject({ message: 'anthropic refused: cap 8', repeats: 2 });
  });
});

describe('answering approvals', () => {
  it('reply first: the row goes and one notice says what happened', () => {
    let s = run(live(), { type: 'answer-started', id: 'a1', decision: 'allow_once' });
    expect(s.answering).toEqual({ a1: 'allow_once' });
    s = run(s, { type: 'answer-succeeded', id: 'a1', target: 'api.anthropic.com:443', decision: 'allow_once', waiters: 8, at: T0 });
    s = events(s, ev(11, 'approval.resolved', { id: 'a1', decision: 'allow_once', waiters: 8, reason: 'answered' }));
    expect(s.approvals.map((a) => a.id)).toEqual(['a2']);
    expect(s.notices.map((n) => [n.message, n.repeats])).toEqual([['allowed api.anthropic.com:443 (8 requests)', 1]]);
    expect(s.answering).toEqual({});
  });

  it('event first: the same single notice', () => {
    let s = run(live(), { type: 'answer-started', id: 'a1', decision: 'always_allow' });
    s = events(s, ev(11, 'approval.resolved', { id: 'a1', decision: 'always_allow', waiters: 8, reason: 'answered' }));
    s = run(s, { type: 'answer-succeeded', id: 'a1', target: 'api.anthropic.com:443', decision: 'always_allow', waiters: 8, at: T0 });
    expect(s.notices.map((n) => [n.message, n.repeats])).toEqual([['always allowing api.anthropic.com:443: rule saved (8 requests)', 1]]);
  });

  it('already resolved elsewhere removes the row and says so', () => {
    let s = run(live(), { type: 'answer-started', id: 'a1', decision: 'deny' });
    s = run(s, { type: 'answer-failed', id: 'a1', target: 'api.anthropic.com:443', code: 'already_resolved', message: 'x', at: T0 });
    expect(s.approvals.map((a) => a.id)).toEqual(['a2']);
    expect(s.notices.at(-1)?.message).toBe('api.anthropic.com:443 was already answered');
  });

  it('another failure keeps the row and shows the error', () => {
    let s = run(live(), { type: 'answer-started', id: 'a1', decision: 'deny' });
    s = run(s, { type: 'answer-failed', id: 'a1', target: 'api.anthropic.com:443', code: 'daemon_unreachable', message: 'not connected to sluiced', at: T0 });
    expect(s.approvals).toHaveLength(2);
    expect(s.answering).toEqual({});
    expect(s.notices.at(-1)).toMatchObject({ level: 'error', message: 'could not answer api.anthropic.com:443: not connected to sluiced' });
  });

  it('keeps the cursor in place when the selected row goes', () => {
    let s = run(live(), { type: 'move', delta: 0 });
    s = run(
      s,
      { type: 'answer-started', id: 'a1', decision: 'deny' },
      { type: 'answer-succeeded', id: 'a1', target: 't', decision: 'deny', waiters: 1, at: T0 },
    );
    expect(s.selected.approvals).toBe('a2');
  });
});

describe('connection', () => {
  it('disconnect shows the state, drops the dead prompts and adds one notice', () => {
    const s = run(live(), { type: 'disconnected', attempt: 1, retryAt: T0 + 250, reason: 'connection closed', at: T0 });
    expect(s.connection).toEqual({ phase: 'disconnected', attempt: 1, retryAt: T0 + 250, reason: 'connection closed' });
    expect(s.approvals).toEqual([]);
    expect(s.sync).toBe('waiting');
    const again = run(s, { type: 'connecting', attempt: 1 }, { type: 'disconnected', attempt: 2, retryAt: null, reason: 'daemon not answering', at: T0 + 300 });
    expect(again.notices.filter((n) => n.kind === 'disconnect')).toHaveLength(1);
  });

  it('reconnect goes live again from the new snapshot', () => {
    let s = run(
      live(),
      { type: 'disconnected', attempt: 1, retryAt: null, reason: 'x', at: T0 },
      { type: 'connecting', attempt: 1 },
      { type: 'connected', at: T0 },
    );
    expect(s.connection.phase).toBe('connected');
    expect(s.sync).toBe('waiting');
    expect(s.notices.map((n) => n.message)).toEqual(['disconnected from sluiced (x); reconnecting', 'reconnected to sluiced']);
    s = run(s, { type: 'snapshot', seq: 3, snapshot: snapshot({ approvals: [approval({ id: 'new' })] }) });
    expect(s.sync).toBe('live');
    expect(s.approvals.map((a) => a.id)).toEqual(['new']);
  });
});

describe('selection and panels', () => {
  it('moves within the focused panel and clamps at the ends', () => {
    let s = run(live(), { type: 'move', delta: 1 });
    expect(s.selected.approvals).toBe('a2');
    s = run(s, { type: 'move', delta: 1 });
    expect(s.selected.approvals).toBe('a2');
    s = run(s, { type: 'move', delta: -5 });
    expect(s.selected.approvals).toBe('a1');
  });

  it('keeps the selected destination when new prompts arrive', () => {
    let s = run(live(), { type: 'move', delta: 1 });
    s = events(s, ev(11, 'approval.pending', { approval: approval({ id: 'a0', created_at: iso(T0 - 1000) }) }));
    expect(s.selected.approvals).toBe('a2');
  });

  it('tab cycles approvals → credentials → pools → approvals, shift-tab backwards', () => {
    let s = run(live(), { type: 'cycle-panel', delta: 1 });
    expect(s.focus).toBe('credentials');
    s = run(s, { type: 'cycle-panel', delta: 1 }, { type: 'cycle-panel', delta: 1 });
    expect(s.focus).toBe('approvals');
    expect(run(s, { type: 'cycle-panel', delta: -1 }).focus).toBe('pools');
  });

  it('moves the credential selection when credentials are focused', () => {
    const s = run(live(), { type: 'focus-panel', panel: 'credentials' }, { type: 'move', delta: 1 });
    expect(s.selected.credentials).toBe('openai');
    expect(s.selected.approvals).toBeNull();
  });

  it('toggles help', () => {
    const s = run(live(), { type: 'toggle-help' });
    expect(s.helpOpen).toBe(true);
    expect(run(s, { type: 'close-help' }).helpOpen).toBe(false);
  });
});

describe('results', () => {
  it('pool-rotated shows the new active member at once', () => {
    const s = run(live(), { type: 'pool-rotated', pool: pool({ active: 'bob' }) });
    expect(s.pools[0]?.active).toBe('bob');
  });

  it('limits-saved closes the field and shows the new cap at once', () => {
    let s = run(live(), { type: 'edit-open', target: { kind: 'cred-cap', cred: 'anthropic' }, value: '8' }, { type: 'edit-type', digits: '12' });
    s = run(s, {
      type: 'limits-saved',
      limits: { global: null, credentials: [{ name: 'anthropic', max_concurrent: 12, queue_timeout_ms: 0, in_flight: 0, queued: 0 }] },
      message: 'cap for anthropic: 8 → 12 (applies to the next request)',
      at: T0,
    });
    expect(s.editor).toBeNull();
    expect(s.stats?.credentials[0]?.cap).toBe(12);
    expect(s.notices.at(-1)?.message).toContain('8 → 12');
  });

  it('edit-failed keeps the field open with the reason', () => {
    let s = run(live(), { type: 'edit-open', target: { kind: 'global-cap' }, value: '' }, { type: 'edit-saving' });
    expect(s.editor?.saving).toBe(true);
    s = run(s, { type: 'edit-failed', message: 'not connected to sluiced' });
    expect(s.editor).toMatchObject({ saving: false, serverError: 'not connected to sluiced' });
  });
});
