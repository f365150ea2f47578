/**
 * Applies daemon events to the dashboard state, in seq order. A seq jump or a `gap` event stops the
 * batch and marks the state `resync-needed`: the session then re-subscribes and a fresh snapshot
 * replaces the data. Events at or below the last applied seq are duplicates and are dropped.
 */
import type { ApprovalInfo, LimitsInfo, RecentRequest } from '../../shared/protocol/entities.js';
import type { SluiceEvent } from '../../shared/protocol/events.js';
import type { CredentialUsage } from '../../shared/protocol/usage.js';
import { changeNotice } from './change-notices.js';
import { MAX_RECENT, type DashboardState } from './dashboard-state.js';
import { selectionAfterRemoval, upsertBy, withSelection } from './list-updates.js';
import { addNotice, answerLevel, answerMessage, noticeFromDaemon, resolvedElsewhereMessage } from './notices.js';

/** What to do with an event given the cursor. */
export type SeqVerdict = 'apply' | 'duplicate' | 'gap';

/**
 * Classifies `seq` against the last seq the state reflects: at or below it the event is already in the
 * state (e.g. sent just before a re-subscribe's snapshot), `last + 1` applies, anything higher is a gap.
 */
export function checkSeq(last: number, seq: number): SeqVerdict {
  if (seq <= last) return 'duplicate';
  return seq === last + 1 ? 'apply' : 'gap';
}

/** Applies a batch of events received at `at`. Ignored unless the state is live. */
export function applyEvents(state: DashboardState, events: readonly SluiceEvent[], at: number): DashboardState {
  let s = state;
  for (const event of events) {
    if (s.sync !== 'live' || s.seq === null) return s;
    const verdict = checkSeq(s.seq, event.seq);
    if (verdict === 'duplicate') continue;
    if (verdict === 'gap') return { ...s, sync: 'resync-needed' };
    const change = changeNotice(s, event, at);
    s = applyEvent({ ...s, seq: event.seq }, event, at);
    if (change) s = addNotice(s, change);
  }
  return s;
}

/** "host:port", the approval key users see. */
export function approvalTarget(approval: Pick<ApprovalInfo, 'host' | 'port'>): string {
  return `${approval.host}:${approval.port}`;
}

/** Removes a pending approval and any answer in progress for it, keeping the cursor in place. */
export function removeApproval(state: DashboardState, id: string): DashboardState {
  const keys = state.approvals.map((a) => a.id);
  const selected = selectionAfterRemoval(keys, state.selected.approvals, id);
  const { [id]: _dropped, ...answering } = state.answering;
  return withSelection({ ...state, approvals: state.approvals.filter((a) => a.id !== id), answering }, 'approvals', selected);
}

/**
 * Applies a new limits value everywhere a cap is shown (credentials, stats, limits), so a change made
 * here or by another client shows at once instead of at the next `stats` event.
 */
export function applyLimits(state: DashboardState, limits: LimitsInfo): DashboardState {
  const byName = new Map(limits.credentials.map((c) => [c.name, c]));
  const credentials = state.credentials.map((c) => {
    const l = byName.get(c.name);
    return l ? { ...c, max_concurrent: l.max_concurrent, queue_timeout_ms: l.queue_timeout_ms } : c;
  });
  const stats = state.stats && {
    global: { ...state.stats.global, cap: limits.global },
    credentials: state.stats.credentials.map((c) => {
      const l = byName.get(c.name);
      return l ? { ...c, cap: l.max_concurrent, queue_timeout_ms: l.queue_timeout_ms } : c;
    }),
  };
  return { ...state, limits, credentials, stats };
}

