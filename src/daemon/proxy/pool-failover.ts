/**
 * Step 6 for pooled requests: at response-header time, a rate-limit/quota/auth failure from the member
 * cools it (before the response goes anywhere) and moves the pool on. When nothing has reached the client
 * yet, the request is replayed once on the new member (sluice buffers request bodies, so it always can),
 * and the agent only ever sees the replay's response. A paid-overage answer (`plan_limit`) cools the member
 * the same way but is never replayed (see {@link PoolFailover.onResponse}).
 */
import type { Clock } from '../clock.js';
import type { CapRegistry } from '../concurrency/cap-registry.js';
import type { Logger } from '../log.js';
import { classify, mayBePlanLimit, needsBody, type Failover } from '../pool/failover-classifier.js';
import type { PoolService } from '../pool/pool-service.js';
import { refreshOwnerOf, type CredentialResult, type CredentialStage } from './credential-stage.js';
import { peekBody, type BodyPeek } from './request-body.js';
import { bodyCoding, decodePrefix } from './content-coding.js';
import type { RequestExchange } from './request-exchange.js';
import { flavourOf } from './refusals.js';
import type { Reply, UpstreamLeg, UpstreamRequest } from './upstream-leg.js';
import { errorLabel, UpstreamResponseError } from './upstream-errors.js';

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
      if (p === 'aborted') throw new UpstreamResponseError('cut_short', 'failure response aborted');
      peek = p;
    }
    const failure = classify(status, up.headers, peek ? peekedText(peek.head, up.headers['content-encoding']) : null, false, this.d.clock.now());
    const next = failure && ex.credential ? await this.failover(ex, ex.credential, failure, original) : null;
    if (next && (await this.resend(ex, leg, next))) {
      discard(up);
      return this.onResponse(ex, leg, original);
    }
    return { response: up, head: peek ? peek.head : null, replacement: null };
  }

  /**
   * The one failover step, shared by pooled requests, token-endpoint answers and WebSocket upgrades: cools
   * `owner` (the member whose secret the failed attempt carried) for `failure`, and when the pool moved on to
   * another member and this exchange was not replayed yet, moves the exchange to that member: made ready
   * first ({@link PoolFailoverDeps.beforeUse}), `original` rewritten for it, the permit's credential slot
   * traded. Resolves with the rewritten request to send once more, or null: no replay, the client gets the
   * failure as it is.
   */
  async failover(ex: RequestExchange, owner: string, failure: Failover, original: OriginalRequest): Promise<CredentialResult | null> {
    if (!ex.pool) return null;
    const r = this.d.pools.failover(ex.pool, owner, failure.reason, failure.until);
    // A paid-overage answer is not replayed: the request itself may be what needs extra usage (long context,
    // a third-party client), so another member would be billed for it too. The agent sees the provider's
    // answer; the pool has already moved on for the next request.
    if (failure.reason === 'plan_limit') return null;
    if (ex.replayed || !r.to || r.to === owner || ex.finished) return null;
    const next = this.d.pools.activeMember(this.d.pools.get(ex.pool));
    // Never replay onto a member that may not serve (past its budget, out of plan allowance).
    if (next && this.d.pools.memberRefusal(next, ex.pool)) return null;
    if (next && next !== ex.credential) await this.d.beforeUse?.(next).catch(() => {});
    const cred = this.d.credentials.apply(ex.host, original.headers, original.path, original.body, original.refreshGrant);
    if (!cred.credential || cred.credential === ex.credential || cred.report.leaked.length > 0) return null;
    // Trade the credential slot only: the request keeps its global slot, so a full global cap cannot
    // refuse the replay of a request that is already counted.
    if (!ex.permit || ex.finished || !(await ex.permit.switchTo(cred.credential))) return null;
    const previous = ex.credential;
    ex.credential = cred.credential;
    ex.refreshOwner = refreshOwnerOf(cred);
    ex.replayed = true;
    this.d.log.info('replaying a failed pooled request on the next member', {
      pool: ex.pool,
      from: previous,
      to: cred.credential,
      host: ex.host,
      path: ex.path,
    });
    return cred;
  }

  /** Sends `cred` (from {@link failover}) on `leg`; true when a response arrived (now `leg.response`). */
  async resend(ex: RequestExchange, leg: UpstreamLeg, cred: CredentialResult): Promise<boolean> {
    const headers = { ...cred.headers };
    if (cred.body) headers['content-length'] = String(cred.body.length);
    const opts: UpstreamRequest = { ...leg.options, headers, path: cred.path };
    const failed = leg.response;
    try {
      await leg.send(opts, cred.body);
      return true;
    } catch (err) {
      this.d.log.warn('replay on the next pool member failed', { pool: ex.pool, host: ex.host, code: errorLabel(err) || undefined });
      // The failure response is still unread: the client gets that one.
      leg.response = failed;
      return false;
    }
  }
}

/** The parts of a rewritten request a real refresh token may sit in (what `RefreshFlights.gate` looks through). */
export function outgoingParts(cred: CredentialResult): (string | Buffer | null)[] {
  return [cred.body, cred.path, ...Object.values(cred.headers).flat()];
}

/** Drops a response nobody will read (its socket is not reused: it may be mid-body). */
export function discard(res: import('node:stream').Readable): void {
  res.removeAllListeners('error');
  res.on('error', () => {});
  res.destroy();
}

/**
 * The text of a peeked error body, decoded when the upstream compressed it (sluice asks for gzip, deflate or
 * br, so a quota or overage answer may well come compressed); an undecodable one reads as no text.
 */
function peekedText(head: Buffer, contentEncoding: string | string[] | undefined): string {
  const c = bodyCoding(contentEncoding);
  if (c.kind === 'identity') return head.toString('utf8');
  if (c.kind === 'undecodable') return '';
  return decodePrefix(head, c.coding, MAX_PEEK)?.toString('utf8') ?? '';
}
