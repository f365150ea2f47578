/**
 * The RPC method implementations: thin adapters from validated params to the daemon's services. No
 * handler returns a secret; `proxy.env` returns the proxy access token, which the owner-only socket
 * already protects (anyone who can call it can read the token file).
 */
import type { AgentInfo, DaemonStatus, StatsSnapshot } from '../../shared/protocol/entities.js';
import type { Snapshot } from '../../shared/protocol/events.js';
import type { AgentFence, ProxyEnv } from '../../shared/protocol/results.js';
import type { ApprovalBroker } from '../approval/approval-broker.js';
import type { PoolService } from '../pool/pool-service.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { RequestActivity } from '../proxy/request-observer.js';
import type { ProxyAuth } from '../proxy/proxy-auth.js';
import type { CredentialService } from '../services/credential-service.js';
import type { LimitsService } from '../services/limits-service.js';
import type { RuleService } from '../services/rule-service.js';
import type { Clock } from '../clock.js';
import type { RunAgent } from '../proxy/proxy-auth.js';
import type { Handlers } from './rpc-dispatch.js';
import type { UsageService } from '../usage/usage-service.js';

/** What the handlers call into. */
export interface HandlerDeps {
  status(): DaemonStatus;
  stats(): StatsSnapshot;
  env(): ProxyEnv;
  /** The agent environment with `token` instead of the owner's token. */
  envWith(token: string): ProxyEnv;
  /** The proxy's Unix socket, for isolated agents. */
  proxySocket: string;
  /** What an isolated agent must not reach. */
  fence: AgentFence;
  clock: Clock;
  shutdown(): void;
  creds: CredentialService;
  rules: RuleService;
  limits: LimitsService;
  broker: ApprovalBroker;
  audit: AuditLog;
  auth: ProxyAuth;
  activity: RequestActivity;
  pools: PoolService;
  usage: UsageService;
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
    usage: d.usage.credentials(),
  });
  const agentInfo = (a: RunAgent): AgentInfo => ({
    id: a.id,
    name: a.name,
    started_at: new Date(a.startedAt).toISOString(),
    ...d.activity.agentCountsFor(a.id),
  });
  const endRun = (a: RunAgent): boolean => {
    if (!d.auth.revoke(a.id)) return false;
    d.activity.forgetAgent(a.id);
    d.audit.append({ event: 'agent_stopped', detail: `${a.name} (${a.id})` });
    return true;
  };
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
    'agents.register': (p, conn) => {
      const { agent, token } = d.auth.issue(p.name, d.clock.now());
      // The run's token lives as long as the connection of the `sluicectl run` that asked for it: a run that
      // dies without saying goodbye still has its token revoked.
      conn.socket.once('close', () => endRun(agent));
      d.audit.append({ event: 'agent_started', detail: `${agent.name} (${agent.id})` });
      return { agent: agentInfo(agent), env: d.envWith(token), proxy_socket: d.proxySocket, fence: d.fence };
    },
    'agents.unregister': (p) => {
      const a = d.auth.agents().find((x) => x.id === p.id);
      return { removed: a ? endRun(a) : false };
    },
    'agents.list': () => ({ agents: d.auth.agents().map(agentInfo) }),
    'cred.add': (p) => d.creds.add(p),
    'cred.list': () => ({ credentials: d.creds.list() }),
    'cred.update': (p) => d.creds.update(p),
    'cred.remove': (p) => {
      d.creds.remove(p.name);
      return { removed: p.name };
    },
    'pool.create': (p) => d.pools.create(p.name, p.members, { rotate_below: p.rotate_below ?? null, plan_limits_only: p.plan_limits_only ?? false }),
    'pool.update': (p) => d.pools.update(p.name, { rotate_below: p.rotate_below, plan_limits_only: p.plan_limits_only }),
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
      d.rules.add({
        verdict: p.verdict,
        host: p.host,
        port: p.port ?? null,
        method: p.method ?? null,
        path: p.path ?? null,
        coalesce: p.coalesce,
        source: 'user',
      }).rule,
    'rule.list': () => ({ rules: d.rules.list() }),
    'rule.remove': (p) => ({ removed: d.rules.remove(p.id).id }),
    'approval.list': () => ({ approvals: d.broker.list() }),
    'approval.resolve': (p) => {
      const r = d.broker.resolve(p.id, p.decision);
      return { id: p.id, decision: p.decision, waiters: r.waiters, saved: r.saved };
    },
    'limits.get': () => d.limits.get(),
    'limits.set': (p) => d.limits.set(p),
    'stats.snapshot': () => d.stats(),
    'usage.snapshot': (p) => d.usage.snapshot(p.by, p.since),
    'audit.tail': (p) => ({ rows: d.audit.tail(p.n, { cred: p.cred, host: p.host, agent: p.agent, event: p.event, since: p.since }) }),
    'audit.verify': () => d.audit.verifyInChunks(),
    'events.subscribe': (p, conn) => {
      const snap = snapshot();
      return { seq: conn.subscribe(p.types), snapshot: snap };
    },
  };
}
