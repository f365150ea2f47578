/**
 * The request pipeline of DESIGN §4, run as ONE http-mitm-proxy `onRequest` handler (the library runs
 * handlers of a stage in parallel, so ordering only holds inside one): access check → policy → credentials
 * (a phantom leak is blocked before anyone is asked) → approval → permits → forward. Anything refused is answered here and never goes upstream. Every
 * exchange ends in `finish`, called from the client response's `close` (the one event that fires on end,
 * abort and error), which releases permits exactly once and tears down a still-open upstream.
 */
import type { IContext } from 'http-mitm-proxy';
import type { ApprovalBroker, ApprovalOutcome } from '../approval/approval-broker.js';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { CapRegistry } from '../concurrency/cap-registry.js';
import type { ResolveOverride } from '../config.js';
import type { Logger } from '../log.js';
import type { PolicyEngine } from '../policy/policy-engine.js';
import type { RequestObserver } from './request-observer.js';
import type { OriginalRequest, PoolFailover } from './pool-failover.js';
import { CredentialStage } from './credential-stage.js';
import type { ProxyAuth } from './proxy-auth.js';
import { writeRefusal, type Refusal } from './refusals.js';
import { FixedBodyFilter, hasBody, readBody } from './request-body.js';
import { RequestExchange } from './request-exchange.js';
import { connectTarget, type UpstreamAgents } from './upstream-agents.js';

/** Everything the pipeline needs, injected by wire.ts. */
export interface PipelineDeps {
  clock: Clock;
  log: Logger;
  auth: ProxyAuth;
  policy: PolicyEngine;
  broker: ApprovalBroker;
  credentials: CredentialStage;
  caps: CapRegistry;
  audit: AuditLog;
  observer: RequestObserver;
  agents: UpstreamAgents;
  overrides: readonly ResolveOverride[];
  /** The proxy's own listening ports (requests aimed at them are loops). */
  selfPorts: () => number[];
  /** Failover for pooled requests (null: pools disabled). */
  poolFailover: PoolFailover | null;
}

const APPROVAL_MESSAGES: Record<Exclude<ApprovalOutcome, { allowed: true }>['reason'], string> = {
  denied: 'the request was denied by the user',
  timeout: 'no one approved the request in time (timed out; denied)',
  too_many_waiting: 'too many requests waiting for approval of this destination',
  queue_full: 'approval queue full: too many destinations waiting for approval',
  shutdown: 'sluice is shutting down',
  aborted: 'the client went away',
};

/** Runs requests through the pipeline; see the module comment. */
export class RequestPipeline {
  private readonly exchanges = new WeakMap<IContext, RequestExchange>();

  constructor(private readonly d: PipelineDeps) {}

  /** The `onRequest` handler. Calls `cb` only when the request may go upstream. */
  handle(ctx: IContext, cb: (err?: Error | null) => void): void {
    const ex = new RequestExchange(ctx.uuid, this.d.clock.now());
    this.exchanges.set(ctx, ex);
    ctx.proxyToClientResponse.once('close', () => this.finish(ctx, ex));
    this.run(ctx, ex, cb).catch((err: unknown) => {
      this.d.log.error('pipeline failure', { id: ex.id, err });
      this.refuse(ctx, ex, { status: 500, code: 'internal', message: 'sluice could not process this request' });
    });
  }

