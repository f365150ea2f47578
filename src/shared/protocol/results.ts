/** What each RPC method returns. Shared by the daemon's handlers and the typed client. */
import type { AgentInfo, ApprovalDecision, ApprovalInfo, AuditRow, CredentialInfo, DaemonStatus, LimitsInfo, RuleInfo, StatsSnapshot } from './entities.js';
import type { AuditVerifyResult } from './audit.js';
import type { PoolInfo, Snapshot } from './events.js';
import type { MethodName } from './params.js';
import type { UsageSnapshot } from './usage.js';

/** The environment an agent needs to go through the proxy. */
export interface ProxyEnv {
  proxy_url: string;
  ca_path: string;
  ca_bundle_path: string;
  bootstrap_path: string;
  vars: Record<string, string>;
}

/**
 * What `run --isolate` must keep from an agent, as the daemon knows it: its state directories (replaced by
 * empty ones), the files inside them the agent needs (the CA files, read-only), and state files that may
 * live elsewhere (the RPC socket, the master key, the database) to cover.
 */
export interface AgentFence {
  state_dirs: string[];
  readable: string[];
  hidden: string[];
}

/** Result type per method. */
export interface Results {
  'daemon.status': DaemonStatus;
  'daemon.shutdown': { ok: true };
  'proxy.env': ProxyEnv;
  'token.rotate': { rotated: true };
  /** A per-run proxy token (inside `env`), alive until `agents.unregister` or until this RPC connection closes. */
  'agents.register': { agent: AgentInfo; env: ProxyEnv; proxy_socket: string; fence: AgentFence };
  'agents.unregister': { removed: boolean };
  'agents.list': { agents: AgentInfo[] };
  'cred.add': CredentialInfo;
  'cred.list': { credentials: CredentialInfo[] };
  'cred.update': CredentialInfo;
  'cred.remove': { removed: string };
  'pool.create': PoolInfo;
  'pool.list': { pools: PoolInfo[] };
  'pool.status': { pools: PoolInfo[] };
  'pool.rotate': { pool: PoolInfo; from: string | null; to: string | null };
  'pool.reset': PoolInfo;
  'pool.remove': { removed: string };
  'pool.update': PoolInfo;
  'pool.add_member': PoolInfo;
  'pool.remove_member': PoolInfo;
  'rule.add': RuleInfo;
  'rule.list': { rules: RuleInfo[] };
  'rule.remove': { removed: number };
  'approval.list': { approvals: ApprovalInfo[] };
  /**
   * `saved`: for always-* answers, the rule now in force for host:port and the id of the `ask` rule it
   * replaced (null when none); null for once-answers.
   */
  'approval.resolve': { id: string; decision: ApprovalDecision; waiters: number; saved: { rule_id: number; replaced: number | null } | null };
  'limits.get': LimitsInfo;
  'limits.set': LimitsInfo;
  'stats.snapshot': StatsSnapshot;
  /** Totals per credential/pool/agent/model over a period (hourly buckets), and every credential's usage now. */
  'usage.snapshot': UsageSnapshot;
  'audit.tail': { rows: AuditRow[] };
  'audit.verify': AuditVerifyResult;
  'events.subscribe': { seq: number; snapshot: Snapshot };
}

/** Result of method `M`. */
export type ResultOf<M extends MethodName> = M extends keyof Results ? Results[M] : never;
