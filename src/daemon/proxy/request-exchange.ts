/**
 * One client request's (or WebSocket upgrade's) journey through the proxy, from arrival to the moment the
 * client connection closes: one lifecycle, admitting → reading_body → forwarding → relaying → finished, with
 * the outcome recorded as it becomes known. Transitions only go forward; once finished nothing changes
 * (finishing again, refusing or failing after the end are no-ops), so exactly one closing audit row and one
 * `request.finished` event are produced (see exchange-audit.ts).
 */
import crypto from 'node:crypto';
import type { RecentRequest } from '../../shared/protocol/entities.js';
import type { RefusalCode } from '../../shared/protocol/refusal-codes.js';
import type { Permit } from '../concurrency/cap-registry.js';
import type { RunAgent } from './proxy-auth.js';
import type { Refusal } from './refusals.js';

/** A per-run random prefix: ids stay unique across daemon restarts without a UUID per request. */
const ID_PREFIX = crypto.randomBytes(6).toString('hex');
let idCounter = 0;

/** A new exchange id, unique within this daemon run and (by its random prefix) across runs. */
export function nextExchangeId(): string {
  return `${ID_PREFIX}-${(++idCounter).toString(36)}`;
}

/**
 * Where an exchange is. A WebSocket upgrade skips `reading_body`; a refusal or failure goes straight to
 * `finished` from wherever it happened.
 */
export type ExchangePhase = 'admitting' | 'reading_body' | 'forwarding' | 'relaying' | 'finished';

/** How an exchange ended. */
export type Outcome = 'completed' | 'refused' | 'client_aborted' | 'upstream_error';

/** What the exchange is: a plain HTTP request/response, or a WebSocket upgrade and the socket it opens. */
export type ExchangeProtocol = 'http' | 'websocket';

const PHASE_ORDER: Record<ExchangePhase, number> = { admitting: 0, reading_body: 1, forwarding: 2, relaying: 3, finished: 4 };
/**
 * Which recorded outcome wins: sluice's own answer over an upstream failure (a token answer sluice could not
 * read is both), a failure over a completion (a WebSocket whose upstream errored), anything over none.
 */
const OUTCOME_RANK: Record<Outcome, number> = { client_aborted: 0, completed: 1, upstream_error: 2, refused: 3 };

/** One exchange's state and what is known about it (the audit row and dashboard read it). */
export class RequestExchange {
  private controller: AbortController | null = null;
  private gone = false;
  private at: ExchangePhase = 'admitting';
  private ended: Outcome = 'client_aborted';
  private refusedWith: RefusalCode | null = null;
  private failure: string | null = null;
  private auditedElsewhere = false;
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
  verdict: string | null = null;
  ruleId: number | null = null;
  credential: string | null = null;
  /** The pool the credential was chosen from, when the agent used a pool phantom. */
  pool: string | null = null;
  /** True once the request was replayed on another pool member (failover happens at most once). */
  replayed = false;
  /** True for a POST to a known OAuth token URL. */
  tokenEndpoint = false;
  /** For a refresh request: the credential whose real refresh token was injected (the response's owner). */
  refreshOwner: string | null = null;
  /** For a refresh request: the real refresh token it carries (in memory only; see RefreshFlights). */
  refreshSent: string | null = null;
  /**
   * For a refresh request: ends the refresh flight it holds for `refreshOwner` (see RefreshFlights.gate), with
   * whether that refresh succeeded; null when it holds none. A pooled replay ends the first member's flight and
   * takes the next member's, so whoever ends the exchange ends the flight it holds now.
   */
  endRefreshFlight: ((ok: boolean) => void) | null = null;
  status: number | null = null;
  bytes = 0;
  permit: Permit | null = null;

  constructor(
    readonly id: string,
    readonly startedAt: number,
    readonly protocol: ExchangeProtocol = 'http',
  ) {}

  /** Where the exchange is now. */
  get phase(): ExchangePhase {
    return this.at;
  }

  /** True once the exchange ended (its closing row is written or being written). */
  get finished(): boolean {
    return this.at === 'finished';
  }

  /** Moves on to `next`; false, and nothing changes, when `next` is not ahead of the current phase (or the exchange finished). */
  advance(next: Exclude<ExchangePhase, 'finished'>): boolean {
    if (PHASE_ORDER[next] <= PHASE_ORDER[this.at]) return false;
    this.at = next;
    return true;
  }

  /** Ends the exchange. True only the first time: whoever gets true releases, tears down and audits. */
  finish(): boolean {
    if (this.at === 'finished') return false;
    this.at = 'finished';
    return true;
  }

  /**
   * Records that sluice answers `r` itself instead of the upstream (`audited`: a more specific row was
   * written already, so the closing row is left out). False, and nothing recorded, after the end.
   */
  refuse(r: Refusal, audited = false): boolean {
    if (this.finished) return false;
    this.refusedWith = r.code;
    this.status = r.status;
    this.auditedElsewhere = audited;
    this.settle('refused');
    return true;
  }

  /** Records an upstream failure (`errorKind` is the audit detail, see upstream-errors.ts). No-op after the end. */
  fail(errorKind: string): void {
    if (this.finished) return;
    this.failure = errorKind;
    this.settle('upstream_error');
  }

  /** Records that the whole answer reached the client (or, for a WebSocket, that the socket was relayed). No-op after the end. */
  complete(): void {
    if (!this.finished) this.settle('completed');
  }

  /** The refusal code sluice answered with, or null. */
  get refusal(): RefusalCode | null {
    return this.refusedWith;
  }

  /** What went wrong upstream (the audit detail), or null. */
  get errorKind(): string | null {
    return this.failure;
  }

  /** False when a more specific audit row already stands for this exchange (see {@link refuse}). */
  get needsClosingRow(): boolean {
    return !this.auditedElsewhere;
  }

  private settle(o: Outcome): void {
    if (OUTCOME_RANK[o] > OUTCOME_RANK[this.ended]) this.ended = o;
  }

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

  /** How the exchange ended (so far): the strongest outcome recorded, `client_aborted` when none was. */
  outcome(): Outcome {
    return this.ended;
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
