/**
 * Step 6 for token-endpoint requests: the whole response is read (token responses are small), a pooled
 * member whose refresh failed (`invalid_grant`/`invalid_token`, 401, 429) is cooled — the member whose
 * refresh token was actually injected, never just the first one with that token URL — and the request is
 * replayed once on the next member (a refresh grant's replay inside that member's refresh flight, see
 * `holdNextFlight`); a 2xx response is rewritten so the agent only ever sees phantoms. gzip,
 * deflate and br answers are decoded first; anything unreadable fails closed with a 502.
 */
import type { Clock } from '../clock.js';
import type { RefreshFlights } from '../oauth/refresh-flights.js';
import type { TokenExchange } from '../oauth/token-exchange.js';
import { classify } from '../pool/failover-classifier.js';
import type { CredentialResult, CredentialStage } from './credential-stage.js';
import { discard, outgoingParts, type OriginalRequest, type PoolFailover } from './pool-failover.js';
import { readBody } from './request-body.js';
import { bodyCoding, decodeWhole } from './content-coding.js';
import type { UpstreamResponse } from './upstream-response.js';
import type { RequestExchange } from './request-exchange.js';
import type { Reply, UpstreamLeg } from './upstream-leg.js';
import { UpstreamResponseError } from './upstream-errors.js';

const MAX_TOKEN_RESPONSE = 1024 * 1024;

/** What the token-response stage needs. */
export interface TokenResponseDeps {
  exchange: TokenExchange;
  poolFailover: PoolFailover;
  credentials: CredentialStage;
  clock: Clock;
  /** Refresh single-flight; tells a refusal of a stale refresh token from one of the current token. */
  flights?: RefreshFlights;
}

/** Handles responses to token-endpoint requests. */
export class TokenResponseStage {
  constructor(private readonly d: TokenResponseDeps) {}

  /**
   * Reads, decodes (gzip, deflate, br), classifies, possibly replays, rewrites; resolves with the body the
   * client gets. An answer sluice cannot read (an unknown coding, a corrupt body, tokens where it does not
   * look, a form body labelled JSON) fails closed: the client gets a 502 and never the body, while any
   * token that could be read is still saved to its owner.
   */
  async onResponse(ex: RequestExchange, leg: UpstreamLeg, original: OriginalRequest): Promise<Reply> {
    const up = leg.response!;
    const status = up.statusCode ?? 0;
    const raw = await readBody(up, MAX_TOKEN_RESPONSE);
    if (!Buffer.isBuffer(raw)) throw new UpstreamResponseError(raw === 'aborted' ? 'cut_short' : 'too_large', `token response ${raw}`);
    const decoded = decode(raw, up.headers['content-encoding']);
    const body = decoded.body;
    // A refusal of a refresh token that is no longer the owner's current one says nothing about the owner.
    const stale =
      ex.refreshOwner !== null && ex.refreshSent !== null && this.d.flights !== undefined && !this.d.flights.isCurrent(ex.refreshOwner, ex.refreshSent);
    const failure = ex.refreshOwner && !stale ? classify(status, up.headers, body ? body.toString('utf8') : null, true, this.d.clock.now()) : null;
    // The member whose refresh token was injected is the one that failed (see the module comment).
    const next = failure && ex.refreshOwner ? await this.d.poolFailover.failover(ex, ex.refreshOwner, failure, original) : null;
    if (next && original.refreshGrant && this.d.flights) {
      const held = await holdNextFlight(this.d.flights, ex, next);
      if (held === 'finished') return { response: up, head: null, replacement: null };
      if (held !== 'send') return { response: up, head: null, replacement: null, answer: held.answer };
    }
    if (next && (await this.d.poolFailover.resend(ex, leg, next))) {
      discard(up);
      return this.onResponse(ex, leg, original);
    }
    if (!body) return unreadable(ex, up, decoded.reason);
    let out = body;
    if (status >= 200 && status < 300) {
      const r = this.d.exchange.rewriteAnswer(body, String(up.headers['content-type'] ?? ''), { credential: ex.refreshOwner, pool: ex.pool });
      if (r.unreadable) return unreadable(ex, up, r.unreadable);
      out = r.body;
    }
    // The relay masks every real token the vault holds (the ones just saved included) before this leaves.
    return { response: up, head: null, replacement: out };
  }
}

/**
 * Before a refresh grant is replayed on the next member: the failed member's flight ends with its own outcome
 * (failed), and the replay takes the next member's flight exactly as the first send took the first member's
 * (waiting for one under way; not sending at all when that one spent the refresh token the replay carries).
 */
async function holdNextFlight(flights: RefreshFlights, ex: RequestExchange, next: CredentialResult): Promise<'send' | 'finished' | { answer: Buffer }> {
  const endFailed = ex.endRefreshFlight;
  ex.endRefreshFlight = null;
  endFailed?.(false);
  ex.refreshSent = null;
  const owner = ex.refreshOwner;
  if (owner === null) return 'send';
  const gate = await flights.gate(owner, ex.pool, outgoingParts(next));
  if (!gate.send) return { answer: gate.answer };
  if (ex.finished) {
    gate.end(false);
    return 'finished';
  }
  ex.refreshSent = gate.sent;
  ex.endRefreshFlight = gate.end;
  return 'send';
}

/** A 502 in place of a token answer sluice could not read; the reason goes to the audit row, never the body. */
function unreadable(ex: RequestExchange, up: UpstreamResponse, reason: string): Reply {
  ex.fail(`token_response_unreadable:${reason}`);
  return {
    response: up,
    head: null,
    replacement: null,
    refusal: {
      status: 502,
      code: 'token_response_unreadable',
      message: `sluice: the token endpoint ${ex.host} answered in a form sluice cannot read (${reason}); nothing was passed on`,
    },
  };
}

/** The decoded body, or null and why it could not be decoded. */
function decode(raw: Buffer, contentEncoding: string | string[] | undefined): { body: Buffer; reason: '' } | { body: null; reason: string } {
  const c = bodyCoding(contentEncoding);
  if (c.kind === 'identity') return { body: raw, reason: '' };
  if (c.kind === 'undecodable') return { body: null, reason: `content-encoding ${c.coding}` };
  try {
    return { body: decodeWhole(raw, c.coding, MAX_TOKEN_RESPONSE), reason: '' };
  } catch {
    return { body: null, reason: `a corrupt or oversized ${c.coding} body` };
  }
}
