/**
 * The upstream side of a WebSocket upgrade: the socket sluice opens to the real host with the real secret
 * (TLS verified, SLUICE_RESOLVE honoured, connect and upgrade-answer timeouts), and the pool failover on an
 * upgrade the member refused. Split out of websocket-relay.ts, which admits the upgrade and relays frames.
 */
import type { WebSocketMeter } from '../usage/websocket-meter.js';
import type http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import type { Clock } from '../clock.js';
import type { ResolveOverride } from '../config.js';
import { classify } from '../pool/failover-classifier.js';
import type { PoolFailover } from './pool-failover.js';
import type { CredentialResult } from './credential-stage.js';
import type { Refusal } from './refusals.js';
import type { RequestExchange } from './request-exchange.js';
import { connectTarget, type UpstreamAgents } from './upstream-agents.js';
import type { UpstreamTimeouts } from './upstream-leg.js';
import { isHopByHop } from './hop-by-hop.js';
import { mapUpstreamError, UpstreamTimeoutError } from './upstream-errors.js';

/** What opening the upstream socket needs (a subset of the relay's deps). */
export interface WebSocketUpstreamDeps {
  poolFailover: PoolFailover;
  clock: Clock;
  agents: UpstreamAgents;
  overrides: readonly ResolveOverride[];
  upstreamTimeouts: UpstreamTimeouts;
}

/** Opens the upstream socket; on a pooled 401/429 fails over and retries once on the next member. */
export function connectUpstream(
  d: WebSocketUpstreamDeps,
  ex: RequestExchange,
  req: http.IncomingMessage,
  cred: CredentialResult,
  isSSL: boolean,
  originalPath: string,
  opened: (ws: WebSocket) => void,
  meter: WebSocketMeter | null = null,
): Promise<{ ok: true; ws: WebSocket } | { ok: false; refusal: Refusal }> {
  const t = connectTarget(d.overrides, ex.host, ex.port);
  const headers: Record<string, string> = { host: String(req.headers.host ?? ex.host) };
  for (const [k, v] of Object.entries(cred.headers))
    // ws writes its own Host, Connection, Upgrade and Sec-WebSocket-* headers for the upstream leg.
    if (k !== 'host' && !isHopByHop(k) && !k.startsWith('sec-websocket-')) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  const protocols = String(req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const url = `${isSSL ? 'wss' : 'ws'}://${t.host.includes(':') ? `[${t.host}]` : t.host}:${t.port}${cred.path}`;
  return new Promise((resolve) => {
    const limits = d.upstreamTimeouts;
    let timer: ReturnType<typeof setTimeout> | null = null;
    const fail = (err: unknown): void => {
      const f = mapUpstreamError(err, ex.host, ex.port, 'upgrade');
      ex.fail(f.errorKind);
      resolve({ ok: false, refusal: f });
    };
    const expire = (phase: 'connect' | 'headers', ms: number) => (): void => {
      // Settled first: the error terminate() causes must not answer the client again.
      fail(new UpstreamTimeoutError(phase, ms));
      ws.removeAllListeners('error');
      ws.on('error', () => {});
      ws.terminate();
    };
    const stopTimer = (): void => {
      if (timer) clearTimeout(timer);
      timer = null;
    };
    // ws's own connection factory, plus the timers: connect (TCP + TLS) first, then the upgrade answer.
    const createConnection = (opts: tls.ConnectionOptions & net.NetConnectOpts): Duplex => {
      const socket = isSSL ? tls.connect({ ...opts, path: undefined }) : net.connect({ ...opts, path: undefined } as net.NetConnectOpts);
      timer = setTimeout(expire('connect', limits.connectMs), limits.connectMs);
      socket.once(isSSL ? 'secureConnect' : 'connect', () => {
        stopTimer();
        timer = setTimeout(expire('headers', limits.headerMs), limits.headerMs);
      });
      return socket;
    };
    // ws passes TLS options through to the connection; `servername` keeps SNI and the certificate check on
    // the real host name when SLUICE_RESOLVE points the connection elsewhere (none for an IP literal).
    const options = {
      headers,
      servername: t.servername ?? '',
      secureContext: d.agents.secureContext,
      rejectUnauthorized: true,
      autoPong: false,
      perMessageDeflate: false,
      followRedirects: false,
      createConnection,
    };
    const ws = new WebSocket(url, protocols, options as ConstructorParameters<typeof WebSocket>[2]);
    opened(ws);
    ws.once('upgrade', stopTimer);
    if (meter) ws.once('upgrade', (res: http.IncomingMessage) => meter.answered(res, false));
    ws.once('unexpected-response', stopTimer);
    ws.once('error', stopTimer);
    ws.once('open', () => resolve({ ok: true, ws }));
    ws.once('unexpected-response', (_r, res) => {
      ex.status = res.statusCode ?? 502;
      meter?.answered(res, true);
      const failure = classify(ex.status, res.headers, null, false, d.clock.now());
      res.resume();
      // terminate() on a connecting socket emits 'error' on the next tick; that must not answer the client
      // (a failover retry may be under way).
      ws.removeAllListeners('error');
      ws.on('error', () => {});
      ws.terminate();
      const refusal: Refusal = {
        status: ex.status,
        code: 'upstream_refused_upgrade',
        message: `sluice: upstream ${ex.host} refused the WebSocket upgrade (${ex.status})`,
      };
      if (!failure || !ex.credential) return resolve({ ok: false, refusal });
      // The same failover step as HTTP: cool the member, and at most once retry on the pool's next one.
      const original = { headers: req.headers, path: originalPath, body: null, refreshGrant: false };
      d.poolFailover.failover(ex, ex.credential, failure, original).then(
        (next) => {
          if (!next) return resolve({ ok: false, refusal });
          void connectUpstream(d, ex, req, next, isSSL, originalPath, opened, meter).then(resolve);
        },
        () => resolve({ ok: false, refusal }),
      );
    });
    ws.once('error', (err: Error) => {
      if (ws.readyState === WebSocket.OPEN) return;
      fail(err);
    });
  });
}
