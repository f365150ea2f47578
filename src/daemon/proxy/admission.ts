/**
 * The protocol-independent part of the pipeline, shared by HTTP requests and WebSocket upgrades: access
 * check, policy, phantom resolution in the request line and headers (a leak or a stale phantom is refused
 * before anyone is asked), approval and permits, all decided before any body is read. Credentials are
 * resolved again after an approval wait (the pool's active member or a stored secret may have changed
 * during a 120 s prompt) and OAuth tokens are refreshed only once the request may go. The body, read by the
 * caller only for a request that passed, goes through {@link Admission.admitBody}. Either everything passes
 * and the caller holds permits plus rewritten parts, or it gets a refusal to answer with; nothing here
 * writes to a socket.
 */
import type http from 'node:http';
import type { ApprovalBroker, ApprovalOutcome } from '../approval/approval-broker.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { CapRefusal, CapRegistry, Permit } from '../concurrency/cap-registry.js';
import type { Logger } from '../log.js';
import type { PolicyDecision, PolicyEngine } from '../policy/policy-engine.js';
import type { CredentialResult, CredentialStage } from './credential-stage.js';
import type { Identity, ProxyAuth } from './proxy-auth.js';
import type { Refusal } from './refusals.js';
import type { RequestExchange } from './request-exchange.js';
import { exchangeRow } from './exchange-audit.js';
import type { RequestObserver } from './request-observer.js';
import { Lru } from '../ca/lru.js';
import { hostProblem, parseConnectTarget } from './target-syntax.js';

/** What admission needs. */
export interface AdmissionDeps {
  log: Logger;
  auth: ProxyAuth;
  policy: PolicyEngine;
  broker: ApprovalBroker;
  credentials: CredentialStage;
  caps: CapRegistry;
  audit: AuditLog;
  observer: RequestObserver;
  /** The proxy's own listening ports (requests aimed at them are loops). */
  selfPorts: () => number[];
  /** Refreshes an OAuth credential whose access token has expired (single-flight); absent = no OAuth. */
  ensureFresh?: (credential: string) => Promise<void>;
  /**
   * Whether the resolved credential (a pool member when `pool` is set) may be sent a request now: a 429 to
   * answer when it is past its daily budget or out of plan allowance (issue 24); absent = always.
   */
  memberRefusal?: (credential: string, pool: string | null) => Refusal | null;
}

/** How a request arrived, for the access check. */
export interface Arrival {
  isSSL: boolean;
  /** The CONNECT request this connection came through, if any. */
  connectRequest: http.IncomingMessage | undefined;
  headers: http.IncomingHttpHeaders;
  /** The host as the client spelled it, when it had no canonical form (for the 400 message). */
  invalidHost?: string | undefined;
}

/** Options of {@link Admission.admit}. */
export interface AdmitOptions {
  /** A POST to a known token URL: refresh phantoms may resolve (confirmed by {@link Admission.admitBody}). */
  tokenEndpoint?: boolean;
  /** The caller will read a body and call {@link Admission.admitBody}; else admission is complete here. */
  bodyFollows?: boolean;
}

/** The outcome of admission. */
export type AdmitResult = { kind: 'ok'; cred: CredentialResult; permit: Permit } | { kind: 'refused'; refusal: Refusal; audited: boolean } | { kind: 'gone' };

/** The outcome of {@link Admission.admitBody}: null = go on. */
export type BodyRefusal = { refusal: Refusal; audited: boolean } | null;

const APPROVAL_MESSAGES: Record<Exclude<ApprovalOutcome, { allowed: true }>['reason'], string> = {
  denied: 'the request was denied by the user',
  timeout: 'no one approved the request in time (timed out; denied)',
  too_many_waiting: 'too many requests waiting for approval of this destination',
  queue_full: 'approval queue full: too many destinations waiting for approval',
  shutdown: 'sluice is shutting down',
  aborted: 'the client went away',
};

/** Decides whether a request may go upstream, and with which credential. */
export class Admission {
  /** Who opened each tunnel, decided once per CONNECT (a kept-alive tunnel carries many requests). */
  private readonly tunnelIdentities = new WeakMap<http.IncomingMessage, Identity>();

  constructor(private readonly d: AdmissionDeps) {}

