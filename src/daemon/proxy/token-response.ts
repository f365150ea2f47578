/**
 * Step 6 for token-endpoint requests: the whole response is read (token responses are small), a pooled
 * member whose refresh failed (`invalid_grant`/`invalid_token`, 401, 429) is cooled — the member whose
 * refresh token was actually injected, never just the first one with that token URL — and the request is
 * replayed once on the next member; a 2xx response is rewritten so the agent only ever sees phantoms.
 */
import type { Clock } from '../clock.js';
import type { RefreshFlights } from '../oauth/refresh-flights.js';
import type { TokenExchange } from '../oauth/token-exchange.js';
import { classify } from '../pool/failover-classifier.js';
import type { PoolService } from '../pool/pool-service.js';
import type { CredentialStage } from './credential-stage.js';
import { discard, type OriginalRequest, type PoolFailover } from './pool-failover.js';
import { readBody } from './request-body.js';
import type { RequestExchange } from './request-exchange.js';
import type { Reply, UpstreamLeg } from './upstream-leg.js';

const MAX_TOKEN_RESPONSE = 1024 * 1024;

/** What the token-response stage needs. */
export interface TokenResponseDeps {
  exchange: TokenExchange;
  pools: PoolService;
  poolFailover: PoolFailover;
  credentials: CredentialStage;
  clock: Clock;
  /** Refresh single-flight; tells a refusal of a stale refresh token from one of the current token. */
  flights?: RefreshFlights;
}

/** Handles responses to token-endpoint requests. */
export class TokenResponseStage {
  constructor(private readonly d: TokenResponseDeps) {}

  /** Reads, classifies, possibly replays, rewrites; resolves with the body the client gets. */
  async onResponse(ex: RequestExchange, leg: UpstreamLeg, original: OriginalRequest): Promise<Reply> {
    const up = leg.response!;
    const status = up.statusCode ?? 0;
    const body = await readBody(up, MAX_TOKEN_RESPONSE);
    if (!Buffer.isBuffer(body)) throw Object.assign(new Error(`token response ${body}`), { code: body === 'aborted' ? 'ECONNRESET' : 'ETOOBIG' });
    // A refusal of a refresh token that is no longer the owner's current one says nothing about the owner.
    const stale = ex.refreshOwner !== null && ex.refreshSent !== null && this.d.flights !== undefined && !this.d.flights.isCurrent(ex.refreshOwner, ex.refreshSent);
    const failure = ex.refreshOwner && !stale ? classify(status, up.headers, body.toString('utf8'), true, this.d.clock.now()) : null;
    if (failure && ex.pool && ex.refreshOwner) {
      const r = this.d.pools.failover(ex.pool, ex.refreshOwner, failure.reason, failure.until);
      if (!ex.replayed && r.to && r.to !== ex.refreshOwner && !ex.finished && (await this.d.poolFailover.replay(ex, leg, original))) {
        discard(up);
        return this.onResponse(ex, leg, original);
      }
    }
    let out = body;
    if (status >= 200 && status < 300) out = this.d.exchange.rewriteSuccess(body, String(up.headers['content-type'] ?? ''), { credential: ex.refreshOwner, pool: ex.pool });
    // Defence in depth: no real token of ours leaves in any token-endpoint answer, whatever its shape.
    out = Buffer.from(this.d.credentials.maskSecrets(out.toString('utf8')));
    return { response: up, head: null, replacement: out };
  }
}