  private async run(ctx: IContext, ex: RequestExchange, cb: (err?: Error | null) => void): Promise<void> {
    const req = ctx.clientToProxyRequest;
    const opts = ctx.proxyToServerRequestOptions!;
    ex.method = (req.method ?? 'GET').toUpperCase();
    ex.host = String(opts.host).toLowerCase();
    ex.port = Number(opts.port) || (ctx.isSSL ? 443 : 80);
    ex.path = (opts.path || '/').split('?')[0]!;
    ex.client = clientAddress(ctx);

    if (!ctx.connectRequest) {
      // HTTPS requests always arrive through an authenticated CONNECT; one without it reached the internal
      // TLS server directly and skipped the access check.
      if (ctx.isSSL) return this.refuse(ctx, ex, { status: 403, code: 'not_via_proxy', message: 'connect through the sluice proxy' });
      if (!this.d.auth.check(req.headers['proxy-authorization'])) {
        this.d.audit.append({ event: 'proxy_auth_failed', client: ex.client, host: ex.host, port: ex.port, method: ex.method, path: ex.path, status: 407 });
        return this.refuse(ctx, ex, { status: 407, code: 'proxy_auth_required', message: 'sluice proxy access token required (see `sluicectl env`)' }, false);
      }
    } else if (ctx.isSSL && !sameTarget(ctx.connectRequest.url, ex.host, ex.port)) {
      return this.refuse(ctx, ex, { status: 421, code: 'misdirected', message: 'the Host header does not match the CONNECT target' });
    }
    if (this.isLoop(ex)) return this.refuse(ctx, ex, { status: 400, code: 'proxy_loop', message: 'requests to the sluice proxy itself are refused' });

    // 1. policy
    const decision = this.d.policy.evaluate({ host: ex.host, port: ex.port, method: ex.method, path: ex.path });
    ex.verdict = decision.verdict;
    ex.ruleId = decision.rule_id;
    this.d.observer.started(ex);
    if (decision.verdict === 'deny') {
      return this.refuse(ctx, ex, { status: 403, code: 'policy_denied', message: `sluice: ${ex.host}:${ex.port} denied by ${decision.reason}`, extra: { rule_id: decision.rule_id } });
    }
    // 2. credentials, before approval: a request that would be blocked as a leak never bothers a human
    let body: Buffer | null = null;
    if (hasBody(req)) {
      const b = await readBody(req);
      if (b === 'aborted') return;
      if (b === 'too_large') return this.refuse(ctx, ex, { status: 413, code: 'body_too_large', message: 'request body too large for sluice to inspect (32 MiB)' });
      body = b;
    }
    const cred = this.d.credentials.apply(ex.host, req.headers, opts.path, body);
    if (cred.report.leaked.length > 0) return this.blockLeak(ctx, ex, cred.report.leaked.map((l) => l.label));
    // 3. approval
    if (decision.verdict === 'ask') {
      const outcome = await this.d.broker.ask({ host: ex.host, port: ex.port, method: ex.method, path: ex.path, coalesce: decision.coalesce }, ex.abort.signal);
      if (!outcome.allowed) {
        ex.verdict = outcome.reason === 'denied' ? 'denied_by_user' : `ask_${outcome.reason}`;
        return this.refuse(ctx, ex, { status: 403, code: `approval_${outcome.reason}`, message: `sluice: ${ex.host}:${ex.port}: ${APPROVAL_MESSAGES[outcome.reason]}`, extra: { approval_id: outcome.approval_id } });
      }
      ex.verdict = outcome.decision === 'always_allow' ? 'approved_always' : 'approved_once';
    }
    ex.credential = cred.credential;
    ex.pool = cred.pool;
    // 4. permits
    const permit = await this.d.caps.acquire(cred.credential, ex.abort.signal);
    if ('aborted' in permit) return;
    if ('refused' in permit) {
      const { reason, cap } = permit.refused;
      this.d.log.warn('concurrency cap refused a request', { reason, cap, credential: cred.credential, host: ex.host, path: ex.path });
      this.d.observer.rejected(ex, reason, cap);
      const message = reason === 'global_cap' ? 'Server is at capacity. Retry shortly.' : `Too many concurrent requests against this credential (cap: ${cap}). Retry shortly.`;
      return this.refuse(ctx, ex, { status: 429, code: reason, message, retryAfterS: 1, extra: { cap } });
    }
    if (ex.finished) return permit.release();
    ex.release = permit.release;
    // 5. forward
    this.prepareForward(ctx, ex, cred.headers, cred.path, cred.body, { headers: req.headers, path: opts.path, body });
    cb();
  }

  private prepareForward(ctx: IContext, ex: RequestExchange, headers: Record<string, string | string[]>, path: string, body: Buffer | null, original: OriginalRequest): void {
    const opts = ctx.proxyToServerRequestOptions!;
    const target = connectTarget(this.d.overrides, ex.host, ex.port);
    if (body) {
      headers['content-length'] = String(body.length);
      ctx.addRequestFilter(new FixedBodyFilter(body));
    } else {
      const te = ctx.clientToProxyRequest.headers['transfer-encoding'];
      if (te) headers['transfer-encoding'] = te;
    }
    Object.assign(opts, {
      headers,
      path,
      host: target.host,
      port: target.port,
      servername: target.servername,
      agent: ctx.isSSL ? this.d.agents.https : this.d.agents.http,
    });
    ctx.onResponse((c, next) => {
      ex.status = c.serverToProxyResponse!.statusCode ?? null;
      const proceed = () => {
        c.serverToProxyResponse!.on('data', (chunk: Buffer) => {
          ex.bytes += chunk.length;
        });
        next();
      };
      if (ex.pool && this.d.poolFailover) {
        this.d.poolFailover.onResponse(c, ex, original, proceed).catch((err: unknown) => this.onError(c, err instanceof Error ? err : new Error(String(err)), 'ON_RESPONSE_ERROR'));
      } else proceed();
    });
    ctx.onResponseEnd((_c, next) => {
      ex.upstreamEnded = true;
      next();
    });
  }