  /**
   * Checks that the client may use the proxy at all. HTTPS (and tunnelled) requests passed an
   * authenticated CONNECT; a TLS request without one reached the internal server directly.
   */
  checkAccess(ex: RequestExchange, a: Arrival): { refusal: Refusal; audited: boolean } | null {
    if (!ex.host) return { refusal: { status: 400, code: 'invalid_host', message: hostProblem(a.invalidHost ?? '') }, audited: false };
    const identity = this.identityOf(a);
    if (identity.ok && identity.agent) {
      // A run's token dies with its run, even on a tunnel opened while it was alive.
      if (!this.d.auth.isLive(identity.agent.id)) return this.refuseAuth(ex);
      ex.agent = identity.agent;
    }
    if (!a.connectRequest) {
      if (a.isSSL) return { refusal: { status: 403, code: 'not_via_proxy', message: 'connect through the sluice proxy' }, audited: false };
      if (!identity.ok) return this.refuseAuth(ex);
    } else if (a.isSSL && !sameTarget(a.connectRequest.url, ex.host, ex.port)) {
      return { refusal: { status: 421, code: 'misdirected', message: 'the Host header does not match the CONNECT target' }, audited: false };
    }
    if (this.isLoop(ex)) return { refusal: { status: 400, code: 'proxy_loop', message: 'requests to the sluice proxy itself are refused' }, audited: false };
    return null;
  }

  /** The proxy credential's identity: from the CONNECT of a tunnel (checked once per tunnel), else the request's own header. */
  private identityOf(a: Arrival): Identity {
    if (!a.connectRequest) return this.d.auth.identify(a.headers['proxy-authorization']);
    let id = this.tunnelIdentities.get(a.connectRequest);
    if (!id) {
      id = this.d.auth.identify(a.connectRequest.headers['proxy-authorization']);
      this.tunnelIdentities.set(a.connectRequest, id);
    }
    return id;
  }

  private refuseAuth(ex: RequestExchange): { refusal: Refusal; audited: boolean } {
    this.d.audit.append(exchangeRow(ex, 'proxy_auth_failed', { status: 407 }));
    return { refusal: { status: 407, code: 'proxy_auth_required', message: 'sluice proxy access token required (see `sluicectl env`)' }, audited: true };
  }

  /**
   * Policy → credentials (request line and headers) → approval → permits for `ex`. Waiting aborts when
   * the client leaves. Answers synchronously when nothing has to wait (no token refresh, no approval, a
   * free slot): the common case, and then the request costs no promise or microtask here.
   */
  admit(ex: RequestExchange, headers: http.IncomingHttpHeaders, path: string, o: AdmitOptions = {}): AdmitResult | Promise<AdmitResult> {
    const decision = this.d.policy.evaluate({ host: ex.host, port: ex.port, method: ex.method, path: ex.path });
    ex.verdict = decision.verdict;
    ex.ruleId = decision.rule_id;
    this.d.observer.started(ex);
    if (decision.verdict === 'deny') {
      return refused({
        status: 403,
        code: 'policy_denied',
        message: `sluice: ${ex.host}:${ex.port} denied by ${decision.reason}`,
        extra: { rule_id: decision.rule_id },
      });
    }
    if (decision.verdict !== 'ask') return this.freshThenResolve(ex, headers, path, o);
    // Check before asking: a leak or a stale phantom is refused without bothering a human. Nothing here
    // refreshes a token or keeps the member it found: both happen again once the request is approved.
    const early = this.headProblem(ex, this.d.credentials.applyHead(ex.host, headers, path, o.tokenEndpoint ?? false));
    if (early) return early;
    return this.d.broker
      .ask({ host: ex.host, port: ex.port, method: ex.method, path: ex.path, coalesce: decision.coalesce, agent: ex.agent?.name ?? null }, ex.signal)
      .then((outcome) => {
        if (!outcome.allowed) {
          if (outcome.reason === 'aborted') return GONE;
          ex.verdict = outcome.reason === 'denied' ? 'denied_by_user' : `ask_${outcome.reason}`;
          return refused({
            status: 403,
            code: `approval_${outcome.reason}`,
            message: `sluice: ${ex.host}:${ex.port}: ${APPROVAL_MESSAGES[outcome.reason]}`,
            extra: { approval_id: outcome.approval_id },
          });
        }
        ex.verdict = outcome.decision === 'always_allow' ? 'approved_always' : 'approved_once';
        if (ex.clientGone) return GONE;
        return this.freshThenResolve(ex, headers, path, o);
      });
  }

  /** Refreshes any expired OAuth token the request line and headers name, then resolves them and takes permits. */
  private freshThenResolve(ex: RequestExchange, headers: http.IncomingHttpHeaders, path: string, o: AdmitOptions): AdmitResult | Promise<AdmitResult> {
    const refresh = this.freshen(() => [...Object.values(headers).flat(), path], o.tokenEndpoint ?? false);
    if (refresh) return refresh.then(() => this.resolveHead(ex, headers, path, o));
    return this.resolveHead(ex, headers, path, o);
  }

