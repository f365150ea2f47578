/**
 * Everything that can change the dashboard state. Connection actions come from the daemon session,
 * UI actions from key commands, result actions from finished RPC calls. Actions that create
 * time-stamped notices carry `at` (ms since the epoch) so the reducer never reads a clock.
 */
import type { ApprovalDecision, LimitsInfo, Notice } from '../../shared/protocol/entities.js';
import type { PoolInfo, SluiceEvent, Snapshot } from '../../shared/protocol/events.js';
import type { EditTarget, PanelId } from './dashboard-state.js';

/** Connection lifecycle, from the daemon session. */
export type ConnectionAction =
  | { type: 'connecting'; attempt: number; at?: number }
  | { type: 'connected'; at: number }
  | { type: 'disconnected'; attempt: number; retryAt: number | null; reason: string; at: number }
  | { type: 'snapshot'; seq: number; snapshot: Snapshot }
  /** A batch of events in arrival order (batched so a burst costs one render). */
  | { type: 'events'; events: SluiceEvent[]; at: number };

/** Navigation and overlays, from key commands. */
export type UiAction =
  | { type: 'move'; delta: number }
  | { type: 'cycle-panel'; delta: number }
  | { type: 'focus-panel'; panel: PanelId }
  | { type: 'toggle-help' }
  | { type: 'close-help' }
  | { type: 'notice'; level: Notice['level']; kind: string; message: string; at: number };

/** The number field (issue 12). */
export type EditorAction =
  | { type: 'edit-open'; target: EditTarget; value: string }
  | { type: 'edit-type'; digits: string }
  | { type: 'edit-erase' }
  | { type: 'edit-cancel' }
  | { type: 'edit-saving' }
  | { type: 'edit-failed'; message: string };

/** Results of RPC calls made from the dashboard. */
export type ResultAction =
  | { type: 'answer-started'; id: string; decision: ApprovalDecision }
  | { type: 'answer-succeeded'; id: string; target: string; decision: ApprovalDecision; waiters: number; at: number }
  | { type: 'answer-failed'; id: string; target: string; code: string; message: string; at: number }
  | { type: 'pool-rotated'; pool: PoolInfo }
  | { type: 'limits-saved'; limits: LimitsInfo; message: string; at: number };

/** Any dashboard action. */
export type DashboardAction = ConnectionAction | UiAction | EditorAction | ResultAction;
