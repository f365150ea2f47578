/**
 * The composition root: the one place that constructs the daemon's concrete parts and connects them
 * (daemon.ts starts them, in order, and stops them).
 */
import { ApprovalBroker } from './approval/approval-broker.js';
import { AuditLog } from './audit/audit-log.js';
import { AUDIT_KEY_INFO } from './audit/audit-key.js';
import { describeOpening } from './audit/audit-head.js';
import { loadOrCreateRootCa } from './ca/root-ca.js';
import { LeafCertCache } from './ca/leaf-certs.js';
import type { Clock } from './clock.js';
import { CapRegistry } from './concurrency/cap-registry.js';
import type { DaemonConfig } from './config.js';
import { EventBus } from './events/event-bus.js';
import { RequestStats } from './events/request-stats.js';
import type { JsonLogger } from './log.js';
import { PolicyEngine } from './policy/policy-engine.js';
import { Admission } from './proxy/admission.js';
import { BufferBudget } from './proxy/request-body.js';
import { CredentialStage } from './proxy/credential-stage.js';
import { ProxyServer } from './proxy/proxy-server.js';
import { ProxyAuth } from './proxy/proxy-auth.js';
import { RequestActivity } from './proxy/request-observer.js';
import { RequestPipeline } from './proxy/request-pipeline.js';
import { connectTarget, createUpstreamAgents } from './proxy/upstream-agents.js';
import { WebSocketRelay } from './proxy/websocket-relay.js';
import { TokenResponseStage } from './proxy/token-response.js';
import { TlsContexts } from './proxy/tls-contexts.js';
import { TokenExchange } from './oauth/token-exchange.js';
import { RefreshFlights } from './oauth/refresh-flights.js';
import { TokenRefresher, type NeedsLoginStore } from './oauth/token-refresher.js';
import type { RpcServer } from './rpc/rpc-server.js';
import { writeCaBundle } from './services/agent-env.js';
import { CredentialService } from './services/credential-service.js';
import { LimitsService } from './services/limits-service.js';
import { RuleService } from './services/rule-service.js';
import { CredentialsRepo } from './store/credentials-repo.js';
import type { Db } from './store/database.js';
import { RulesRepo } from './store/rules-repo.js';
import { PoolsRepo } from './store/pools-repo.js';
import { BudgetsRepo } from './store/budgets-repo.js';
import { DailyBudgets } from './pool/daily-budgets.js';
import type { UsageLedger } from './usage/usage-ledger.js';
import { MemberHealth } from './pool/member-health.js';
import { PoolService } from './pool/pool-service.js';
import { PoolFailover } from './proxy/pool-failover.js';
import { SettingsRepo } from './store/settings-repo.js';
import { UsageRepo } from './store/usage-repo.js';
import { UsageService, type DailyBudget } from './usage/usage-service.js';
import { unlockVault } from './vault/unlock.js';