  /** Refreshes the expired OAuth credentials that phantoms in `texts` would inject now; null when there are none. */
  private freshen(texts: () => readonly (string | Buffer | null | undefined)[], refreshGrant: boolean): Promise<unknown> | null {
    // Checked first: without OAuth credentials (the common case) no list of the request's texts is built.
    if (!this.d.ensureFresh || refreshGrant || !this.d.credentials.hasOAuth()) return null;
    const names = this.d.credentials.oauthCredentialsIn(texts());
    if (names.length === 0) return null;
    return Promise.all(names.map((n) => this.d.ensureFresh!(n).catch(() => {})));
  }

  /** Resolves phantoms in the request line and headers for good, refuses what must not go, takes permits. */
  private resolveHead(ex: RequestExchange, headers: http.IncomingHttpHeaders, path: string, o: AdmitOptions): AdmitResult | Promise<AdmitResult> {
    const cred = this.d.credentials.applyHead(ex.host, headers, path, o.tokenEndpoint ?? false);
    const problem = this.headProblem(ex, cred);
    if (problem) return problem;
    if (!o.bodyFollows) this.auditNotInjected(ex, cred);
    return this.takePermit(ex, cred);
  }

  /** A refusal for what a rewrite found (stale phantom, leak, secret in cleartext), or null. */
  private headProblem(ex: RequestExchange, cred: CredentialResult): AdmitResult | null {
    if (cred.report.unknown > 0) return this.refuseUnknown(ex, cred.report.unknown, [...cred.report.unknownAt]);
    if (cred.report.leaked.length > 0)
      return this.blockLeak(
        ex,
        cred.report.leaked.map((l) => l.label),
      );
    if (!ex.tls && cred.report.used.size > 0) {
      // A real secret never travels in cleartext, even to its own host.
      return refused({ status: 403, code: 'cleartext_refused', message: `sluice: credentials are only injected into HTTPS requests; use https://${ex.host}` });
    }
    return null;
  }

  /**
   * The body phase for a request {@link admit} let through with `bodyFollows`: phantoms in the body are
   * resolved (after refreshing an expired OAuth token they name), a leak or stale phantom there still
   * blocks the request (the caller's `finish` releases its permits), and a credential named only by the
   * body takes its slot now. `decoded` is the identity form of an encoded body (see
   * CredentialStage.applyBody). Writes the request's one `phantom_not_injected` row, if any.
   */
  admitBody(
    ex: RequestExchange,
    cred: CredentialResult,
    body: Buffer | null,
    decoded: Buffer | null,
    refreshGrant: boolean,
  ): BodyRefusal | Promise<BodyRefusal> {
    const refresh = this.freshen(() => [decoded ?? body], refreshGrant);
    if (refresh) return refresh.then(() => this.resolveBody(ex, cred, body, decoded, refreshGrant));
    return this.resolveBody(ex, cred, body, decoded, refreshGrant);
  }

  private resolveBody(
    ex: RequestExchange,
    cred: CredentialResult,
    body: Buffer | null,
    decoded: Buffer | null,
    refreshGrant: boolean,
  ): BodyRefusal | Promise<BodyRefusal> {
    const hadCredential = cred.credential;
    this.d.credentials.applyBody(ex.host, cred, body, decoded, refreshGrant);
    if (!refreshGrant) {
      // The head was resolved as if this could be a refresh grant; the body says it is not.
      for (const t of cred.report.used.values()) if (t.slot === 'refresh') cred.report.leaked.push(t);
    }
    const problem = this.headProblem(ex, cred);
    if (problem) return problem.kind === 'refused' ? { refusal: problem.refusal, audited: problem.audited } : null;
    this.auditNotInjected(ex, cred);
    if (hadCredential !== null || cred.credential === null || !ex.permit) return null;
    // Only the body named a credential: trade the request's credential-less slot for that credential's.
    ex.credential = cred.credential;
    ex.pool = cred.pool;
    const spent = this.memberRefusal(ex, cred.credential, cred.pool);
    if (spent) return { refusal: spent, audited: false };
    return ex.permit.switchTo(cred.credential).then((ok) => {
      if (ok) return null;
      const cap = this.d.caps.countsFor(cred.credential!);
      this.d.observer.rejected(ex, 'per_credential_cap', cap.in_flight);
      return {
        refusal: { status: 429, code: 'per_credential_cap', message: 'Too many concurrent requests against this credential. Retry shortly.', retryAfterS: 1 },
        audited: false,
      };
    });
  }

  /** The 429 for a credential that may not be sent a request now (budget, plan allowance), or null. */
  private memberRefusal(ex: RequestExchange, credential: string | null, pool: string | null): Refusal | null {
    if (credential === null || !this.d.memberRefusal) return null;
    const r = this.d.memberRefusal(credential, pool);
    // Debug only: an agent retrying against a spent budget would write a warning per request; the audit row
    // and notice (once a day per credential) already say it.
    if (r) this.d.log.debug('refused a request for a credential that may not serve now', { reason: r.code, credential, pool, host: ex.host, path: ex.path });
    return r;
  }

