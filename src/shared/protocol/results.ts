/** What each RPC method returns. Shared by the daemon's handlers and the typed client. */
import type {
  ApprovalDecision,
  ApprovalInfo,
  AuditRow,
  CredentialInfo,
  DaemonStatus,
  LimitsInfo,
  RuleInfo,
  StatsSnapshot,
} from './entities.js';
import type { PoolInfo, Snapshot } from './events.js';
import type { MethodName } from './params.js';

/** The environment an agent needs to go through the proxy. */
export interface ProxyEnv {
  proxy_url: string;
  ca_path: string;
  ca_bundle_path: string;
  bootstrap_path: string;
  vars: Record<string, string>;
}

/** Result type per method. */
export interface Results {
  'daemon.status': DaemonStatus;
  'daemon.shutdown': { ok: true };
  'proxy.env': ProxyEnv;
  'token.rotate': { rotated: true };
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
  'pool.add_member': PoolInfo;
  'pool.remove_member': PoolInfo;
  'rule.add': RuleInfo;
  'rule.list': { rules: RuleInfo[] };
  'rule.remove': { removed: number };
  'approval.list': { approvals: ApprovalInfo[] };
  'approval.resolve': { id: string; decision: ApprovalDecision; waiters: number };
  'limits.get': LimitsInfo;
  'limits.set': LimitsInfo;
  'stats.snapshot': StatsSnapshot;
  'audit.tail': { rows: AuditRow[] };
  'audit.verify': { ok: boolean; rows: number; first_bad_id: number | null; reason: string | null };
  'events.subscribe': { seq: number; snapshot: Snapshot };
}

/** Result of method `M`. */
export type ResultOf<M extends MethodName> = M extends keyof Results ? Results[M] : never;