  private blockLeak(ctx: IContext, ex: RequestExchange, labels: string[]): void {
    const detail = `phantom of ${labels.join(', ')} sent to ${ex.host}, which it is not bound to`;
    this.d.log.warn('blocked a phantom sent to an unbound host', { host: ex.host, credentials: labels, path: ex.path });
    this.d.audit.append({ event: 'phantom_leak', client: ex.client, host: ex.host, port: ex.port, method: ex.method, path: ex.path, credential: labels.join(','), status: 403, detail });
    this.d.observer.notice('warn', 'phantom_leak', detail);
    this.refuse(ctx, ex, { status: 403, code: 'phantom_leak', message: `sluice: blocked a credential phantom sent to ${ex.host}, a host it is not bound to` });
  }

  /** Answers the client ourselves. `audit=false` when the caller already wrote a specific row. */
  private refuse(ctx: IContext, ex: RequestExchange, r: Refusal, audit = true): void {
    ex.refusal = r.code;
    ex.skipAudit = !audit;
    ex.status = r.status;
    writeRefusal(ctx.clientToProxyRequest, ctx.proxyToClientResponse, r, ex.host || 'unknown');
  }

  /**
   * Replaces http-mitm-proxy's error handling, which would write error text into a half-sent body and end
   * it cleanly (a client would read a truncated stream as success). Before headers: a 502/504 JSON answer.
   * After: the client connection is destroyed so the client sees a reset.
   */
  onError(ctx: IContext | null, err: Error | null | undefined, kind: string): void {
    if (!ctx) {
      this.d.log.debug('proxy connection error', { kind, err: err ?? undefined });
      return;
    }
    const ex = this.exchanges.get(ctx);
    const res = ctx.proxyToClientResponse;
    if (!ex || ex.finished || res.destroyed || (res.writableEnded && ex.upstreamEnded)) return;
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? '';
    if (kind.startsWith('CLIENT_TO_PROXY') || kind.startsWith('PROXY_TO_CLIENT')) {
      res.destroy();
      return;
    }
    ex.errorKind = `${kind}${code ? ':' + code : ''}`;
    this.d.log.warn('upstream error', { id: ex.id, host: ex.host, kind, code });
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const timeout = code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT';
    const tlsFail = /CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|HOSTNAME/.test(code);
    const message = tlsFail
      ? `sluice: upstream ${ex.host} presented a certificate that does not verify (${code})`
      : `sluice: upstream ${ex.host}:${ex.port} failed (${code || kind})`;
    writeRefusal(ctx.clientToProxyRequest, res, { status: timeout ? 504 : 502, code: tlsFail ? 'upstream_tls' : 'upstream_error', message }, ex.host);
  }

  private finish(ctx: IContext, ex: RequestExchange): void {
    if (ex.finished) return;
    ex.finished = true;
    ex.abort.abort();
    ex.releasePermits();
    if (!ex.upstreamEnded) ctx.proxyToServerRequest?.destroy();
    if (!ex.skipAudit) this.d.audit.append({ event: 'request', client: ex.client, host: ex.host, port: ex.port, method: ex.method, path: ex.path, verdict: ex.refusal ?? ex.verdict, rule_id: ex.ruleId, credential: ex.credential, status: ex.status, bytes: ex.bytes, duration_ms: this.d.clock.now() - ex.startedAt, detail: ex.errorKind ?? ex.outcome() });
    this.d.observer.finished(ex);
  }

  private isLoop(ex: RequestExchange): boolean {
    const local = ex.host === 'localhost' || ex.host.startsWith('127.') || ex.host === '[::1]' || ex.host === '::1' || ex.host === '0.0.0.0';
    return local && this.d.selfPorts().includes(ex.port);
  }
}

function clientAddress(ctx: IContext): string | null {
  const s = ctx.connectRequest?.socket ?? ctx.clientToProxyRequest.socket;
  return s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : null;
}

function sameTarget(connectUrl: string | undefined, host: string, port: number): boolean {
  if (!connectUrl) return false;
  const i = connectUrl.lastIndexOf(':');
  const h = (i === -1 ? connectUrl : connectUrl.slice(0, i)).replace(/^\[|\]$/g, '').toLowerCase();
  const p = i === -1 ? 443 : Number(connectUrl.slice(i + 1));
  return h === host.replace(/^\[|\]$/g, '') && p === port;
}
