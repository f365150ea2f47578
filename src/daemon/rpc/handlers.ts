/**
 * The RPC method implementations: thin adapters from validated params to the daemon's services. No
 * handler returns a secret; `proxy.env` returns the proxy access token, which the owner-only socket
 * already protects (anyone who can call it can read the token file).
 */
import type { DaemonStatus, StatsSnapshot } from '../../shared/protocol/entities.js';
import type { Snapshot } from '../../shared/protocol/events.js';
import type { ProxyEnv } from '../../shared/protocol/results.js';
import type { ApprovalBroker } from '../approval/approval-broker.js';
import type { PoolService } from '../pool/pool-service.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { RequestActivity } from '../proxy/request-observer.js';
import type { ProxyAuth } from '../proxy/proxy-auth.js';
import type { CredentialService } from '../services/credential-service.js';
import type { LimitsService } from '../services/limits-service.js';
import type { RuleService } from '../services/rule-service.js';
import type { Handlers } from './rpc-dispatch.js';

/** What the handlers call into. */
export interface HandlerDeps {
  status(): DaemonStatus;
  stats(): StatsSnapshot;
  env(): ProxyEnv;
  shutdown(): void;
  creds: CredentialService;
  rules: RuleService;
  limits: LimitsService;
  broker: ApprovalBroker;
  audit: AuditLog;
  auth: ProxyAuth;
  activity: RequestActivity;
  pools: PoolService;
}

/** Builds the handler table. */
export function createHandlers(d: HandlerDeps): Handlers {
  const snapshot = (): Snapshot => ({
    status: d.status(),
    credentials: d.creds.list(),
    rules: d.rules.list(),
    pools: d.pools.list(),
    approvals: d.broker.list(),
    limits: d.limits.get(),
    stats: d.stats(),
    recent_requests: d.activity.recent.last(50),
    notices: d.activity.notices.last(50),
  });
  return {
    'daemon.status': () => d.status(),
    'daemon.shutdown': () => {
      setImmediate(() => d.shutdown());
      return { ok: true };
    },
    'proxy.env': () => d.env(),
    'token.rotate': () => {
      d.auth.rotate();
      d.audit.append({ event: 'proxy_token_rotated' });
      return { rotated: true };
    },
    'cred.add': (p) => d.creds.add(p),
    'cred.list': () => ({ credentials: d.creds.list() }),
    'cred.update': (p) => d.creds.update(p),
    'cred.remove': (p) => {
      d.creds.remove(p.name);
      return { removed: p.name };
    },
    'pool.create': (p) => d.pools.create(p.name, p.members),
    'pool.list': () => ({ pools: d.pools.list() }),
    'pool.status': (p) => ({ pools: p.name ? [d.pools.info(d.pools.get(p.name))] : d.pools.list() }),
    'pool.rotate': (p) => d.pools.rotate(p.name),
    'pool.reset': (p) => d.pools.reset(p.name),
    'pool.remove': (p) => {
      d.pools.remove(p.name);
      return { removed: p.name };
    },
    'pool.add_member': (p) => d.pools.addMember(p.name, p.member),
    'pool.remove_member': (p) => d.pools.removeMember(p.name, p.member),
    'rule.add': (p) =>
      d.rules.add({ verdict: p.verdict, host: p.host, port: p.port ?? null, method: p.method ?? null, path: p.path ?? null, coalesce: p.coalesce, source: 'user' }).rule,
    'rule.list': () => ({ rules: d.rules.list() }),
    'rule.remove': (p) => ({ removed: d.rules.remove(p.id).id }),
    'approval.list': () => ({ approvals: d.broker.list() }),
    'approval.resolve': (p) => {
      const r = d.broker.resolve(p.id, p.decision);
      return { id: p.id, decision: p.decision, waiters: r.waiters };
    },
    'limits.get': () => d.limits.get(),
    'limits.set': (p) => d.limits.set(p),
    'stats.snapshot': () => d.stats(),
    'audit.tail': (p) => ({ rows: d.audit.tail(p.n) }),
    'audit.verify': () => d.audit.verify(),
    'events.subscribe': (p, conn) => {
      const snap = snapshot();
      return { seq: conn.subscribe(p.types), snapshot: snap };
    },
  };
}
