/**
 * The HTTP request pipeline of DESIGN §4, for every request that reaches the proxy (plain or inside a
 * TLS tunnel): admission (access, policy, credentials, approval, permits; see admission.ts), then
 * forward (upstream-leg.ts), classify (pool-failover.ts, token-response.ts) and relay (relay-response.ts);
 * upstream failures are answered through upstream-errors.ts. Anything refused is answered here and never
 * goes upstream. Every exchange ends in `finish`, called from the client response's `close` (the one event
 * that fires on end, abort and error): the one end WebSocket upgrades share (exchange-audit.ts) releases
 * permits and audits exactly once, then a still-open upstream is torn down.
 */
import type http from 'node:http';
import type { Socket } from 'node:net';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { ResolveOverride } from '../config.js';
import type { Logger } from '../log.js';
import type { Admission } from './admission.js';
import type { RequestObserver } from './request-observer.js';
import type { OriginalRequest, PoolFailover } from './pool-failover.js';
import { refreshOwnerOf } from './credential-stage.js';
import { grantTypeOf } from '../oauth/token-exchange.js';
import type { RefreshFlights } from '../oauth/refresh-flights.js';
import type { TokenResponseStage } from './token-response.js';
import { writeRefusal, type Refusal } from './refusals.js';
import { decodeContent } from './body-decoding.js';
import { hasBody, MAX_INSPECTED_BODY_BYTES, readBody, type BufferBudget } from './request-body.js';
import { nextExchangeId, RequestExchange } from './request-exchange.js';
import { ExchangeEnd } from './exchange-audit.js';
import { requestTarget } from './target-syntax.js';
import { connectTarget, type UpstreamAgents } from './upstream-agents.js';
import { UpstreamLeg, type Reply, type UpstreamRequest, type UpstreamTimeouts } from './upstream-leg.js';
import { errorLabel, mapUpstreamError, UpstreamTimeoutError } from './upstream-errors.js';
import { relayResponse, undecodableBody } from './relay-response.js';
import { narrowRequestEncoding } from './content-coding.js';
import { discard, outgoingParts } from './pool-failover.js';
import type { SecretMasker } from './secret-masker.js';
import { ExchangeMeter } from '../usage/exchange-meter.js';
import type { UsageRecorder } from '../usage/usage-service.js';

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
  /** One refresh per credential at a time, shared with the daemon's refresher (null: OAuth disabled). */
  refreshFlights?: RefreshFlights | null;
  /** True when `host` + `path` is some OAuth credential's token URL. */
  isTokenUrl: (host: string, path: string) => boolean;
  /** Request bytes all exchanges together may hold (SLUICE_MAX_BUFFERED_BYTES). */
  budget: BufferBudget;
  /** The CONNECT request a tunnelled connection came through (undefined for plain proxy requests). */
  connectRequestOf: (socket: import('node:stream').Duplex) => http.IncomingMessage | undefined;
  /** Upstream connect and response-header limits (exceeded → 504 upstream_timeout). */
  upstreamTimeouts: UpstreamTimeouts;
  /** The real secrets to mask in every response (required: containment must not depend on remembering it). */
  masks: { current(): SecretMasker };
  /** Usage accounting (null: off): rate-limit headers and usage of every response a credential got. */
  usage?: UsageRecorder | null;
}

/** How a connection reached the proxy. */
interface Arrival {
  /** The CONNECT request of a tunnelled connection (undefined for plain proxy requests). */
  connectRequest: http.IncomingMessage | undefined;
  /** The client's address, `ip:port` of the connection to the proxy. */
  client: string | null;
}

/** One client request and the upstream leg serving it. */
interface Exchange {
  ex: RequestExchange;
  req: http.IncomingMessage;
  res: http.ServerResponse;
  leg: UpstreamLeg | null;
  /** Request bytes this exchange reserved from the buffer budget (given back by finish). */
  buffered: number;
  /** Where real secrets were masked in the response (`header:location`, `body`, …) and whose. */
  masked: { where: Set<string>; credentials: Set<string> } | null;
  /** Usage of an exchange that went upstream with a credential (null otherwise). */
  meter: ExchangeMeter | null;
}

/** Runs requests through the pipeline; see the module comment. */
export class RequestPipeline {
  private readonly arrivals = new WeakMap<Socket, Arrival>();
  private readonly end: ExchangeEnd;

  constructor(private readonly d: PipelineDeps) {
    this.end = new ExchangeEnd(d);
  }

