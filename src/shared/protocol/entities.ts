/**
 * The shapes the daemon hands to its clients. Field names are snake_case and identical in RPC results and
 * `sluicectl --json` output. None of these shapes has a field that can hold a secret.
 */

import type { InjectSite } from './inject-sites.js';

/** What kind of secret a credential holds. */
export type CredentialKind = 'api-key' | 'oauth';

/** Policy verdicts; `ask` routes the request through the approval broker. */
export type Verdict = 'allow' | 'deny' | 'ask';

/** A credential as clients see it: everything except the secret. */
export interface CredentialInfo {
  name: string;
  kind: CredentialKind;
  hosts: string[];
  header: string | null;
  format: string | null;
  max_concurrent: number;
  queue_timeout_ms: number;
  /** The phantom the agent uses (for OAuth credentials: the access token's phantom, JWT-shaped). */
  phantom: string;
  /** OAuth only: the phantom the agent uses as its refresh token. */
  phantom_refresh: string | null;
  /** OAuth only: where refreshes go. */
  token_url: string | null;
  /** Where the phantom is swapped for the secret (canonical order); elsewhere it travels as the phantom. */
  inject: InjectSite[];
  in_flight: number;
  queued: number;
  /** Daily budgets (issue 24): input+output tokens and requests per local day; null = none. */
  daily_tokens?: number | null;
  daily_requests?: number | null;
  /** OAuth only: true when its refresh token was refused (`invalid_grant`) and it needs a new login (`cred update`). */
  needs_login?: boolean;
  created_at: string;
  updated_at: string;
}

/** A policy rule. `host` is a glob; `port`, `method` and `path` narrow it when set. */
export interface RuleInfo {
  id: number;
  verdict: Verdict;
  host: string;
  port: number | null;
  method: string | null;
  path: string | null;
  coalesce: boolean;
  source: 'user' | 'approval';
  created_at: string;
}

/** One pending, coalesced approval prompt. */
export interface ApprovalInfo {
  id: string;
  host: string;
  port: number;
  method: string;
  path: string;
  waiters: number;
  /** The `sluicectl run` agents whose requests wait on this prompt (by `--name`; at most 8). */
  agents?: string[];
  created_at: string;
  expires_at: string;
}

/** Decisions a human can give a prompt. */
export type ApprovalDecision = 'allow_once' | 'always_allow' | 'deny' | 'always_deny';

/** One audit row. `hash` chains it to the previous row. */
export interface AuditRow {
  id: number;
  ts: string;
  event: string;
  client: string | null;
  host: string | null;
  port: number | null;
  method: string | null;
  path: string | null;
  verdict: string | null;
  rule_id: number | null;
  credential: string | null;
  status: number | null;
  bytes: number | null;
  duration_ms: number | null;
  detail: string | null;
  /** The `sluicectl run` agent (`--name`) whose request this was; null for the owner's token (and rows before 0007). */
  agent?: string | null;
  prev_hash: string;
  hash: string;
}

/** Per-credential live counters. */
export interface CredentialStats {
  name: string;
  in_flight: number;
  queued: number;
  cap: number;
  queue_timeout_ms: number;
  total: number;
  status_2xx: number;
  status_3xx: number;
  status_4xx: number;
  status_5xx: number;
  errors: number;
  rejected: number;
}

/** Result of `stats.snapshot`. */
export interface StatsSnapshot {
  global: { in_flight: number; cap: number | null; requests_total: number; requests_per_s: number; rejected: number };
  credentials: CredentialStats[];
}

/** Result of `daemon.status`. */
export interface DaemonStatus {
  version: string;
  pid: number;
  uptime_s: number;
  started_at: string;
  proxy: { listen: string; auth: 'on' | 'off' };
  socket: string;
  ca_path: string;
  home: string;
  default_verdict: Verdict;
  approval_timeout_ms: number;
  counts: { credentials: number; rules: number; pools: number; pending_approvals: number; in_flight: number };
}

/** Result of `limits.get`. */
export interface LimitsInfo {
  global: number | null;
  credentials: {
    name: string;
    max_concurrent: number;
    queue_timeout_ms: number;
    in_flight: number;
    queued: number;
    /** Daily budgets (issue 24): input+output tokens and requests per local day; null = none. */
    daily_tokens?: number | null;
    daily_requests?: number | null;
  }[];
}

/** A short human notice for dashboards (failovers, cap rejects, leak blocks). */
export interface Notice {
  ts: string;
  level: 'info' | 'warn' | 'error';
  kind: string;
  message: string;
}

/** A recently finished request, as dashboards list it. */
/** A running `sluicectl run` agent (`agents.list`). Its per-run token is never shown. */
export interface AgentInfo {
  id: string;
  /** `--name`, or the command's basename. */
  name: string;
  started_at: string;
  in_flight: number;
  /** Requests admitted so far. */
  requests: number;
}

export interface RecentRequest {
  id: string;
  ts: string;
  host: string;
  port: number;
  method: string;
  path: string;
  credential: string | null;
  /** The `sluicectl run` agent that made the request (`--name`), or null. */
  agent?: string | null;
  status: number | null;
  outcome: string;
  duration_ms: number;
}
