/**
 * The protocol-independent part of the pipeline, shared by HTTP requests and WebSocket upgrades: access
 * check, policy, phantom resolution (a leak is blocked before anyone is asked), approval and permits.
 * Either everything passes and the caller holds permits plus rewritten headers, or it gets a refusal to
 * answer with; nothing here writes to a socket.
 */
import type http from 'node:http';
import type { ApprovalBroker, ApprovalOutcome } from '../approval/approval-broker.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { CapRefusal, CapRegistry, Permit } from '../concurrency/cap-registry.js';
import type { Logger } from '../log.js';
import type { PolicyDecision, PolicyEngine } from '../policy/policy-engine.js';
import type { CredentialResult, CredentialStage } from './credential-stage.js';
import type { ProxyAuth } from './proxy-auth.js';
import type { Refusal } from './refusals.js';
import type { RequestExchange } from './request-exchange.js';
import type { RequestObserver } from './request-observer.js';
import { Lru } from '../ca/lru.js';
import { isValidHost } from './target-syntax.js';

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
}

/** How a request arrived, for the access check. */
export interface Arrival {
  isSSL: boolean;
  /** The CONNECT request this connection came through, if any. */
  connectRequest: http.IncomingMessage | undefined;
  headers: http.IncomingHttpHeaders;
}