  /** Handles one request that arrived on a proxy server (`secure`: inside TLS). */
  handle(secure: boolean, req: http.IncomingMessage, res: http.ServerResponse): void {
    const x: Exchange = { ex: new RequestExchange(nextExchangeId(), this.d.clock.now()), req, res, leg: null, buffered: 0, masked: null, meter: null };
    // finish() is idempotent, so a plain listener will do (once() wraps every request's listener).
    res.on('close', () => this.finish(x));
    // A broken client connection surfaces as 'close' on the response; this only keeps a write to a dead
    // response from throwing. (Node emits a request's 'error' only when someone listens.)
    res.on('error', ignore);
    this.run(x, secure).catch((err: unknown) => {
      this.d.log.error('pipeline failure', { id: x.ex.id, err });
      this.refuse(x, { status: 500, code: 'internal', message: 'sluice could not process this request' });
    });
  }

  private async run(x: Exchange, secure: boolean): Promise<void> {
    const { ex, req } = x;
    const target = requestTarget(req.url, req.headers.host, secure);
    const { connectRequest, client } = this.arrivalOf(req.socket);
    ex.method = (req.method ?? 'GET').toUpperCase();
    ex.host = target.host;
    ex.port = target.port;
    ex.path = target.path.split('?')[0]!;
    ex.client = client;
    ex.tls = secure;
    const denied = this.d.admission.checkAccess(ex, { isSSL: secure, connectRequest, headers: req.headers, invalidHost: target.invalidHost });
    if (denied) return this.refuse(x, denied.refusal, denied.audited);
    // Policy, approval and permits are decided on the request line and headers alone: a refused request's
    // body is drained unread (writeRefusal), never buffered.
    // Ask only for codings sluice can decode: every response body is read to mask real secrets in it.
    narrowRequestEncoding(req.headers);
    ex.tokenEndpoint = ex.method === 'POST' && this.d.isTokenUrl(ex.host, ex.path);
    const withBody = hasBody(req);
    const admitted = this.d.admission.admit(ex, req.headers, target.path, { tokenEndpoint: ex.tokenEndpoint, bodyFollows: withBody });
    // Admission answers synchronously unless something had to wait; awaiting a plain value would still cost a tick.
    const r = admitted instanceof Promise ? await admitted : admitted;
    if (r.kind === 'gone') return;
    if (r.kind === 'refused') return this.refuse(x, r.refusal, r.audited);
    if (ex.finished) return r.permit.release();
    ex.permit = r.permit;
    let original: OriginalRequest = { headers: req.headers, path: target.path, body: null, refreshGrant: false };
    if (withBody) {
      ex.advance('reading_body');
      const read = await this.readRequestBody(x);
      if (read === null) return;
      const { body, decoded } = read;
      // A decoded body is what a replay on another pool member sends (with its content-encoding dropped).
      original = decoded
        ? { headers: { ...req.headers, 'content-encoding': undefined }, path: target.path, body: decoded, refreshGrant: false }
        : { ...original, body };
      original.refreshGrant = ex.tokenEndpoint && grantTypeOf(decoded ?? body, req.headers['content-type']) === 'refresh_token';
      const checked = this.d.admission.admitBody(ex, r.cred, body, decoded, original.refreshGrant);
      const refusal = checked instanceof Promise ? await checked : checked;
      if (ex.finished) return;
      if (refusal) return this.refuse(x, refusal.refusal, refusal.audited);
    } else {
      req.resume();
    }
    ex.refreshOwner = refreshOwnerOf(r.cred);
    if (original.refreshGrant && ex.refreshOwner && this.d.refreshFlights) {
      // One refresh per credential at a time: wait for one under way; a spent token is answered from what it saved.
      const gate = await this.d.refreshFlights.gate(ex.refreshOwner, ex.pool, outgoingParts(r.cred));
      if (!gate.send) return this.answerLocally(x, gate.answer);
      if (ex.finished) return gate.end(false);
      ex.refreshSent = gate.sent;
      ex.endRefreshFlight = gate.end;
    }
    try {
      ex.advance('forwarding');
      await this.forward(x, r.cred.headers, r.cred.path, r.cred.body, original);
    } finally {
      // The flight held now: the first member's, or (after a pooled replay) the next member's.
      const end = ex.endRefreshFlight;
      ex.endRefreshFlight = null;
      end?.(ex.status !== null && ex.status >= 200 && ex.status < 300);
    }
  }