function applyEvent(s: DashboardState, e: SluiceEvent, at: number): DashboardState {
  switch (e.type) {
    case 'request.started':
      // In-flight counts arrive in `stats` (≤10/s); counting here too would double-count.
      return s;
    case 'request.finished':
      return { ...s, recent: [toRecentRequest(e), ...s.recent].slice(0, MAX_RECENT) };
    case 'approval.pending':
      return { ...s, approvals: upsertBy(s.approvals, e.approval, (a) => a.id) };
    case 'approval.updated':
      return { ...s, approvals: s.approvals.map((a) => (a.id === e.id ? { ...a, waiters: e.waiters, ...(e.agents ? { agents: e.agents } : {}) } : a)) };
    case 'approval.resolved':
      return approvalResolved(s, e, at);
    case 'pool.changed':
      if (e.removed) {
        const selected = selectionAfterRemoval(
          s.pools.map((p) => p.name),
          s.selected.pools,
          e.pool.name,
        );
        return withSelection({ ...s, pools: s.pools.filter((p) => p.name !== e.pool.name) }, 'pools', selected);
      }
      return { ...s, pools: upsertBy(s.pools, e.pool, (p) => p.name) };
    case 'cred.failover':
      return failover(s, e);
    case 'cred.changed':
      return credentialChanged(s, e);
    case 'rule.changed':
      return {
        ...s,
        rules: e.action === 'added' ? upsertBy(s.rules, e.rule, (r) => String(r.id)) : s.rules.filter((r) => r.id !== e.rule.id),
      };
    case 'limits.changed':
      return applyLimits(s, e.limits);
    case 'stats':
      return { ...s, stats: e.stats };
    case 'notice':
      return addNotice(s, noticeFromDaemon(e.notice, at));
    case 'usage.updated':
      // The daemon sends the whole list: a credential it no longer reports drops out.
      return { ...s, usage: usageByName(e.credentials) };
    case 'gap':
      return { ...s, sync: 'resync-needed' };
  }
}

/** One usage entry per credential name (the last one wins), in the order the daemon sent them. */
export function usageByName(list: readonly CredentialUsage[] | undefined): CredentialUsage[] {
  if (!list) return [];
  const byName = new Map(list.map((u) => [u.name, u]));
  return [...byName.values()];
}

/** Drops the event envelope (`seq`, `type`) so recent requests are plain RecentRequest values. */
function toRecentRequest(e: Extract<SluiceEvent, { type: 'request.finished' }>): RecentRequest {
  const { seq: _seq, type: _type, ...request } = e;
  return request;
}

function approvalResolved(s: DashboardState, e: Extract<SluiceEvent, { type: 'approval.resolved' }>, at: number): DashboardState {
  const row = s.approvals.find((a) => a.id === e.id);
  const mine = s.answering[e.id];
  const next = removeApproval(s, e.id);
  if (!row) return next;
  const target = approvalTarget(row);
  if (mine === e.decision && e.reason === 'answered') {
    return addNotice(next, { level: answerLevel(e.decision), kind: 'approval', message: answerMessage(e.decision, target, e.waiters), at });
  }
  const level = e.reason === 'answered' ? answerLevel(e.decision) : 'warn';
  return addNotice(next, {
    level,
    kind: 'approval',
    message: resolvedElsewhereMessage(e.reason, e.decision, target, e.waiters),
    at,
  });
}

/**
 * Moves the pool's active marker at once. The words come from the daemon's own `notice` event for the
 * same failover (it also de-duplicates them for 30 s), so none is added here: that would show it twice.
 */
function failover(s: DashboardState, e: Extract<SluiceEvent, { type: 'cred.failover' }>): DashboardState {
  if (e.to === null) return s;
  return { ...s, pools: s.pools.map((p) => (p.name === e.pool ? { ...p, active: e.to } : p)) };
}

function credentialChanged(s: DashboardState, e: Extract<SluiceEvent, { type: 'cred.changed' }>): DashboardState {
  if (e.action === 'removed' || e.credential === null) {
    const keys = s.credentials.map((c) => c.name);
    const selected = selectionAfterRemoval(keys, s.selected.credentials, e.name);
    const credentials = s.credentials.filter((c) => c.name !== e.name);
    return withSelection({ ...s, credentials, usage: s.usage.filter((u) => u.name !== e.name) }, 'credentials', selected);
  }
  return { ...s, credentials: upsertBy(s.credentials, e.credential, (c) => c.name) };
}