/** The outcome of admission. */
export type AdmitResult =
  | { kind: 'ok'; cred: CredentialResult; permit: Permit }
  | { kind: 'refused'; refusal: Refusal; audited: boolean }
  | { kind: 'gone' };

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
  constructor(private readonly d: AdmissionDeps) {}

  /**
   * Checks that the client may use the proxy at all. HTTPS (and tunnelled) requests passed an
   * authenticated CONNECT; a TLS request without one reached the internal server directly.
   */
  checkAccess(ex: RequestExchange, a: Arrival): { refusal: Refusal; audited: boolean } | null {
    if (!isValidHost(ex.host)) return { refusal: { status: 400, code: 'invalid_host', message: 'sluice: the request has no valid target host' }, audited: false };
    if (!a.connectRequest) {
      if (a.isSSL) return { refusal: { status: 403, code: 'not_via_proxy', message: 'connect through the sluice proxy' }, audited: false };
      if (!this.d.auth.check(a.headers['proxy-authorization'])) {
        this.d.audit.append({ event: 'proxy_auth_failed', client: ex.client, host: ex.host, port: ex.port, method: ex.method, path: ex.path, status: 407 });
        return { refusal: { status: 407, code: 'proxy_auth_required', message: 'sluice proxy access token required (see `sluicectl env`)' }, audited: true };
      }
    } else if (a.isSSL && !sameTarget(a.connectRequest.url, ex.host, ex.port)) {
      return { refusal: { status: 421, code: 'misdirected', message: 'the Host header does not match the CONNECT target' }, audited: false };
    }
    if (this.isLoop(ex)) return { refusal: { status: 400, code: 'proxy_loop', message: 'requests to the sluice proxy itself are refused' }, audited: false };
    return null;
  }

  /**
   * Policy → credentials → approval → permits for `ex`. `signal` aborts waiting when the client leaves.
   * Answers synchronously when nothing has to wait (no token refresh, no approval, a free slot): the
   * common case, and then the request costs no promise or microtask here.
   */
  admit(ex: RequestExchange, headers: http.IncomingHttpHeaders, path: string, body: Buffer | null, refreshGrant = false): AdmitResult | Promise<AdmitResult> {
    const decision = this.d.policy.evaluate({ host: ex.host, port: ex.port, method: ex.method, path: ex.path });
    ex.verdict = decision.verdict;
    ex.ruleId = decision.rule_id;
    this.d.observer.started(ex);
    if (decision.verdict === 'deny') {
      return refused({ status: 403, code: 'policy_denied', message: `sluice: ${ex.host}:${ex.port} denied by ${decision.reason}`, extra: { rule_id: decision.rule_id } });
    }
    if (this.d.ensureFresh && !refreshGrant && this.d.credentials.hasOAuth()) {
      const names = this.d.credentials.oauthCredentialsIn([...Object.values(headers).flat(), path, body]);
      if (names.length > 0) {
        return Promise.all(names.map((n) => this.d.ensureFresh!(n).catch(() => {}))).then(() => this.withCredentials(ex, decision, headers, path, body, refreshGrant));
      }
    }
    return this.withCredentials(ex, decision, headers, path, body, refreshGrant);
  }

  /** The rest of {@link admit} once any expired OAuth token was refreshed. */
  private withCredentials(ex: RequestExchange, decision: PolicyDecision, headers: http.IncomingHttpHeaders, path: string, body: Buffer | null, refreshGrant: boolean): AdmitResult | Promise<AdmitResult> {
    const cred = this.d.credentials.apply(ex.host, headers, path, body, refreshGrant);
    if (cred.report.leaked.length > 0) return this.blockLeak(ex, cred.report.leaked.map((l) => l.label));
    if (!ex.tls && cred.report.used.size > 0) {
      // A real secret never travels in cleartext, even to its own host.
      return refused({ status: 403, code: 'cleartext_refused', message: `sluice: credentials are only injected into HTTPS requests; use https://${ex.host}` });
    }
    if (decision.verdict !== 'ask') return this.takePermit(ex, cred);
    return this.d.broker.ask({ host: ex.host, port: ex.port, method: ex.method, path: ex.path, coalesce: decision.coalesce }, ex.signal).then((outcome) => {
      if (!outcome.allowed) {
        if (outcome.reason === 'aborted') return GONE;
        ex.verdict = outcome.reason === 'denied' ? 'denied_by_user' : `ask_${outcome.reason}`;
        return refused({ status: 403, code: `approval_${outcome.reason}`, message: `sluice: ${ex.host}:${ex.port}: ${APPROVAL_MESSAGES[outcome.reason]}`, extra: { approval_id: outcome.approval_id } });
      }
      ex.verdict = outcome.decision === 'always_allow' ? 'approved_always' : 'approved_once';
      return this.takePermit(ex, cred);
    });
  }

  /** Takes the request's permits: at once when a slot is free, else after waiting in the credential's queue. */
  private takePermit(ex: RequestExchange, cred: CredentialResult): AdmitResult | Promise<AdmitResult> {
    ex.credential = cred.credential;
    ex.pool = cred.pool;
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
      const message = reason === 'global_cap' ? 'Server is at capacity. Retry shortly.' : `Too many concurrent requests against this credential (cap: ${cap}). Retry shortly.`;
      return refused({ status: 429, code: reason, message, retryAfterS: 1, extra: { cap } });
    }
    return { kind: 'ok', cred, permit };
  }

  private blockLeak(ex: RequestExchange, labels: string[]): AdmitResult {
    const detail = `phantom of ${labels.join(', ')} sent to ${ex.host}, which it is not bound to`;
    this.d.log.warn('blocked a phantom sent to an unbound host', { host: ex.host, credentials: labels, path: ex.path });
    this.d.audit.append({ event: 'phantom_leak', client: ex.client, host: ex.host, port: ex.port, method: ex.method, path: ex.path, credential: labels.join(','), status: 403, detail });
    this.d.observer.notice('warn', 'phantom_leak', detail);
    return { kind: 'refused', refusal: { status: 403, code: 'phantom_leak', message: `sluice: blocked a credential phantom sent to ${ex.host}, a host it is not bound to` }, audited: true };
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
const connectTargets = new Lru<string, { host: string; port: number }>(4096);

function sameTarget(connectUrl: string | undefined, host: string, port: number): boolean {
  if (!connectUrl) return false;
  let t = connectTargets.get(connectUrl);
  if (!t) {
    const i = connectUrl.lastIndexOf(':');
    t = { host: (i === -1 ? connectUrl : connectUrl.slice(0, i)).replace(/^\[|\]$/g, '').toLowerCase(), port: i === -1 ? 443 : Number(connectUrl.slice(i + 1)) };
    connectTargets.set(connectUrl, t);
  }
  return t.port === port && (t.host === host || t.host === host.replace(/^\[|\]$/g, ''));
}