  /** Answers the client with a JSON body sluice made (a token response with phantoms only); nothing goes upstream. */
  private answerLocally(x: Exchange, body: Buffer): void {
    if (x.ex.finished) return;
    x.ex.status = 200;
    x.ex.complete();
    x.res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': body.length });
    x.res.end(body);
  }

  /**
   * Reads (and, for a content-encoding, decodes) the body of an admitted request within the buffer
   * budget. Null when the request was answered here (refused, or the client left).
   */
  private async readRequestBody(x: Exchange): Promise<{ body: Buffer; decoded: Buffer | null } | null> {
    const { req } = x;
    const reserve = (n: number): boolean => {
      // After finish (client gone) nothing would give the bytes back.
      if (x.ex.finished || !this.d.budget.tryReserve(n)) return false;
      x.buffered += n;
      return true;
    };
    const b = await readBody(req, MAX_INSPECTED_BODY_BYTES, reserve);
    if (b === 'aborted') return null;
    if (b === 'too_large')
      return this.bodyRefused(x, { status: 413, code: 'body_too_large', message: 'request body too large for sluice to inspect (32 MiB)' });
    if (b === 'over_budget') return this.bodyRefused(x, this.overBudget());
    const encoding = headerText(req.headers['content-encoding']);
    // The common request has no content-encoding: no decoding, no extra promise.
    const decoded = encoding === undefined ? null : await decodeContent(b, encoding, MAX_INSPECTED_BODY_BYTES);
    if (decoded === null) return { body: b, decoded: null };
    if ('failed' in decoded) {
      // Fail closed: a body sluice cannot read cannot be searched for phantoms.
      const message =
        decoded.failed === 'unsupported'
          ? `sluice cannot inspect a request body with content-encoding ${decoded.encoding}; send it uncompressed or as gzip, deflate or br`
          : `sluice could not decode the request body (content-encoding ${decoded.encoding}: ${decoded.failed === 'too_large' ? 'over 32 MiB decoded' : 'corrupt'})`;
      return this.bodyRefused(x, { status: decoded.failed === 'unsupported' ? 415 : 400, code: 'undecodable_body', message });
    }
    if (!reserve(decoded.length)) return this.bodyRefused(x, this.overBudget());
    return { body: b, decoded };
  }

  private bodyRefused(x: Exchange, r: Refusal): null {
    this.refuse(x, r);
    return null;
  }

  private overBudget(): Refusal {
    return {
      status: 503,
      code: 'buffer_budget',
      message: 'sluice is holding too many request bodies right now (SLUICE_MAX_BUFFERED_BYTES). Retry shortly.',
      retryAfterS: 1,
    };
  }

  /**
   * The CONNECT request and client address behind a connection, looked up once per tunnel (a kept-alive
   * tunnel carries many requests; each lookup costs socket-name calls).
   */
  private arrivalOf(socket: Socket): Arrival {
    let a = this.arrivals.get(socket);
    if (!a) {
      const connectRequest = this.d.connectRequestOf(socket);
      a = { connectRequest, client: clientAddress(connectRequest?.socket ?? socket) };
      // Only hits are remembered: a connection without a CONNECT yet (a plain proxy request) may still turn
      // into a tunnel, and its requests must then find that CONNECT.
      if (connectRequest) this.arrivals.set(socket, a);
    }
    return a;
  }

