/**
 * Turns what happens to requests into stats, the recent-requests buffer, notices and bus events. The proxy
 * only calls this interface; it knows nothing of RPC or subscribers.
 */
import type { Notice, RecentRequest } from '../../shared/protocol/entities.js';
import type { Clock } from '../clock.js';
import type { EventBus } from '../events/event-bus.js';
import { Lru } from '../ca/lru.js';
import { RecentBuffer } from '../events/recent-buffer.js';
import type { RequestStats } from '../events/request-stats.js';
import type { RequestExchange } from './request-exchange.js';

/** Receives request lifecycle callbacks from the pipeline. */
export interface RequestObserver {
  started(ex: RequestExchange): void;
  finished(ex: RequestExchange): void;
  rejected(ex: RequestExchange, reason: string, cap: number): void;
  notice(level: Notice['level'], kind: string, message: string): void;
}

const NOTICE_REPEAT_MS = 30_000;

/** The daemon's observer: keeps recent requests and notices, counts stats, publishes events. */
export class RequestActivity implements RequestObserver {
  readonly recent = new RecentBuffer<RecentRequest>(200);
  readonly notices = new RecentBuffer<Notice>(100);
  private readonly lastNotice = new Lru<string, number>(1000);
  /** Per `sluicectl run` agent id: requests in flight and admitted so far. */
  private readonly agentCounts = new Map<string, { in_flight: number; requests: number }>();
  /** Exchanges counted in their agent's in-flight number: the observer's own bookkeeping, so `finished` uncounts each once. */
  private readonly counted = new WeakSet<RequestExchange>();

  constructor(
    private readonly clock: Clock,
    private readonly stats: RequestStats,
    private readonly bus: EventBus,
    private readonly statsChanged: () => void,
  ) {}

  started(ex: RequestExchange): void {
    if (ex.agent && !this.counted.has(ex)) {
      this.counted.add(ex);
      const c = this.agentCounts.get(ex.agent.id) ?? { in_flight: 0, requests: 0 };
      c.in_flight++;
      c.requests++;
      this.agentCounts.set(ex.agent.id, c);
    }
    if (this.bus.hasListeners) {
      this.bus.publish('request.started', { id: ex.id, host: ex.host, port: ex.port, method: ex.method, path: ex.path, credential: ex.credential });
    }
  }

  finished(ex: RequestExchange): void {
    if (this.counted.delete(ex)) {
      const c = this.agentCounts.get(ex.agent!.id);
      if (c) c.in_flight--;
    }
    this.stats.recordFinished(ex.credential, ex.outcome() === 'upstream_error' ? null : ex.status);
    const r = ex.toRecent(this.clock.now(), this.clock.iso());
    this.recent.add(r);
    if (this.bus.hasListeners) this.bus.publish('request.finished', r);
    this.statsChanged();
  }

  rejected(ex: RequestExchange, reason: string, cap: number): void {
    this.stats.recordRejected(ex.credential);
    const who = ex.credential ? `credential ${ex.credential}` : 'all credentials';
    this.notice('warn', reason, reason === 'global_cap' ? `global cap ${cap} reached: refusing requests` : `cap ${cap} reached for ${who}: refusing requests`);
  }

  /** Requests in flight and admitted so far for agent `id` (zeros for an agent that made none). */
  agentCountsFor(id: string): { in_flight: number; requests: number } {
    return this.agentCounts.get(id) ?? { in_flight: 0, requests: 0 };
  }

  /** Drops the counts of an agent whose run ended. */
  forgetAgent(id: string): void {
    this.agentCounts.delete(id);
  }

  /** Records a notice; an identical notice within 30 s is not repeated. */
  notice(level: Notice['level'], kind: string, message: string): void {
    const key = `${kind}\u0000${message}`;
    const now = this.clock.now();
    const last = this.lastNotice.get(key);
    if (last !== undefined && now - last < NOTICE_REPEAT_MS) return;
    // Bounded: notice texts carry host names, which clients choose.
    this.lastNotice.set(key, now);
    const n: Notice = { ts: this.clock.iso(), level, kind, message };
    this.notices.add(n);
    this.bus.publish('notice', { notice: n });
  }
}
