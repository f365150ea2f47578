/**
 * Events the daemon publishes to subscribers. Each notification is the JSON-RPC notification `event` with
 * params `{seq, type, ...payload}`; `seq` increases by exactly one per event on a connection, so a client
 * that sees a jump knows it missed something and re-subscribes to get a fresh snapshot.
 */
import type { ApprovalDecision, ApprovalInfo, CredentialInfo, DaemonStatus, LimitsInfo, Notice, RecentRequest, RuleInfo, StatsSnapshot } from './entities.js';
import type { CredentialUsage } from './usage.js';

/** A pool as dashboards see it (filled in once pools land; empty list until then). */
export interface PoolInfo {
  name: string;
  phantom: string;
  /** OAuth pools: the stable phantom the agent uses as its refresh token. */
  phantom_refresh: string | null;
  active: string | null;
  members: { name: string; healthy: boolean; cooldown_until: string | null; reason: string | null }[];
  /** `--rotate-below PCT`: move off a member whose headroom fell below PCT % (null: off). */
  rotate_below?: number | null;
  /** `--plan-limits-only`: a member that moved to paid overage counts as exhausted. */
  plan_limits_only?: boolean;
}

/** Payload per event type. */
export interface EventPayloads {
  'request.started': { id: string; host: string; port: number; method: string; path: string; credential: string | null };
  'request.finished': RecentRequest;
  'approval.pending': { approval: ApprovalInfo };
  'approval.updated': { id: string; waiters: number; agents?: string[] };
  'approval.resolved': { id: string; decision: ApprovalDecision; waiters: number; reason: 'answered' | 'timeout' | 'shutdown' };
  /** `removed: true` when the pool was removed (`pool` is then its last state). */
  'pool.changed': { pool: PoolInfo; removed?: true };
  'cred.failover': { pool: string; from: string; to: string | null; reason: string };
  'cred.changed': { action: 'added' | 'updated' | 'removed'; name: string; credential: CredentialInfo | null };
  'rule.changed': { action: 'added' | 'removed'; rule: RuleInfo };
  'limits.changed': { limits: LimitsInfo };
  stats: { stats: StatsSnapshot };
  notice: { notice: Notice };
  /** Usage, budgets and headroom per credential changed (coalesced: at most once a second). */
  'usage.updated': { credentials: CredentialUsage[] };
  /** Sent when the connection's outbound queue overflowed: events were dropped, re-subscribe. */
  gap: { dropped: number };
}

/** Every event type name. */
export type EventType = keyof EventPayloads;

/** One event as it arrives at a subscriber. */
export type SluiceEvent = { [K in EventType]: { seq: number; type: K } & EventPayloads[K] }[EventType];

/** The state a subscriber starts from. */
export interface Snapshot {
  status: DaemonStatus;
  credentials: CredentialInfo[];
  rules: RuleInfo[];
  pools: PoolInfo[];
  approvals: ApprovalInfo[];
  limits: LimitsInfo;
  stats: StatsSnapshot;
  recent_requests: RecentRequest[];
  notices: Notice[];
  /** Per-credential usage, budgets and headroom (absent from daemons before issue 24). */
  usage?: CredentialUsage[];
}

/** The JSON-RPC notification method that carries events. */
export const EVENT_NOTIFICATION = 'event';

/** All event type names, for validation of `--type` filters. */
export const EVENT_TYPES: readonly EventType[] = [
  'request.started',
  'request.finished',
  'approval.pending',
  'approval.updated',
  'approval.resolved',
  'pool.changed',
  'cred.failover',
  'cred.changed',
  'rule.changed',
  'limits.changed',
  'stats',
  'notice',
  'usage.updated',
  'gap',
];
