/**
 * One client request's journey through the proxy, from arrival to the moment the response to the client
 * closes. Finishing is idempotent: permits are released, the upstream is torn down if still open, and
 * exactly one audit row and one `request.finished` event are produced.
 */
import crypto from 'node:crypto';
import type { RecentRequest } from '../../shared/protocol/entities.js';
import type { Permit } from '../concurrency/cap-registry.js';
import type { RunAgent } from './proxy-auth.js';

/** A per-run random prefix: ids stay unique across daemon restarts without a UUID per request. */
const ID_PREFIX = crypto.randomBytes(6).toString('hex');
let idCounter = 0;

/** A new exchange id, unique within this daemon run and (by its random prefix) across runs. */
export function nextExchangeId(): string {
  return `${ID_PREFIX}-${(++idCounter).toString(36)}`;
}

/** How an exchange ended. */
export type Outcome = 'completed' | 'refused' | 'client_aborted' | 'upstream_error';

/** Mutable per-request state. */
export class RequestExchange {
  private controller: AbortController | null = null;
  private gone = false;
  host = '';
  /** True when the request reached sluice inside TLS (and so goes upstream over TLS). */
  tls = false;
  port = 0;
  method = '';
  /** Path without the query string (what logs and audit rows show). */
  path = '';
  client: string | null = null;
  /** The `sluicectl run` agent whose per-run token the request carried (null: the owner's token). */
  agent: RunAgent | null = null;
  /** True once the request counted towards its agent's in-flight number (so finishing uncounts it once). */
  agentCounted = false;
  verdict: string | null = null;
  ruleId: number | null = null;
  credential: string | null = null;
  /** The pool the credential was chosen from, when the agent used a pool phantom. */
  pool: string | null = null;
  /** True once the request was replayed on another pool member (at most once). */
  replayed = false;
  /** True for a POST to a known OAuth token URL. */
  tokenEndpoint = false;
  /** For a refresh request: the credential whose real refresh token was injected (the response's owner). */
  refreshOwner: string | null = null;
  /** For a refresh request: the real refresh token it carries (in memory only; see RefreshFlights). */
  refreshSent: string | null = null;
  status: number | null = null;
  bytes = 0;
  refusal: string | null = null;
  /** True when a more specific audit row was already written for this exchange. */
  skipAudit = false;
  errorKind: string | null = null;
  upstreamEnded = false;
  finished = false;
  permit: Permit | null = null;

  constructor(
    readonly id: string,
    readonly startedAt: number,
  ) {}

  /**
   * Aborted when the client goes away. Created only when something waits on it (approval, queue): an
   * AbortController per request, and the DOMException its abort() builds, were measurable on the hot path.
   */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.gone) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** True once the client went away. */
  get clientGone(): boolean {
    return this.gone;
  }

  /** Marks the client gone and wakes anything waiting for it. */
  clientLeft(): void {
    this.gone = true;
    this.controller?.abort();
  }

  /** Releases held permits exactly once. */
  releasePermits(): void {
    const p = this.permit;
    this.permit = null;
    p?.release();
  }

  /** How the exchange ended, judged from what was recorded. */
  outcome(): Outcome {
    if (this.refusal) return 'refused';
    if (this.errorKind) return 'upstream_error';
    if (this.upstreamEnded) return 'completed';
    return 'client_aborted';
  }

  /** The dashboard's view of this request. */
  toRecent(now: number, ts: string): RecentRequest {
    return {
      id: this.id,
      ts,
      host: this.host,
      port: this.port,
      method: this.method,
      path: this.path,
      credential: this.credential,
      agent: this.agent?.name ?? null,
      status: this.status,
      outcome: this.outcome(),
      duration_ms: now - this.startedAt,
    };
  }
}
