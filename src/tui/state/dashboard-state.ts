/**
 * The dashboard's whole state as one plain, immutable value. Everything the screen shows is derived from
 * it by pure selectors; only the reducer produces new values. Time never lives here implicitly: actions
 * that create time-stamped things carry `at` from the injected clock.
 */
import type {
  ApprovalDecision,
  ApprovalInfo,
  CredentialInfo,
  DaemonStatus,
  LimitsInfo,
  RecentRequest,
  RuleInfo,
  StatsSnapshot,
} from '../../shared/protocol/entities.js';
import type { PoolInfo } from '../../shared/protocol/events.js';
import type { CredentialUsage } from '../../shared/protocol/usage.js';

/** The panels that can hold focus, in `tab` order. */
export type PanelId = 'approvals' | 'credentials' | 'pools';

/** `tab` order of the focusable panels: approvals first because they block agents. */
export const PANEL_ORDER: readonly PanelId[] = ['approvals', 'credentials', 'pools'];

/** Where the connection to the daemon stands. */
export type ConnectionState =
  | { phase: 'connecting'; attempt: number; /** When this attempt began (absent before the first). */ since?: number }
  | { phase: 'connected' }
  | { phase: 'disconnected'; attempt: number; retryAt: number | null; reason: string };

/**
 * Whether the state mirrors the daemon: `waiting` before the first snapshot, `live` while events apply in
 * order, `resync-needed` after a seq jump or a `gap` event (a fresh snapshot must replace the state).
 */
export type SyncState = 'waiting' | 'live' | 'resync-needed';

/** A notice as the dashboard lists it; `repeats` counts identical notices folded into this one. */
export interface DashboardNotice {
  id: number;
  at: number;
  level: 'info' | 'warn' | 'error';
  kind: string;
  message: string;
  repeats: number;
}

/** What a number field edits. */
export type EditTarget = { kind: 'cred-cap'; cred: string } | { kind: 'global-cap' } | { kind: 'queue-wait'; cred: string };

/**
 * The open number field. `pristine` means the pre-filled value is still "selected": the first digit
 * replaces it, as in a pre-selected input, so typing `12` over a pre-filled `8` gives `12`, not `812`.
 */
export interface EditorState {
  target: EditTarget;
  initial: string;
  text: string;
  pristine: boolean;
  saving: boolean;
  serverError: string | null;
}

/** The selected item's key per panel (approval id, credential name, pool name); null = first row. */
export interface Selection {
  approvals: string | null;
  credentials: string | null;
  pools: string | null;
}

/** The dashboard state. */
export interface DashboardState {
  connection: ConnectionState;
  sync: SyncState;
  /**
   * The seq of the last event the state reflects: the snapshot's seq, then each applied event's. The
   * daemon's snapshot seq is that of the last event sent before it, so the next event to apply is seq + 1.
   */
  seq: number | null;
  daemon: DaemonStatus | null;
  credentials: CredentialInfo[];
  rules: RuleInfo[];
  pools: PoolInfo[];
  /** Pending approvals in arrival order. */
  approvals: ApprovalInfo[];
  limits: LimitsInfo;
  stats: StatsSnapshot | null;
  /**
   * Usage, budget and headroom per credential, one entry per name (issue 24). Replaced whole by each
   * snapshot and `usage.updated`; empty for a daemon that reports none, which then shows nothing new.
   */
  usage: CredentialUsage[];
  recent: RecentRequest[];
  /** Oldest first; bounded by {@link MAX_NOTICES}. */
  notices: DashboardNotice[];
  nextNoticeId: number;
  /** Approvals this dashboard has answered and the daemon has not yet confirmed, by id. */
  answering: Record<string, ApprovalDecision>;
  focus: PanelId;
  selected: Selection;
  editor: EditorState | null;
  helpOpen: boolean;
}

/** How many notices the dashboard keeps. */
export const MAX_NOTICES = 100;

/** How many recent requests the dashboard keeps. */
export const MAX_RECENT = 50;

/** The state before anything is known. */
export const initialDashboardState: DashboardState = {
  connection: { phase: 'connecting', attempt: 0 },
  sync: 'waiting',
  seq: null,
  daemon: null,
  credentials: [],
  rules: [],
  pools: [],
  approvals: [],
  limits: { global: null, credentials: [] },
  stats: null,
  usage: [],
  recent: [],
  notices: [],
  nextNoticeId: 1,
  answering: {},
  focus: 'approvals',
  selected: { approvals: null, credentials: null, pools: null },
  editor: null,
  helpOpen: false,
};
