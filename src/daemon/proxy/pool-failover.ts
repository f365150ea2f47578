/**
 * Step 6 for pooled requests: at response-header time, a rate-limit/quota/auth failure from the member
 * cools it (before the response goes anywhere) and moves the pool on. When nothing has reached the client
 * yet, the request is replayed once on the new member (sluice buffers request bodies, so it always can),
 * and the agent only ever sees the replay's response.
 */
import http from 'node:http';
import https from 'node:https';
import type { IContext } from 'http-mitm-proxy';
import type { Clock } from '../clock.js';
import type { CapRegistry } from '../concurrency/cap-registry.js';
import type { Logger } from '../log.js';
import { classify, needsBody } from '../pool/failover-classifier.js';
import type { PoolService } from '../pool/pool-service.js';
import { refreshOwnerOf, type CredentialStage } from './credential-stage.js';
import { PrefixFilter, peekBody, type BodyPeek } from './request-body.js';
import type { RequestExchange } from './request-exchange.js';

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
  /** Where upstream stream errors go (the pipeline's error handler). */
  onError: (ctx: IContext, err: Error, kind: string) => void;
  /** Makes sure a member is ready to serve (e.g. refreshes an expired OAuth token) before a replay. */
  beforeUse?: (member: string) => Promise<void>;
}

/** How much of a 403 body is read to look for a quota error before it streams on to the client. */
const MAX_PEEK = 64 * 1024;

/** Classifies pooled responses and replays failures once. */
export class PoolFailover {
  constructor(private readonly d: PoolFailoverDeps) {}

  /**
   * Inspects `ctx.serverToProxyResponse` for pooled exchange `ex`; may swap it for a replay's response.
   * 429 and 401 are classified from the status line alone, so the member cools at header time even when
   * the body streams or is huge; only a 403 needs a (bounded) look at its body. Calls `next` exactly once,
   * when the (possibly new) response may be sent to the client.
   */
  async onResponse(ctx: IContext, ex: RequestExchange, original: OriginalRequest, next: () => void): Promise<void> {
    const up = ctx.serverToProxyResponse!;
    const status = up.statusCode ?? 0;
    let peek: BodyPeek | null = null;
    if (needsBody(status, false)) {
      const p = await peekBody(up, MAX_PEEK);
      if (p === 'aborted') {
        this.d.onError(ctx, new Error('failure response aborted'), 'SERVER_TO_PROXY_RESPONSE_ERROR');
        return;
      }
      peek = p;
    }
    const failure = classify(status, up.headers, peek ? peek.head.toString('utf8') : null, false, this.d.clock.now());
    if (failure && ex.pool && ex.credential) {
      const r = this.d.pools.failover(ex.pool, ex.credential, failure.reason, failure.until);
      if (!ex.replayed && r.to && r.to !== ex.credential && !ex.finished && (await this.replay(ctx, ex, original))) {
        up.removeAllListeners('error');
        up.on('error', () => {});
        up.destroy();
        ex.status = ctx.serverToProxyResponse!.statusCode ?? null;
        return this.onResponse(ctx, ex, original, next);
      }
    }
    if (peek) ctx.addResponseFilter(new PrefixFilter(peek.head));
    next();
  }

  /** Sends the original request again with the pool's new member; true when a response arrived. */
  async replay(ctx: IContext, ex: RequestExchange, original: OriginalRequest): Promise<boolean> {
    const next = ex.pool ? this.d.pools.activeMember(this.d.pools.get(ex.pool)) : null;
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
    const opts = { ...ctx.proxyToServerRequestOptions!, headers, path: cred.path } as https.RequestOptions;
    this.d.log.info('replaying a failed pooled request on the next member', { pool: ex.pool, from: previous, to: cred.credential, host: ex.host, path: ex.path });
    return new Promise<boolean>((resolve) => {
      const req = (ctx.isSSL ? https : http).request(opts, (res) => {
        res.pause();
        res.on('error', (err) => this.d.onError(ctx, err, 'SERVER_TO_PROXY_RESPONSE_ERROR'));
        ctx.serverToProxyResponse = res;
        resolve(true);
      });
      req.on('error', (err) => {
        this.d.log.warn('replay on the next pool member failed', { pool: ex.pool, host: ex.host, code: (err as NodeJS.ErrnoException).code });
        resolve(false);
      });
      ctx.proxyToServerRequest = req;
      req.end(cred.body ?? undefined);
    });
  }
}