  /** Sends the admitted request upstream, lets failover/token stages look at the answer, relays it. */
  private async forward(x: Exchange, headers: Record<string, string | string[]>, path: string, body: Buffer | null, original: OriginalRequest): Promise<void> {
    const { ex } = x;
    const to = connectTarget(this.d.overrides, ex.host, ex.port);
    if (body) headers['content-length'] = String(body.length);
    const request: UpstreamRequest = {
      secure: ex.tls,
      method: ex.method,
      host: to.host,
      port: to.port,
      servername: to.servername,
      path,
      // The Host header is always the client's own (the leg flattens these for the wire).
      headers,
    };
    const leg = new UpstreamLeg(this.d.agents.pool, request, this.d.upstreamTimeouts);
    x.leg = leg;
    const meter = ex.credential && this.d.usage ? new ExchangeMeter(this.d.usage, ex.path) : null;
    x.meter = meter;
    let reply: Reply;
    try {
      const response = await leg.send(request, body);
      if (ex.finished) return leg.destroy();
      ex.status = response.statusCode ?? null;
      // Before failover looks at it: headroom is current when a pool decides where the next request goes.
      meter?.answeredBy(ex.credential, response);
      reply = { response, head: null, replacement: null };
      if (ex.tokenEndpoint && this.d.tokenResponses) reply = await this.d.tokenResponses.onResponse(ex, leg, original);
      else if (ex.pool && this.d.poolFailover) reply = await this.d.poolFailover.onResponse(ex, leg, original);
      if (reply.response !== response) meter?.answeredBy(ex.credential, reply.response);
    } catch (err) {
      return this.upstreamFailed(x, err, leg.response ? 'response' : 'request');
    }
    if (ex.finished) return leg.destroy();
    if (reply.answer) {
      discard(reply.response);
      leg.destroy();
      return this.answerLocally(x, reply.answer);
    }
    ex.status = reply.response.statusCode ?? null;
    if (reply.refusal) {
      discard(reply.response);
      leg.destroy();
      return this.refuse(x, reply.refusal);
    }
    const undecodable = undecodableBody(reply, ex.method);
    if (undecodable) {
      // Fail closed: a body sluice cannot decode cannot be checked for real secrets, so it never reaches the agent.
      discard(reply.response);
      leg.destroy();
      ex.fail('undecodable_response');
      return this.refuse(x, {
        status: 502,
        code: 'undecodable_response',
        message: `sluice: upstream ${ex.host} answered in a content-encoding sluice cannot decode (${undecodable}); ask for gzip, deflate, br or identity`,
      });
    }
    ex.advance('relaying');
    meter?.relaying(reply.response);
    relayResponse(
      reply,
      x.res,
      {
        bytes: (n) => {
          ex.bytes += n;
        },
        ended: () => ex.complete(),
        broken: (err) => this.upstreamFailed(x, err, 'response'),
        masked: (where, credentials) => this.onMasked(x, where, credentials),
        tap: meter?.tap,
      },
      this.d.masks.current(),
    );
  }

  /** Notes a masking for the exchange's one `secret_masked` row; the first one also raises a notice. */
  private onMasked(x: Exchange, where: string, credentials: ReadonlySet<string>): void {
    const first = x.masked === null;
    x.masked ??= { where: new Set(), credentials: new Set() };
    x.masked.where.add(where);
    for (const c of credentials) x.masked.credentials.add(c);
    if (first)
      this.d.observer.notice(
        'warn',
        'secret_masked',
        `a real secret of ${[...credentials].join(', ')} came back from ${x.ex.host} (${where}); the agent got the phantom`,
      );
  }

  /** Answers the client ourselves (`audited`: the caller already wrote a more specific row). Nothing after the end. */
  private refuse(x: Exchange, r: Refusal, audited = false): void {
    if (x.ex.refuse(r, audited)) writeRefusal(x.req, x.res, r, x.ex.host || 'unknown');
  }

  /**
   * The upstream failed (`phase`: before or after its response began). Before headers reached the
   * client: a 502/504 JSON answer naming the cause. After: the client connection is destroyed so the
   * client sees a reset, never a truncated body that looks complete.
   */
  private upstreamFailed(x: Exchange, err: unknown, phase: 'request' | 'response'): void {
    const { ex, res } = x;
    if (ex.finished) return;
    x.leg?.destroy();
    const failure = mapUpstreamError(err, ex.host, ex.port, phase);
    ex.fail(failure.errorKind);
    if (err instanceof UpstreamTimeoutError) this.d.log.warn('upstream timeout', { id: ex.id, host: ex.host, phase: err.phase, after_ms: err.afterMs });
    else this.d.log.warn('upstream error', { id: ex.id, host: ex.host, phase, code: errorLabel(err) || undefined });
    // Mid-body the client must see a reset, never a truncated body that looks complete.
    if (res.headersSent) return void res.destroy();
    ex.status = failure.status;
    writeRefusal(x.req, res, failure, ex.host);
  }

  /** The exchange's one end (see exchange-audit.ts), then what only the HTTP side holds: waiters, buffered bytes, the upstream. */
  private finish(x: Exchange): void {
    const { ex } = x;
    if (!this.end.close(ex, { masked: x.masked })) return;
    ex.clientLeft();
    if (x.buffered > 0) this.d.budget.release(x.buffered);
    x.buffered = 0;
    if (ex.outcome() !== 'completed') x.leg?.destroy();
    x.meter?.end(ex);
  }
}

function clientAddress(s: import('node:net').Socket | undefined): string | null {
  return s?.remoteAddress ? `${s.remoteAddress}:${s.remotePort}` : null;
}

function ignore(): void {}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v.join(',') : v;
}
