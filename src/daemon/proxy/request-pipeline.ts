/**
 * The HTTP request pipeline of DESIGN §4, run as ONE http-mitm-proxy `onRequest` handler (the library runs
 * handlers of a stage in parallel, so ordering only holds inside one): admission (access, policy,
 * credentials, approval, permits; see admission.ts) then forward. Anything refused is answered here and
 * never goes upstream. Every exchange ends in `finish`, called from the client response's `close` (the one event that fires on end,
 * abort and error), which releases permits exactly once and tears down a still-open upstream.
 */
import http from 'node:http';
import https from 'node:https';
import type { IContext } from 'http-mitm-proxy';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { ResolveOverride } from '../config.js';
import type { Logger } from '../log.js';
import type { Admission } from './admission.js';
import type { RequestObserver } from './request-observer.js';
import type { OriginalRequest, PoolFailover } from './pool-failover.js';
import { refreshOwnerOf } from './credential-stage.js';
import { grantTypeOf } from '../oauth/token-exchange.js';
import type { TokenResponseStage } from './token-response.js';
import { writeRefusal, type Refusal } from './refusals.js';
import { FixedBodyFilter, hasBody, readBody } from './request-body.js';
import { RequestExchange } from './request-exchange.js';
import { connectTarget, type UpstreamAgents } from './upstream-agents.js';

/** Everything the pipeline needs, injected by wire.ts. */
export interface PipelineDeps {
  clock: Clock;
  log: Logger;
  admission: Admission;
  audit: AuditLog;
  observer: RequestObserver;
  agents: UpstreamAgents;
  overrides: readonly ResolveOverride[];
  /** Failover for pooled requests (null: pools disabled). */
  poolFailover: PoolFailover | null;
  /** Token-endpoint response handling (null: OAuth disabled). */
  tokenResponses: TokenResponseStage | null;
  /** True when `host` + `path` is some OAuth credential's token URL. */
  isTokenUrl: (host: string, path: string) => boolean;
}

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
    ex.tls = ctx.isSSL;
    const denied = this.d.admission.checkAccess(ex, { isSSL: ctx.isSSL, connectRequest: ctx.connectRequest, headers: req.headers });
    if (denied) return this.refuse(ctx, ex, denied.refusal, !denied.audited);
    let body: Buffer | null = null;
    if (hasBody(req)) {
      const b = await readBody(req);
      if (b === 'aborted') return;
      if (b === 'too_large') return this.refuse(ctx, ex, { status: 413, code: 'body_too_large', message: 'request body too large for sluice to inspect (32 MiB)' });
      body = b;
    }
    // OAuth refreshes: refresh phantoms resolve only inside a refresh grant to a known token URL.
    ex.tokenEndpoint = ex.method === 'POST' && this.d.isTokenUrl(ex.host, ex.path);
    const refreshGrant = ex.tokenEndpoint && grantTypeOf(body, req.headers['content-type']) === 'refresh_token';
    const r = await this.d.admission.admit(ex, req.headers, opts.path, body, refreshGrant);
    if (r.kind === 'gone') return;
    if (r.kind === 'refused') return this.refuse(ctx, ex, r.refusal, !r.audited);
    if (ex.finished) return r.permit.release();
    ex.permit = r.permit;
    ex.refreshOwner = refreshOwnerOf(r.cred);
    this.prepareForward(ctx, ex, r.cred.headers, r.cred.path, r.cred.body, { headers: req.headers, path: opts.path, body, refreshGrant });
    cb();
  }

  private prepareForward(ctx: IContext, ex: RequestExchange, headers: Record<string, string | string[]>, path: string, body: Buffer | null, original: OriginalRequest): void {
    const opts = ctx.proxyToServerRequestOptions!;
    const target = connectTarget(this.d.overrides, ex.host, ex.port);
    ex.upstreamBody = body;
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
      if (ex.tokenEndpoint && this.d.tokenResponses) {
        this.d.tokenResponses.onResponse(c, ex, original, proceed).catch((err: unknown) => this.onError(c, err instanceof Error ? err : new Error(String(err)), 'ON_RESPONSE_ERROR'));
      } else if (ex.pool && this.d.poolFailover) {
        this.d.poolFailover.onResponse(c, ex, original, proceed).catch((err: unknown) => this.onError(c, err instanceof Error ? err : new Error(String(err)), 'ON_RESPONSE_ERROR'));
      } else proceed();
    });
    ctx.onResponseEnd((_c, next) => {
      ex.upstreamEnded = true;
      next();
    });
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
    if (kind === 'PROXY_TO_SERVER_REQUEST_ERROR' && this.retryStaleConnection(ctx, ex, code)) return;
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
    ex.status = timeout ? 504 : 502;
    writeRefusal(ctx.clientToProxyRequest, res, { status: ex.status, code: tlsFail ? 'upstream_tls' : 'upstream_error', message }, ex.host);
  }

  /**
   * A kept-alive upstream connection can be closed by the server just as a request is written to it. When
   * the request failed on a reused connection before any response, it is sent once more on a fresh one
   * (sluice holds the whole body), through the library's own response handler.
   */
  private retryStaleConnection(ctx: IContext, ex: RequestExchange, code: string): boolean {
    const old = ctx.proxyToServerRequest;
    if (!old || !old.reusedSocket || ex.staleRetried || ctx.serverToProxyResponse || ctx.proxyToClientResponse.headersSent) return false;
    if (code !== 'ECONNRESET' && code !== 'EPIPE' && code !== 'ECONNABORTED') return false;
    const onResponse = old.listeners('response')[0] as ((res: import('node:http').IncomingMessage) => void) | undefined;
    if (!onResponse) return false;
    ex.staleRetried = true;
    this.d.log.debug('retrying on a fresh upstream connection', { id: ex.id, host: ex.host, code });
    const opts = ctx.proxyToServerRequestOptions!;
    const req = (ctx.isSSL ? https : http).request(opts as https.RequestOptions, onResponse);
    req.on('error', (err) => this.onError(ctx, err, 'PROXY_TO_SERVER_REQUEST_ERROR'));
    ctx.proxyToServerRequest = req;
    req.end(ex.upstreamBody ?? undefined);
    return true;
  }

  private finish(ctx: IContext, ex: RequestExchange): void {
    if (ex.finished) return;
    ex.finished = true;
    ex.clientLeft();
    ex.releasePermits();
    if (!ex.upstreamEnded) ctx.proxyToServerRequest?.destroy();
    if (!ex.skipAudit) this.d.audit.append({ event: 'request', client: ex.client, host: ex.host, port: ex.port, method: ex.method, path: ex.path, verdict: ex.refusal ?? ex.verdict, rule_id: ex.ruleId, credential: ex.credential, status: ex.status, bytes: ex.bytes, duration_ms: this.d.clock.now() - ex.startedAt, detail: ex.errorKind ?? ex.outcome() });
    this.d.observer.finished(ex);
  }
}

function clientAddress(ctx: IContext): string | null {
  const s = ctx.connectRequest?.socket ?? ctx.clientToProxyRequest.socket;
  return s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : null;
}
