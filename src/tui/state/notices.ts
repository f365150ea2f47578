/**
 * Notice list handling and the wording of notices the dashboard writes itself. Pure: every function takes
 * the state (or plain values) and returns new values.
 */
import type { ApprovalDecision, Notice } from '../../shared/protocol/entities.js';
import { MAX_NOTICES, type DashboardNotice, type DashboardState } from './dashboard-state.js';

/** Identical notices (same kind and text) within this window fold into one line with a repeat count. */
export const NOTICE_FOLD_MS = 30_000;

/** A notice to add; `at` is when it happened (ms since the epoch). */
export interface NoticeInput {
  level: Notice['level'];
  kind: string;
  message: string;
  at: number;
}

/**
 * Appends a notice, folding it into the newest one when that has the same kind and text and is under
 * {@link NOTICE_FOLD_MS} old, so a burst of identical warnings costs one line. Keeps the newest
 * {@link MAX_NOTICES}.
 */
export function addNotice(state: DashboardState, input: NoticeInput): DashboardState {
  const last = state.notices[state.notices.length - 1];
  if (last && last.kind === input.kind && last.message === input.message && input.at - last.at < NOTICE_FOLD_MS) {
    const folded: DashboardNotice = { ...last, at: input.at, repeats: last.repeats + 1, level: input.level };
    return { ...state, notices: [...state.notices.slice(0, -1), folded] };
  }
  const notice: DashboardNotice = { id: state.nextNoticeId, repeats: 1, ...input };
  const notices = [...state.notices, notice].slice(-MAX_NOTICES);
  return { ...state, notices, nextNoticeId: state.nextNoticeId + 1 };
}

/** Converts notices from a snapshot or a `notice` event (ISO time) into dashboard notices. */
export function noticeFromDaemon(notice: Notice, fallbackAt: number): NoticeInput {
  const parsed = Date.parse(notice.ts);
  return {
    level: notice.level,
    kind: notice.kind,
    message: notice.message,
    at: Number.isFinite(parsed) ? parsed : fallbackAt,
  };
}

/** "1 request" / "8 requests". */
export function requestCount(n: number): string {
  return `${n} request${n === 1 ? '' : 's'}`;
}

/** What the user sees right after answering a prompt, e.g. "allowed api.anthropic.com:443 (8 requests)". */
export function answerMessage(decision: ApprovalDecision, target: string, waiters: number): string {
  const count = requestCount(waiters);
  switch (decision) {
    case 'allow_once':
      return `allowed ${target} (${count})`;
    case 'always_allow':
      return `always allowing ${target}: rule saved (${count})`;
    case 'deny':
      return `denied ${target} (${count})`;
    case 'always_deny':
      return `always denying ${target}: rule saved (${count})`;
  }
}

/** Level of the notice for a decision: allowing is routine, denying is worth a second look. */
export function answerLevel(decision: ApprovalDecision): Notice['level'] {
  return decision === 'allow_once' || decision === 'always_allow' ? 'info' : 'warn';
}

/** The notice for a prompt resolved elsewhere (another client, the timeout, or shutdown). */
export function resolvedElsewhereMessage(reason: 'answered' | 'timeout' | 'shutdown', decision: ApprovalDecision, target: string, waiters: number): string {
  if (reason === 'timeout') return `${target} timed out unanswered: denied ${requestCount(waiters)}`;
  if (reason === 'shutdown') return `${target} denied: daemon shutting down (${requestCount(waiters)})`;
  return `${answerMessage(decision, target, waiters)} by another client`;
}
