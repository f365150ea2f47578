/**
 * WebSockets through the same pipeline as HTTP. sluice takes over the servers' `upgrade` event (the
 * library would accept every upgrade before any check), runs admission on the upgrade request, connects
 * upstream first with the real secret (TLS verified, SLUICE_RESOLVE honoured) and only then accepts the
 * client, so a refusal or an upstream 401/429 reaches the client as a real HTTP status. One permit per open
 * socket, released exactly once when either side closes. Client→server text messages get the phantom
 * treatment (the slot's own token, never the OAuth bundle); server→client messages, text and binary, have
 * every real secret of ours replaced by its phantom, with one `secret_masked` audit row per socket. The
 * exchange follows the same lifecycle as an HTTP request (request-exchange.ts) and ends the same way
 * (exchange-audit.ts); its upstream side, failover included, is websocket-upstream.ts.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { AuditLog } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { ResolveOverride } from '../config.js';
import type { Logger } from '../log.js';
import type { PoolFailover } from './pool-failover.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import type { Admission } from './admission.js';
import type { CredentialStage } from './credential-stage.js';
import { newReport, rewritePhantoms } from './phantom-rewriter.js';
import { flavourOf, refusalBody, type Refusal } from './refusals.js';
import { nextExchangeId, RequestExchange } from './request-exchange.js';
import { ExchangeEnd, exchangeRow } from './exchange-audit.js';
import { requestTarget } from './target-syntax.js';
import { upgradeProblem } from './websocket-handshake.js';
import type { RequestObserver } from './request-observer.js';
import type { UpstreamAgents } from './upstream-agents.js';
import { connectUpstream } from './websocket-upstream.js';
import { watchUpgradeClient } from './upgrade-client-watch.js';
import type { UsageRecorder } from '../usage/usage-service.js';
import { WebSocketMeter } from '../usage/websocket-meter.js';
import type { UpstreamTimeouts } from './upstream-leg.js';

const EMPTY = Buffer.alloc(0);

/** What the relay needs. */
export interface WebSocketRelayDeps {
  admission: Admission;
  credentials: CredentialStage;
  /** The vault, for the one token a phantom's slot stands for (never a whole OAuth bundle). */
  vault: Pick<CredentialVault, 'secretFor'>;
  /** The one failover step (pool-failover.ts), for an upgrade a pooled member refused with 401/429. */
  poolFailover: PoolFailover;
  audit: AuditLog;
  observer: RequestObserver;
  clock: Clock;
  log: Logger;
  agents: UpstreamAgents;
  overrides: readonly ResolveOverride[];
  /** The CONNECT request a tunnelled socket came through (undefined for a direct connection). */
  connectRequestOf: (socket: Duplex) => http.IncomingMessage | undefined;
  /** Upstream connect and upgrade-answer limits (exceeded → 504 upstream_timeout). */
  upstreamTimeouts: UpstreamTimeouts;
  /** Usage accounting (null: off). */
  usage?: UsageRecorder | null;
}

