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
import { FixedBodyFilter, readBody } from './request-body.js';
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

const MAX_FAILURE_BODY = 1024 * 1024;

/** Classifies pooled responses and replays failures once. */
export class PoolFailover {
  constructor(private readonly d: PoolFailoverDeps) {}

  /**
   * Inspects `ctx.serverToProxyResponse` for pooled exchange `ex`; may swap it for a replay's response.
   * Calls `next` exactly once, when the (possibly new) response may be sent to the client.
   */
  async onResponse(ctx: IContext, ex: RequestExchange, original: OriginalRequest, next: () => void): Promise<void> {
    const up = ctx.serverToProxyResponse!;
    const status = up.statusCode ?? 0;
    let body: Buffer | null = null;
    if (status === 429 || status === 401 || needsBody(status, false)) {
      const b = await readBody(up, MAX_FAILURE_BODY);
      if (b === 'aborted' || b === 'too_large') {
        this.d.onError(ctx, new Error(`failure response ${b}`), 'SERVER_TO_PROXY_RESPONSE_ERROR');
        return;
      }
      body = b;
    }
    const failure = classify(status, up.headers, body?.toString('utf8') ?? null, false, this.d.clock.now());
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
    if (body) ctx.addResponseFilter(new FixedBodyFilter(body));
    next();
  }

  /** Sends the original request again with the pool's new member; true when a response arrived. */
  async replay(ctx: IContext, ex: RequestExchange, original: OriginalRequest): Promise<boolean> {
    const next = ex.pool ? this.d.pools.activeMember(this.d.pools.get(ex.pool)) : null;
    if (next && next !== ex.credential) await this.d.beforeUse?.(next).catch(() => {});
    const cred = this.d.credentials.apply(ex.host, original.headers, original.path, original.body, original.refreshGrant);
    if (!cred.credential || cred.credential === ex.credential || cred.report.leaked.length > 0) return false;
    const permit = await this.d.caps.acquire(cred.credential);
    if (!('release' in permit)) return false;
    if (ex.finished) {
      permit.release();
      return false;
    }
    const previous = ex.credential;
    ex.releasePermits();
    ex.release = permit.release;
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