  /** One audit row per request naming the credentials whose phantom was left in place, and where. */
  private auditNotInjected(ex: RequestExchange, cred: CredentialResult): void {
    const n = cred.report.notInjected;
    if (n.length === 0) return;
    const where = n.map((x) => `${x.label}@${x.site}`).join(', ');
    this.d.audit.append(
      exchangeRow(ex, 'phantom_not_injected', {
        credential: [...new Set(n.map((x) => x.label))].join(','),
        detail: `phantom left in place (not an injection site of its credential): ${where}`,
      }),
    );
  }

  /** A stale phantom: the agent holds a token for a credential that was removed or renamed. Never forwarded. */
  private refuseUnknown(ex: RequestExchange, count: number, where: string[]): AdmitResult {
    const detail = `${count === 1 ? 'a phantom' : `${count} phantoms`} matching no credential sent to ${ex.host} (in: ${where.join(', ') || 'request'})`;
    this.d.log.warn('refused a request carrying an unknown phantom', { host: ex.host, path: ex.path, count });
    this.d.audit.append(exchangeRow(ex, 'unknown_phantom', { status: 401, detail }));
    this.d.observer.notice('warn', 'unknown_phantom', `${detail}: credential removed or renamed? run \`sluicectl cred list\``);
    return {
      kind: 'refused',
      refusal: {
        status: 401,
        code: 'unknown_phantom',
        message: 'sluice: this request carries a sluice phantom that matches no credential (credential removed or renamed? run `sluicectl cred list`)',
      },
      audited: true,
    };
  }

  /** Takes the request's permits: at once when a slot is free, else after waiting in the credential's queue. */
  private takePermit(ex: RequestExchange, cred: CredentialResult): AdmitResult | Promise<AdmitResult> {
    ex.credential = cred.credential;
    ex.pool = cred.pool;
    const spent = this.memberRefusal(ex, cred.credential, cred.pool);
    if (spent) return refused(spent);
    const signal = () => ex.signal;
    const now = this.d.caps.tryAcquire(cred.credential, signal);
    if (now) return this.permitResult(ex, cred, now);
    return this.d.caps.acquire(cred.credential, signal).then((p) => this.permitResult(ex, cred, p));
  }

  private permitResult(ex: RequestExchange, cred: CredentialResult, permit: Permit | { refused: CapRefusal } | { aborted: true }): AdmitResult {
    if ('aborted' in permit) return GONE;
    if ('refused' in permit) {
      const { reason, cap } = permit.refused;
      this.d.log.warn('concurrency cap refused a request', { reason, cap, credential: cred.credential, host: ex.host, path: ex.path });
      this.d.observer.rejected(ex, reason, cap);
      const message =
        reason === 'global_cap'
          ? 'Server is at capacity. Retry shortly.'
          : `Too many concurrent requests against this credential (cap: ${cap}). Retry shortly.`;
      return refused({ status: 429, code: reason, message, retryAfterS: 1, extra: { cap } });
    }
    return { kind: 'ok', cred, permit };
  }

  private blockLeak(ex: RequestExchange, labels: string[]): AdmitResult {
    const detail = `phantom of ${labels.join(', ')} sent to ${ex.host}, which it is not bound to`;
    this.d.log.warn('blocked a phantom sent to an unbound host', { host: ex.host, credentials: labels, path: ex.path });
    this.d.audit.append(exchangeRow(ex, 'phantom_leak', { credential: labels.join(','), status: 403, detail }));
    this.d.observer.notice('warn', 'phantom_leak', detail);
    return {
      kind: 'refused',
      refusal: { status: 403, code: 'phantom_leak', message: `sluice: blocked a credential phantom sent to ${ex.host}, a host it is not bound to` },
      audited: true,
    };
  }

  private isLoop(ex: RequestExchange): boolean {
    const local = ex.host === 'localhost' || ex.host.startsWith('127.') || ex.host === '[::1]' || ex.host === '::1' || ex.host === '0.0.0.0';
    return local && this.d.selfPorts().includes(ex.port);
  }
}

const GONE: AdmitResult = { kind: 'gone' };

function refused(refusal: Refusal): AdmitResult {
  return { kind: 'refused', refusal, audited: false };
}

/** CONNECT targets parsed once: every request on a tunnel is checked against the same one. */
const connectTargets = new Lru<string, { host: string; port: number } | null>(4096);

/** True when the canonical CONNECT target is `host:port` (both sides canonical: `evil.example.` is `evil.example`). */
function sameTarget(connectUrl: string | undefined, host: string, port: number): boolean {
  if (!connectUrl) return false;
  let t = connectTargets.get(connectUrl);
  if (t === undefined) {
    t = parseConnectTarget(connectUrl);
    connectTargets.set(connectUrl, t);
  }
  return t !== null && t.port === port && t.host === host;
}
