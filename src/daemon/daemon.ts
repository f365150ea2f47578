/**
 * The running daemon: start order (refuse early if another daemon answers, check the state directory, open
 * the store, build the parts, start the proxy, and only then accept RPC connections), the status and stats
 * RPC answers, and the graceful stop. The parts themselves are constructed and connected in wire.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadOrCreateRootCa } from './ca/root-ca.js';
import { systemClock, type Clock } from './clock.js';
import type { DaemonConfig } from './config.js';
import type { JsonLogger } from './log.js';
import { createHandlers } from './rpc/handlers.js';
import { createDispatcher } from './rpc/rpc-dispatch.js';
import { AlreadyRunningError, RpcServer, answers } from './rpc/rpc-server.js';
import { agentEnv } from './services/agent-env.js';
import { isBusyError, openDatabase, type Db } from './store/database.js';
import { ensurePrivateDir } from './state-dir.js';
import type { DaemonStatus, StatsSnapshot } from '../shared/protocol/entities.js';
import { buildParts } from './wire.js';

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
