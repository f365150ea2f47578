/**
 * Step 6 for pooled requests: at response-header time, a rate-limit/quota/auth failure from the member
 * cools it (before the response goes anywhere) and moves the pool on. When nothing has reached the client
 * yet, the request is replayed once on the new member (sluice buffers request bodies, so it always can),
 * and the agent only ever sees the replay's response. A paid-overage answer (`plan_limit`) cools the member
 * the same way but is never replayed (see {@link PoolFailover.onResponse}).
 */
import type https from 'node:https';
import type { Clock } from '../clock.js';
import type { CapRegistry } from '../concurrency/cap-registry.js';
import type { Logger } from '../log.js';
import { classify, mayBePlanLimit, needsBody } from '../pool/failover-classifier.js';
import type { PoolService } from '../pool/pool-service.js';
import { refreshOwnerOf, type CredentialStage } from './credential-stage.js';
import { peekBody, type BodyPeek } from './request-body.js';
import type { RequestExchange } from './request-exchange.js';
import { flavourOf } from './refusals.js';
import type { Reply, UpstreamLeg } from './upstream-leg.js';

/** The client's request as it arrived (phantoms intact), kept so it can be replayed on another member. */
export interface OriginalRequest {
  headers: Record<string, string | string[] | undefined>;
  path: string;
  body: Buffer | null;
  /** True for a refresh grant to a token URL (refresh phantoms resolve only there). */
  refreshGrant: boolean;
}

/** What the failover stage needs. */
export interface PoolFailoverDeps {
  pools: PoolService;
  credentials: CredentialStage;
  caps: CapRegistry;
  clock: Clock;
  log: Logger;
  /** Makes sure a member is ready to serve (e.g. refreshes an expired OAuth token) before a replay. */
  beforeUse?: (member: string) => Promise<void>;
}

/** How much of a 403 body is read to look for a quota error before it streams on to the client. */
const MAX_PEEK = 64 * 1024;
/** How long a 403 body is waited for; one not classified by then passes through as it is. */
export const PEEK_WAIT_MS = 2_000;

/** Classifies pooled responses and replays failures once. */
export class PoolFailover {
  constructor(private readonly d: PoolFailoverDeps) {}

  /**
   * Inspects `leg.response` for pooled exchange `ex`; may replace it with a replay's response. 429 and
   * 401 are classified from the status line alone, so the member cools at header time even when the body
   * streams or is huge; only a 403, and an Anthropic 429/400 with a JSON body (paid overage, see
   * failover-classifier.ts), need a look at their body, bounded in size (64 KiB) and time (2 s). Resolves with what the client gets;
   * rejects when the response broke off while being looked at.
   */
  async onResponse(ex: RequestExchange, leg: UpstreamLeg, original: OriginalRequest): Promise<Reply> {
    const up = leg.response!;
    const status = up.statusCode ?? 0;
    let peek: BodyPeek | null = null;
    // An Anthropic 429/400 with a JSON body may say "moved to paid overage": the same bounded peek decides.
    if (needsBody(status, false) || (mayBePlanLimit(status, up.headers) && flavourOf(ex.host) === 'anthropic')) {
      const p = await peekBody(up, MAX_PEEK, { ms: PEEK_WAIT_MS, setTimer: (fn, ms) => this.d.clock.setTimer(fn, ms) });
      if (p === 'aborted') throw Object.assign(new Error('failure response aborted'), { code: 'ECONNRESET' });
      peek = p;
    }
    const failure = classify(status, up.headers, peek ? peek.head.toString('utf8') : null, false, this.d.clock.now());
    if (failure && ex.pool && ex.credential) {
      const r = this.d.pools.failover(ex.pool, ex.credential, failure.reason, failure.until);
      // A paid-overage answer is not replayed: the request itself may be what needs extra usage (long context,
      // a third-party client), so another member would be billed for it too. The agent sees the provider's
      // answer; the pool has already moved on for the next request.
      const replayable = failure.reason !== 'plan_limit';
      if (replayable && !ex.replayed && r.to && r.to !== ex.credential && !ex.finished && (await this.replay(ex, leg, original))) {
        discard(up);
        return this.onResponse(ex, leg, original);
      }
    }
    return { response: up, head: peek ? peek.head : null, replacement: null };
  }

  /** Sends the original request again with the pool's new member; true when a response arrived (now `leg.response`). */
  async replay(ex: RequestExchange, leg: UpstreamLeg, original: OriginalRequest): Promise<boolean> {
    const next = ex.pool ? this.d.pools.activeMember(this.d.pools.get(ex.pool)) : null;
    // Never replay onto a member that may not serve (past its budget, out of plan allowance).
    if (next && this.d.pools.memberRefusal(next, ex.pool)) return false;
    if (next && next !== ex.credential) await this.d.beforeUse?.(next).catch(() => {});
    const cred = this.d.credentials.apply(ex.host, original.headers, original.path, original.body, original.refreshGrant);
    if (!cred.credential || cred.credential === ex.credential || cred.report.leaked.length > 0) return false;
    // Trade the credential slot only: the request keeps its global slot, so a full global cap cannot
    // refuse the replay of a request that is already counted.
    if (!ex.permit || ex.finished || !(await ex.permit.switchTo(cred.credential))) return false;
    const previous = ex.credential;
    ex.credential = cred.credential;
    ex.refreshOwner = refreshOwnerOf(cred);
    ex.replayed = true;
    const headers = { ...cred.headers };
    if (cred.body) headers['content-length'] = String(cred.body.length);
    const opts: https.RequestOptions = { ...leg.options, headers, path: cred.path };
    this.d.log.info('replaying a failed pooled request on the next member', {
      pool: ex.pool,
      from: previous,
      to: cred.credential,
      host: ex.host,
      path: ex.path,
    });
    const failed = leg.response;
    try {
      await leg.send(opts, cred.body);
      return true;
    } catch (err) {
      this.d.log.warn('replay on the next pool member failed', { pool: ex.pool, host: ex.host, code: (err as NodeJS.ErrnoException).code });
      // The failure response is still unread: the client gets that one.
      leg.response = failed;
      return false;
    }
  }
}

/** Drops a response nobody will read (its socket is not reused: it may be mid-body). */
export function discard(res: import('node:http').IncomingMessage): void {
  res.removeAllListeners('error');
  res.on('error', () => {});
  res.destroy();
}
