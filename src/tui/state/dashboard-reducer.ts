/**
 * The dashboard reducer: `(state, action) => state`, pure. Snapshots replace the daemon data, events are
 * applied in seq order by the event reducer, and UI actions move the selection, open overlays and the
 * number field. Answers to approvals are tracked so a result shows exactly once whichever of the RPC
 * reply and the `approval.resolved` event arrives first.
 */
import type { Snapshot } from '../../shared/protocol/events.js';
import type { DashboardAction, ResultAction } from './dashboard-actions.js';
import { MAX_NOTICES, MAX_RECENT, PANEL_ORDER, type DashboardState } from './dashboard-state.js';
import { applyEvents, applyLimits, removeApproval, usageByName } from './event-reducer.js';
import { withSelection } from './list-updates.js';
import { eraseDigit, openEditor, typeDigits } from './number-editor.js';
import { addNotice, answerLevel, answerMessage, noticeFromDaemon } from './notices.js';
import { movedKey } from './selectors.js';

/** The dashboard reducer. */
export function dashboardReducer(state: DashboardState, action: DashboardAction): DashboardState {
  switch (action.type) {
    case 'connecting':
      return { ...state, connection: { phase: 'connecting', attempt: action.attempt, ...(action.at === undefined ? {} : { since: action.at }) } };
    case 'connected': {
      const next: DashboardState = { ...state, connection: { phase: 'connected' }, sync: 'waiting', seq: null };
      const wasDown = state.connection.phase !== 'connected' && state.connection.attempt > 0;
      return wasDown ? addNotice(next, { level: 'info', kind: 'disconnect', message: 'reconnected to sluiced', at: action.at }) : next;
    }
    case 'disconnected':
      return disconnected(state, action);
    case 'snapshot':
      return applySnapshot(state, action.seq, action.snapshot);
    case 'events':
      return applyEvents(state, action.events, action.at);
    case 'move': {
      const key = movedKey(state, state.focus, action.delta);
      return key === null ? state : withSelection(state, state.focus, key);
    }
    case 'cycle-panel': {
      const index = PANEL_ORDER.indexOf(state.focus);
      const n = PANEL_ORDER.length;
      const focus = PANEL_ORDER[(((index + action.delta) % n) + n) % n] ?? state.focus;
      return { ...state, focus };
    }
    case 'focus-panel':
      return { ...state, focus: action.panel };
    case 'toggle-help':
      return { ...state, helpOpen: !state.helpOpen };
    case 'close-help':
      return { ...state, helpOpen: false };
    case 'notice':
      return addNotice(state, action);
    case 'edit-open':
      return { ...state, editor: openEditor(action.target, action.value), helpOpen: false };
    case 'edit-type':
      return state.editor ? { ...state, editor: typeDigits(state.editor, action.digits) } : state;
    case 'edit-erase':
      return state.editor ? { ...state, editor: eraseDigit(state.editor) } : state;
    case 'edit-cancel':
      return { ...state, editor: null };
    case 'edit-saving':
      return state.editor ? { ...state, editor: { ...state.editor, saving: true, serverError: null } } : state;
    case 'edit-failed':
      return state.editor ? { ...state, editor: { ...state.editor, saving: false, serverError: action.message } } : state;
    default:
      return applyResult(state, action);
  }
}

function applyResult(state: DashboardState, action: ResultAction): DashboardState {
  switch (action.type) {
    case 'answer-started':
      return { ...state, answering: { ...state.answering, [action.id]: action.decision } };
    case 'answer-succeeded': {
      // The `approval.resolved` event may have arrived first and already shown the result.
      if (!(action.id in state.answering)) return state;
      const next = removeApproval(state, action.id);
      const message = answerMessage(action.decision, action.target, action.waiters);
      return addNotice(next, { level: answerLevel(action.decision), kind: 'approval', message, at: action.at });
    }
    case 'answer-failed': {
      const wasMine = action.id in state.answering;
      const listed = state.approvals.some((a) => a.id === action.id);
      const gone = action.code === 'already_resolved' || action.code === 'unknown_approval';
      if (gone) {
        const next = removeApproval(state, action.id);
        // Nothing to add when the resolved event already explained what happened.
        if (!wasMine && !listed) return next;
        return addNotice(next, { level: 'warn', kind: 'approval', message: `${action.target} was already answered`, at: action.at });
      }
      const { [action.id]: _dropped, ...answering } = state.answering;
      return addNotice(
        { ...state, answering },
        { level: 'error', kind: 'approval', message: `could not answer ${action.target}: ${action.message}`, at: action.at },
      );
    }
    case 'pool-rotated':
      // The active marker moves at once; the daemon announces the switch (or exhaustion) as a notice.
      return { ...state, pools: state.pools.map((p) => (p.name === action.pool.name ? action.pool : p)) };
    case 'limits-saved': {
      const next = applyLimits({ ...state, editor: null }, action.limits);
      return addNotice(next, { level: 'info', kind: 'limits', message: action.message, at: action.at });
    }
  }
}

function disconnected(state: DashboardState, action: Extract<DashboardAction, { type: 'disconnected' }>): DashboardState {
  const wasUp = state.connection.phase === 'connected';
  const next: DashboardState = {
    ...state,
    connection: { phase: 'disconnected', attempt: action.attempt, retryAt: action.retryAt, reason: action.reason },
    sync: 'waiting',
    seq: null,
    // The daemon denies every pending prompt when it stops, and answers can no longer be sent.
    approvals: [],
    answering: {},
    editor: state.editor && state.editor.saving ? { ...state.editor, saving: false } : state.editor,
  };
  if (!wasUp) return next;
  return addNotice(next, { level: 'error', kind: 'disconnect', message: `disconnected from sluiced (${action.reason}); reconnecting`, at: action.at });
}

function applySnapshot(state: DashboardState, seq: number, snap: Snapshot): DashboardState {
  const approvals = [...snap.approvals].sort((a, b) => Date.parse(a.created_at) - Date.parse(b.created_at));
  const ids = new Set(approvals.map((a) => a.id));
  const answering = Object.fromEntries(Object.entries(state.answering).filter(([id]) => ids.has(id)));
  const base: DashboardState = {
    ...state,
    // A snapshot can only have come over a live connection.
    connection: { phase: 'connected' },
    sync: 'live',
    seq,
    daemon: snap.status,
    credentials: snap.credentials,
    rules: snap.rules,
    pools: snap.pools,
    approvals,
    stats: snap.stats,
    // A daemon from before issue 24 sends no usage: nothing is shown for it.
    usage: usageByName(snap.usage),
    recent: snap.recent_requests.slice(0, MAX_RECENT),
    answering,
  };
  return mergeSnapshotNotices(applyLimits(base, snap.limits), snap);
}

/** Adds the snapshot's notices that are not already listed (a re-subscribe repeats the recent ones). */
function mergeSnapshotNotices(state: DashboardState, snap: Snapshot): DashboardState {
  const seen = new Set(state.notices.map((n) => `${n.at}|${n.kind}|${n.message}`));
  let id = state.nextNoticeId;
  const fresh = snap.notices
    .map((n) => noticeFromDaemon(n, 0))
    .filter((n) => !seen.has(`${n.at}|${n.kind}|${n.message}`))
    .map((n) => ({ ...n, id: id++, repeats: 1 }));
  if (fresh.length === 0) return state;
  const notices = [...state.notices, ...fresh].sort((a, b) => a.at - b.at || a.id - b.id).slice(-MAX_NOTICES);
  return { ...state, notices, nextNoticeId: id };
}
