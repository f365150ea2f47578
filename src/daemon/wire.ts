/**
 * The composition root: the one place that constructs the daemon's concrete parts and connects them.
 * Start order matters: refuse early if another daemon answers, check the state directory, open the store,
 * unlock the vault, load the CA, start the proxy, and only then accept RPC connections.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ApprovalBroker } from './approval/approval-broker.js';
import { AuditLog } from './audit/audit-log.js';
import { AUDIT_KEY_INFO } from './audit/audit-key.js';
import { describeOpening } from './audit/audit-head.js';
import { loadOrCreateRootCa } from './ca/root-ca.js';
import { LeafCertCache } from './ca/leaf-certs.js';
import { systemClock, type Clock } from './clock.js';
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
import { createUpstreamAgents } from './proxy/upstream-agents.js';
import { WebSocketRelay } from './proxy/websocket-relay.js';
import { TokenResponseStage } from './proxy/token-response.js';
import { TlsContexts } from './proxy/tls-contexts.js';
import { TokenExchange } from './oauth/token-exchange.js';
import { RefreshFlights } from './oauth/refresh-flights.js';
import { TokenRefresher, type NeedsLoginStore } from './oauth/token-refresher.js';
import { createHandlers } from './rpc/handlers.js';
import { createDispatcher } from './rpc/rpc-dispatch.js';
import { AlreadyRunningError, RpcServer, answers } from './rpc/rpc-server.js';
import { agentEnv, writeCaBundle } from './services/agent-env.js';
import { CredentialService } from './services/credential-service.js';
import { LimitsService } from './services/limits-service.js';
import { RuleService } from './services/rule-service.js';
import { CredentialsRepo } from './store/credentials-repo.js';
import { isBusyError, openDatabase, type Db } from './store/database.js';
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
import { ensurePrivateDir } from './state-dir.js';
import { unlockVault } from './vault/unlock.js';
import type { DaemonStatus, StatsSnapshot } from '../shared/protocol/entities.js';

/** The package version, read once. */
export const VERSION: string = (JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const STATS_INTERVAL_MS = 100;
const DRAIN_LIMIT_MS = 10_000;

/** A running daemon. */
export class Daemon {
  private stopping: Promise<void> | null = null;
  private statsTimer: ReturnType<typeof setInterval> | null = null;
  private statsDirty = false;
  readonly startedAt: number;
  proxyAddress = { host: '', port: 0 };
  onStopped: () => void = () => {};

  private constructor(
    readonly cfg: DaemonConfig,
    readonly log: JsonLogger,
    readonly clock: Clock,
    readonly db: Db,
    readonly parts: ReturnType<typeof buildParts>,
  ) {
    this.startedAt = clock.now();
  }

  /** Starts everything; throws a clear error when the daemon cannot run. */
  static async start(cfg: DaemonConfig, log: JsonLogger, clock: Clock = systemClock): Promise<Daemon> {
    if (await answers(cfg.socketPath)) throw new AlreadyRunningError(`another sluiced is already running (it answers on ${cfg.socketPath})`);
    ensurePrivateDir(cfg.home, log);
    ensurePrivateDir(path.dirname(cfg.socketPath), log);
    let db: Db;
    try {
      db = openDatabase(cfg.dbPath);
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (isBusyError(err)) {
        throw new Error(
          `the database ${cfg.dbPath} is locked by another process (another sluiced on this SLUICE_HOME, or a tool holding it open); nothing was changed`,
        );
      }
      if (code === 'SQLITE_CANTOPEN' || code === 'EACCES')
        throw new Error(`cannot open the database ${cfg.dbPath} (${code}); check that ${cfg.home} is writable`);
      throw err;
    }
    try {
      // Left by the http-mitm-proxy era: an unused RSA CA whose private key was written mode 0644.
      fs.rmSync(path.join(cfg.caDir, 'mitm-internal'), { recursive: true, force: true });
      const parts = buildParts(cfg, log, clock, db, await loadOrCreateRootCa(cfg.caDir));
      const daemon = new Daemon(cfg, log, clock, db, parts);
      await daemon.listen();
      return daemon;
    } catch (err) {
      db.close();
      throw err;
    }
  }

  private async listen(): Promise<void> {
    const p = this.parts;
    this.proxyAddress = await p.proxy.start(this.cfg.proxyHost, this.cfg.proxyPort);
    await p.proxy.listenUnix(this.cfg.proxySocketPath);
    const handlers = createHandlers({
      status: () => this.status(),
      stats: () => this.stats(),
      env: () =>
        agentEnv({
          host: this.proxyAddress.host,
          port: this.proxyAddress.port,
          token: p.auth.enabled ? p.auth.current() : null,
          caPath: p.ca.certPath,
          bundlePath: p.bundlePath,
        }),
      envWith: (token) => agentEnv({ host: this.proxyAddress.host, port: this.proxyAddress.port, token, caPath: p.ca.certPath, bundlePath: p.bundlePath }),
      proxySocket: this.cfg.proxySocketPath,
      fence: {
        state_dirs: [this.cfg.home],
        readable: [p.ca.certPath, p.bundlePath],
        // Files only (covered with /dev/null when they live outside the home, e.g. SLUICE_SOCKET elsewhere).
        hidden: [this.cfg.socketPath, this.cfg.masterKeyPath, this.cfg.dbPath, this.cfg.tokenPath],
      },
      clock: this.clock,
      shutdown: () => void this.shutdown(),
      creds: p.creds,
      rules: p.rules,
      limits: p.limits,
      broker: p.broker,
      audit: p.audit,
      auth: p.auth,
      activity: p.activity,
      pools: p.pools,
      usage: p.usage,
    });
    const rpc = new RpcServer(createDispatcher(handlers, this.log), this.log);
    await rpc.listen(this.cfg.socketPath);
    p.bus.subscribe((type, payload) => rpc.broadcast(type, payload));
    this.statsTimer = setInterval(() => {
      if (this.statsDirty && rpc.hasSubscribers) {
        this.statsDirty = false;
        p.bus.publish('stats', { stats: this.stats() });
      }
    }, STATS_INTERVAL_MS);
    this.statsTimer.unref();
    p.markStatsDirty.fn = () => {
      this.statsDirty = true;
    };
    p.rpc = rpc;
    fs.writeFileSync(this.cfg.pidPath, `${process.pid}\n`, { mode: 0o600 });
  }

  /** `daemon.status`. */
  status(): DaemonStatus {
    const p = this.parts;
    return {
      version: VERSION,
      pid: process.pid,
      uptime_s: Math.round((this.clock.now() - this.startedAt) / 1000),
      started_at: new Date(this.startedAt).toISOString(),
      proxy: { listen: `${this.proxyAddress.host}:${this.proxyAddress.port}`, auth: p.auth.enabled ? 'on' : 'off' },
      socket: this.cfg.socketPath,
      ca_path: p.ca.certPath,
      home: this.cfg.home,
      default_verdict: this.cfg.defaultVerdict,
      approval_timeout_ms: this.cfg.approvalTimeoutMs,
      counts: {
        credentials: p.vault.list().length,
        rules: p.rules.list().length,
        pools: p.pools.list().length,
        pending_approvals: p.broker.pendingCount,
        in_flight: p.caps.globalInFlightCount(),
      },
    };
  }

  /** `stats.snapshot`. */
  stats(): StatsSnapshot {
    const p = this.parts;
    return {
      global: { in_flight: p.caps.globalInFlightCount(), cap: p.caps.getGlobalCap(), ...p.stats.global() },
      credentials: p.vault.list().map((r) => {
        const c = p.caps.countsFor(r.name);
        return {
          name: r.name,
          in_flight: c.in_flight,
          queued: c.queued,
          cap: r.max_concurrent,
          queue_timeout_ms: r.queue_timeout_ms,
          ...p.stats.countersFor(r.name),
        };
      }),
    };
  }

  /** Graceful stop: deny pending approvals, stop accepting, let in-flight requests finish (bounded). */
  shutdown(): Promise<void> {
    if (!this.stopping) this.stopping = this.doShutdown();
    return this.stopping;
  }

  private async doShutdown(): Promise<void> {
    const p = this.parts;
    this.log.info('shutting down');
    p.broker.shutdown();
    p.refresher.stop();
    // Let the 403s of the denied approval waiters reach their clients before anything closes.
    await new Promise((r) => setTimeout(r, 100));
    p.proxy.close();
    const deadline = this.clock.now() + DRAIN_LIMIT_MS;
    while (p.caps.globalInFlightCount() > 0 && this.clock.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (this.statsTimer) clearInterval(this.statsTimer);
    p.usage.stop();
    p.audit.append({ event: 'daemon_stopped' });
    p.audit.flush();
    p.rpc?.close();
    p.agents.destroy();
    this.db.close();
    fs.rmSync(this.cfg.pidPath, { force: true });
    fs.rmSync(this.cfg.proxySocketPath, { force: true });
    this.log.info('stopped');
    this.onStopped();
  }
}

function buildParts(cfg: DaemonConfig, log: JsonLogger, clock: Clock, db: Db, ca: Awaited<ReturnType<typeof loadOrCreateRootCa>>) {
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
    },
    (name) => caps.countsFor(name).in_flight,
  );
  budgetsRef.b = budgets;
  // A budget set or cleared shows on dashboards at once (usage.updated carries each credential's budget).
  budgets.onChange = () => usage.changed();
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
  const agents = createUpstreamAgents(cfg.upstreamCaPath);
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
  const proxy = new ProxyServer({ pipeline, auth, contexts: new TlsContexts(leafs, cfg.hostCacheSize), audit, log, relay });
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