/** Handles upgrade requests on the proxy's servers. */
export class WebSocketRelay {
  /** The subprotocol the upstream chose, per upgrade request: the client is offered exactly that one. */
  private readonly chosenProtocol = new WeakMap<http.IncomingMessage, string>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    autoPong: false,
    perMessageDeflate: false,
    handleProtocols: (_protocols, req) => this.chosenProtocol.get(req) ?? false,
  });

  private readonly end: ExchangeEnd;

  constructor(private readonly d: WebSocketRelayDeps) {
    this.end = new ExchangeEnd(d);
  }

  /** Replaces `server`'s upgrade handling with the relay. */
  attach(server: http.Server, isSSL: boolean): void {
    server.removeAllListeners('upgrade');
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      const ex = new RequestExchange(nextExchangeId(), this.d.clock.now(), 'websocket');
      this.onUpgrade(ex, req, socket, head, isSSL).catch((err: unknown) => {
        this.d.log.error('websocket upgrade failed', { err });
        // Ends the exchange too (permits back, one row), unless the socket is already being relayed.
        const r: Refusal = { status: 500, code: 'internal', message: 'sluice could not process this upgrade' };
        if (ex.phase === 'relaying') return;
        if (!ex.finished) return this.refuse(ex, socket, r);
        rejectUpgrade(socket, r, 'generic');
      });
    });
  }

  private async onUpgrade(ex: RequestExchange, req: http.IncomingMessage, socket: Duplex, head: Buffer, isSSL: boolean): Promise<void> {
    const target = requestTarget(req.url, req.headers.host, isSSL);
    ex.method = 'GET';
    ex.host = target.host;
    ex.port = target.port;
    ex.path = target.path.split('?')[0]!;
    ex.tls = isSSL;
    const connectRequest = this.d.connectRequestOf(socket);
    ex.client = connectRequest ? `${connectRequest.socket.remoteAddress}:${connectRequest.socket.remotePort}` : null;
    // The upstream socket being opened, so a client that leaves meanwhile tears it down at once.
    let pending: WebSocket | null = null;
    socket.once('close', () => {
      ex.clientLeft();
      pending?.terminate();
    });
    const denied = this.d.admission.checkAccess(ex, { isSSL, connectRequest, headers: req.headers });
    if (denied) return this.refuse(ex, socket, denied.refusal, denied.audited);
    // Before admission: a malformed upgrade costs no permit and opens nothing upstream.
    const problem = upgradeProblem(req);
    if (problem) return this.refuse(ex, socket, { status: 400, code: 'websocket_bad_upgrade', message: `sluice: ${problem}` });
    // While sluice decides (approval may wait for a human) and connects upstream, a client that leaves must be
    // noticed as for HTTP: the watch reads the socket so its close shows (the listener above aborts the wait),
    // keeping what it read for the upgrade. Released on every way out.
    const watch = watchUpgradeClient(socket);
    try {
      const r = await this.d.admission.admit(ex, req.headers, target.path);
      // The client left while admission waited (approval, a queue): the exchange still ends, once.
      if (r.kind === 'gone') return this.abandon(ex, 'client_left_during_upgrade');
      if (r.kind === 'refused') return this.refuse(ex, socket, r.refusal, r.audited);
      ex.permit = r.permit;
      ex.advance('forwarding');
      const meter = ex.credential && this.d.usage ? new WebSocketMeter(this.d.usage, ex) : null;
      const up = await connectUpstream(
        this.d,
        ex,
        req,
        r.cred,
        isSSL,
        target.path,
        (ws) => {
          pending = ex.clientGone ? (ws.terminate(), null) : ws;
        },
        meter,
      );
      pending = null;
      if (ex.clientGone) {
        if (up.ok) up.ws.terminate();
        return this.abandon(ex, 'client_left_during_upgrade');
      }
      if (!up.ok) return this.refuse(ex, socket, up.refusal);
      if (up.ws.protocol) this.chosenProtocol.set(req, up.ws.protocol);
      // ws accepts the client only if its socket is still usable; otherwise (a client that half-closed, or one
      // that left in between) it destroys the socket without calling back. Either way the exchange ends once.
      let accepted = false;
      socket.once('close', () => {
        if (accepted) return;
        up.ws.terminate();
        this.abandon(ex, 'client_left_during_upgrade');
      });
      // Before ws reads the socket: it gets the upgrade's head and then every byte the watch read meanwhile.
      const heads = watch.release(head);
      this.wss.handleUpgrade(req, socket, heads, (client) => {
        accepted = true;
        ex.advance('relaying');
        this.relay(ex, client, up.ws, meter);
      });
    } finally {
      watch.release(EMPTY);
    }
  }

  /** Answers the upgrade with `r` instead of relaying and ends the exchange (`audited`: a more specific row stands for it). */
  private refuse(ex: RequestExchange, socket: Duplex, r: Refusal, audited = false): void {
    if (!ex.refuse(r, audited)) return;
    this.end.close(ex);
    rejectUpgrade(socket, r, flavourOf(ex.host));
  }

  /** Ends an upgrade whose client went away before it was accepted: permits back, one audit row. */
  private abandon(ex: RequestExchange, why: string): void {
    this.end.close(ex, { detail: why });
  }

  private relay(ex: RequestExchange, client: WebSocket, upstream: WebSocket, meter: WebSocketMeter | null = null): void {
    ex.status = 101;
    // Credentials whose real secret came back in a frame (one secret_masked row per socket, at its end).
    const masked = new Set<string>();
    // One phantom_not_injected row per socket, however many messages carry the phantom.
    let notInjectedSeen = false;
    const finish = () => {
      ex.complete();
      if (this.end.close(ex, { event: 'websocket', masked: masked.size > 0 ? { where: ['ws'], credentials: masked } : null })) meter?.closed();
    };
    const lookup = this.d.credentials.lookupFor(ex.host);
    client.on('message', (data: RawData, isBinary: boolean) => {
      if (isBinary || upstream.readyState !== WebSocket.OPEN) return void (upstream.readyState === WebSocket.OPEN && upstream.send(data, { binary: true }));
      const report = newReport();
      // The slot's own token (an OAuth access phantom gets the access token), never a sealed OAuth bundle.
      // A message is a body: a phantom is swapped only for a credential that allows `body` injection, and an
      // unknown one is left as it is (worthless) rather than stripped.
      const text = rewritePhantoms(data.toString(), lookup, (t) => this.d.vault.secretFor(t.credential, t.slot ?? 'secret'), report, 'body');
      let out = text;
      if (report.leaked.length > 0) {
        // A phantom bound elsewhere never travels: strip it and record the attempt.
        for (const l of report.leaked) out = out.split(l.phantom).join('');
        this.d.audit.append(
          exchangeRow(ex, 'phantom_leak', {
            method: 'WS',
            credential: report.leaked.map((l) => l.label).join(','),
            detail: 'stripped from a WebSocket message',
          }),
        );
        this.d.observer.notice(
          'warn',
          'phantom_leak',
          `phantom of ${report.leaked.map((l) => l.label).join(', ')} stripped from a WebSocket message to ${ex.host}`,
        );
      }
      if (report.notInjected.length > 0 && !notInjectedSeen) {
        notInjectedSeen = true;
        this.d.audit.append(
          exchangeRow(ex, 'phantom_not_injected', {
            method: 'WS',
            credential: report.notInjected.map((n) => n.credential).join(','),
            detail: `left as the phantom in a WebSocket message (${report.notInjected.map((n) => `${n.label}@${n.site}`).join(', ')} not an injection site)`,
          }),
        );
      }
      ex.bytes += out.length;
      upstream.send(out, { binary: false });
    });
    upstream.on('message', (data: RawData, isBinary: boolean) => {
      if (client.readyState !== WebSocket.OPEN) return;
      // Text and binary frames alike: an echo must not hand a real secret (id tokens included) to the agent.
      const buf = toBuffer(data);
      if (meter && !isBinary) meter.message(buf);
      const found = new Set<string>();
      const out = this.d.credentials.masker().maskBuffer(buf, found);
      if (found.size > 0) {
        if (masked.size === 0)
          this.d.observer.notice(
            'warn',
            'secret_masked',
            `a real secret of ${[...found].join(', ')} came back from ${ex.host} (ws); the agent got the phantom`,
          );
        for (const c of found) masked.add(c);
      }
      ex.bytes += out.length;
      client.send(out, { binary: isBinary });
    });
    client.on('ping', (d: Buffer) => upstream.readyState === WebSocket.OPEN && upstream.ping(d));
    client.on('pong', (d: Buffer) => upstream.readyState === WebSocket.OPEN && upstream.pong(d));
    upstream.on('ping', (d: Buffer) => client.readyState === WebSocket.OPEN && client.ping(d));
    upstream.on('pong', (d: Buffer) => client.readyState === WebSocket.OPEN && client.pong(d));
    client.on('close', (code: number, reason: Buffer) => {
      closePeer(upstream, code, reason);
      finish();
    });
    upstream.on('close', (code: number, reason: Buffer) => {
      closePeer(client, code, reason);
      finish();
    });
    client.on('error', () => {
      upstream.terminate();
      finish();
    });
    upstream.on('error', () => {
      ex.fail('websocket_upstream_error');
      client.terminate();
      finish();
    });
  }
}

/** Codes that may be sent in a close frame; 1005/1006/1015 only describe what happened locally. */
function closePeer(peer: WebSocket, code: number, reason: Buffer): void {
  if (peer.readyState === WebSocket.CLOSED || peer.readyState === WebSocket.CLOSING) return;
  const sendable = code >= 1000 && code < 5000 && code !== 1005 && code !== 1006 && code !== 1015;
  if (sendable) peer.close(code, reason);
  else peer.terminate();
}

/** A message's bytes as one Buffer (ws hands out a Buffer, an ArrayBuffer or fragments). */
function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  403: 'Forbidden',
  407: 'Proxy Authentication Required',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
};

function rejectUpgrade(socket: Duplex, r: Refusal, flavour: ReturnType<typeof flavourOf>): void {
  if (socket.destroyed) return;
  const body = refusalBody(r, flavour);
  const reason = REASONS[r.status] ?? 'Error';
  const extra =
    (r.retryAfterS !== undefined ? `Retry-After: ${r.retryAfterS}\r\n` : '') + (r.status === 407 ? 'Proxy-Authenticate: Basic realm="sluice"\r\n' : '');
  socket.end(
    `HTTP/1.1 ${r.status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nX-Sluice-Reason: ${r.code}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
}