/** Constructs every part of the daemon and connects them (no listening yet). */
export function buildParts(cfg: DaemonConfig, log: JsonLogger, clock: Clock, db: Db, ca: Awaited<ReturnType<typeof loadOrCreateRootCa>>) {
  const settings = new SettingsRepo(db);
  const credRepo = new CredentialsRepo(db);
  const poolsRef: { svc: PoolService | null } = { svc: null };
  const vault = unlockVault(cfg, credRepo, settings, clock, (name) => poolsRef.svc?.has(name) ?? false);
  const bus = new EventBus();
  // The audit chain's key is derived from the master key (never stored), so unlocking the vault comes first.
  const audit = new AuditLog(db, clock, undefined, vault.subkey(AUDIT_KEY_INFO));
  if (audit.opening) {
    const calm = audit.opening.kind === 'anchored' && audit.opening.legacy_ok;
    log[calm ? 'info' : 'warn'](`audit log: ${describeOpening(audit.opening)}`);
  }
  audit.onTrouble = (err) => {
    if (err)
      log.error('cannot write the audit log (database locked by another process?); keeping rows in memory and retrying', { err, unwritten: audit.unwritten });
    else log.info('audit log writable again; queued rows written');
  };
  const markStatsDirty = { fn: () => {} };
  const stageRef: { stage: CredentialStage | null } = { stage: null };
  // Late-bound: the budgets read this service as their ledger, so they are made after it.
  const budgetsRef: { b: DailyBudgets | null } = { b: null };
  const budgetOf = (name: string): DailyBudget => budgetsRef.b?.budgetOf(name) ?? { daily_tokens: null, daily_requests: null };
  const usage = new UsageService({
    clock,
    repo: new UsageRepo(db),
    bus,
    names: () => vault.list().map((r) => r.name),
    budgetOf,
    // Late-bound: the credential stage needs the pools, which read this ledger. Nothing is recorded before the
    // proxy runs; should it be, the text is dropped rather than kept unmasked.
    maskText: (text) => stageRef.stage?.masker().maskText(text) ?? '',
    onFlushError: (err) => log.warn('cannot write usage counts (database locked?); keeping them in memory and retrying', { err }),
  });
  usage.start();
  const caps = new CapRegistry(
    clock,
    (name) => vault.get(name),
    () => markStatsDirty.fn(),
  );
  const stats = new RequestStats(clock);
  const activity = new RequestActivity(clock, stats, bus, () => markStatsDirty.fn());
  const rulesRepo = new RulesRepo(db);
  const policy = new PolicyEngine(rulesRepo.list(), cfg.defaultVerdict);
  const rules = new RuleService(rulesRepo, policy, audit, bus, clock);
  const poolsRepo = new PoolsRepo(db);
  const health = new MemberHealth(
    clock,
    (name, until, reason) => poolsRepo.setHealth(name, until === null ? null : new Date(until).toISOString(), reason, clock.iso()),
    cfg.maxCooldownMs,
  );
  health.load(poolsRepo.health().map((h) => ({ name: h.name, until: h.cooldown_until ? Date.parse(h.cooldown_until) : 0, reason: h.reason ?? 'cooling' })));
  // Rotation before the wall and daily budgets read the usage service's headroom and today's counts.
  const ledger: UsageLedger = usage;
  const budgets = new DailyBudgets(
    new BudgetsRepo(db),
    ledger,
    clock,
    (name, breach, until) => {
      const what = breach.kind === 'tokens' ? 'token' : 'request';
      audit.append({
        event: 'daily_budget_reached',
        credential: name,
        detail: `${what}s ${breach.used}/${breach.limit}; refused until ${new Date(until).toISOString()}`,
      });
      activity.notice('warn', 'daily_budget', `${name} spent its daily ${what} budget (${breach.used}/${breach.limit}); refused until local midnight`);
      // pool.status now calls it unhealthy (daily_budget): tell dashboards even when the pool did not move.
      poolsRef.svc?.memberBudgetChanged(name);
    },
    (name) => caps.countsFor(name).in_flight,
  );
  budgetsRef.b = budgets;
  // A budget set or cleared shows on dashboards at once (usage.updated carries each credential's budget), and
  // may make a pool member serve again, or stop (pool.changed).
  budgets.onChange = (name) => {
    usage.changed();
    poolsRef.svc?.memberBudgetChanged(name);
  };
  const pools = new PoolService(poolsRepo, health, vault, audit, bus, clock, log, (level, kind, message) => activity.notice(level, kind, message), {
    ledger,
    budgets,
  });
  poolsRef.svc = pools;
  const creds = new CredentialService(
    vault,
    caps,
    audit,
    bus,
    (name) => pools.poolOf(name),
    (name) => {
      stats.forget(name);
      health.clear(name);
      budgets.forget(name);
    },
  );
  creds.budgetOf = (name) => budgets.budgetOf(name);
  const limits = new LimitsService(caps, vault, creds, settings, audit, bus, budgets);
  limits.init(cfg.globalCap, cfg.globalCapVar, (message, fields) => log.warn(message, fields));
  const broker = new ApprovalBroker(
    clock,
    { timeoutMs: cfg.approvalTimeoutMs },
    (host, port, verdict) => {
      const r = rules.add({ verdict, host, port, method: null, path: null, coalesce: true, source: 'approval' }, { replaceAsk: true });
      return { rule_id: r.rule.id, replaced: r.replaced ?? null };
    },
    (type, payload) => bus.publish(type, payload),
  );
  const auth = new ProxyAuth(cfg.tokenPath, cfg.proxyAuth);
  const agents = createUpstreamAgents(cfg.upstreamCaPath, cfg.upstreamConnectTimeoutMs);
  const leafs = new LeafCertCache(ca, cfg.hostCacheSize);
  let proxyRef: ProxyServer | null = null;
  const credentials = new CredentialStage(vault, pools);
  stageRef.stage = credentials;
  const exchange = new TokenExchange(vault, pools, clock, log);
  const refreshFlights = new RefreshFlights(vault, exchange);
  const refresher = new TokenRefresher({
    vault,
    exchange,
    pools,
    audit,
    agents,
    overrides: cfg.resolve,
    clock,
    log,
    flights: refreshFlights,
    onNeedsLoginChanged: (name) => creds.changedByDaemon(name),
    needsLoginStore: needsLoginStore(settings),
  });
  creds.needsLogin = (name) => refresher.needsLogin(name);
  const poolFailover = new PoolFailover({ pools, credentials, caps, clock, log, beforeUse: (m) => refresher.ensureFresh(m) });
  const tokenResponses = new TokenResponseStage({ exchange, poolFailover, credentials, clock, flights: refreshFlights });
  const admission = new Admission({
    log,
    auth,
    policy,
    broker,
    credentials,
    caps,
    audit,
    observer: activity,
    selfPorts: () => proxyRef?.ports() ?? [],
    ensureFresh: (n) => refresher.ensureFresh(n),
    memberRefusal: (credential, pool) => pools.memberRefusal(credential, pool),
  });
  const upstreamTimeouts = { connectMs: cfg.upstreamConnectTimeoutMs, headerMs: cfg.upstreamHeaderTimeoutMs };
  const pipeline = new RequestPipeline({
    clock,
    log,
    admission,
    audit,
    observer: activity,
    agents,
    overrides: cfg.resolve,
    poolFailover,
    tokenResponses,
    refreshFlights,
    isTokenUrl: (host, path) => vault.byTokenUrl(host, path).length > 0,
    connectRequestOf: (socket) => proxyRef?.connectRequestOf(socket),
    upstreamTimeouts,
    budget: new BufferBudget(cfg.maxBufferedBytes),
    masks: { current: () => credentials.masker() },
    usage,
  });
  const relay = new WebSocketRelay({
    admission,
    credentials,
    vault,
    poolFailover,
    audit,
    observer: activity,
    clock,
    log,
    agents,
    overrides: cfg.resolve,
    connectRequestOf: (socket) => proxyRef?.connectRequestOf(socket),
    upstreamTimeouts,
    usage,
  });
  const proxy = new ProxyServer({
    pipeline,
    auth,
    contexts: new TlsContexts(leafs, cfg.hostCacheSize),
    audit,
    log,
    relay,
    // Only where a request may go without asking anyone: no connection is opened to an `ask` or `deny`
    // destination before a human (or a rule) lets it.
    warmUpstream: (host, port) => {
      if (policy.evaluate({ host, port, method: 'GET', path: '/' }).verdict !== 'allow') return;
      agents.pool.preconnect({ secure: true, ...connectTarget(cfg.resolve, host, port) });
    },
  });
  proxyRef = proxy;
  const bundlePath = writeCaBundle(cfg.caDir, ca.certPem);
  log.addSecretSource(() => [auth.current()]);
  log.addSecretSource(() => vault.knownSecrets());
  refresher.start();
  return {
    settings,
    vault,
    pools,
    budgets,
    refresher,
    bus,
    audit,
    caps,
    stats,
    usage,
    activity,
    rules,
    creds,
    limits,
    broker,
    auth,
    agents,
    proxy,
    ca,
    bundlePath,
    markStatsDirty,
    rpc: null as RpcServer | null,
  };
}

/** `needs login` marks in the settings table (`oauth_needs_login:NAME` → hash of the refused refresh token). */
function needsLoginStore(settings: SettingsRepo): NeedsLoginStore {
  const PREFIX = 'oauth_needs_login:';
  return {
    load: () => settings.withPrefix(PREFIX).map((r) => ({ name: r.key.slice(PREFIX.length), token_sha256: r.value })),
    save: (name, hash) => (hash === null ? settings.delete(PREFIX + name) : settings.set(PREFIX + name, hash)),
  };
}
