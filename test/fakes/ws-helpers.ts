/**
 * Extra WebSocket test helpers (additive to ws-through-proxy.ts):
 *  - {@link startWsRecorder}: a second fake WebSocket upstream (test-CA certificate) that records what
 *    actually reached it — upgrade headers, every text message, pings, open sockets and their closes — and
 *    lets a test push server-initiated messages. The main fake upstream only echoes, which cannot tell
 *    "swapped on the way up, masked on the way down" apart from "never touched".
 *  - {@link openWsAt}: opens `wss://host:port/path` through the proxy on any target port, with a handshake
 *    timeout, and returns a refused upgrade's status, headers and body.
 *  - small bounded waits on a client socket (next message, close, pong).
 * Everything listens on / talks to 127.0.0.1 only and every wait is bounded by a timeout.
 */
import fs from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { WebSocket, WebSocketServer } from 'ws';
import { REPO_ROOT } from './repo-root.js';
import { connectTunnel } from './ws-through-proxy.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');

/** A recording fake WebSocket upstream. */
export interface WsRecorder {
  port: number;
  /** Every upgrade request that reached it. */
  upgrades: { path: string; headers: http.IncomingHttpHeaders }[];
  /** Every text message received (in order, all sockets), with its arrival time. */
  messages: { text: string; at: number }[];
  /** Payloads of pings received. */
  pings: string[];
  /** Close codes/reasons of sockets that closed (1006 = the peer vanished without a close frame). */
  closes: { code: number; reason: string }[];
  /** Server-side sockets currently open, oldest first. */
  sockets(): WebSocket[];
  close(): Promise<void>;
}

/**
 * Starts the recorder on 127.0.0.1. Text messages are echoed as `echo:<text>`; `say:<text>` makes it send
 * `<text>` verbatim instead (a server→client message the test chooses).
 */
export async function startWsRecorder(): Promise<WsRecorder> {
  const server = https.createServer(
    { key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')) },
    (_req, res) => {
      res.writeHead(404);
      res.end();
    },
  );
  const raw = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    raw.add(s);
    s.once('close', () => raw.delete(s));
  });
  const rec: Omit<WsRecorder, 'port' | 'close' | 'sockets'> = { upgrades: [], messages: [], pings: [], closes: [] };
  const open: WebSocket[] = [];
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    rec.upgrades.push({ path: req.url ?? '', headers: req.headers });
    open.push(ws);
    ws.on('message', (data, isBinary) => {
      if (isBinary) return void ws.send(data, { binary: true });
      const text = data.toString();
      rec.messages.push({ text, at: Date.now() });
      ws.send(text.startsWith('say:') ? text.slice(4) : `echo:${text}`);
    });
    ws.on('ping', (d: Buffer) => rec.pings.push(d.toString()));
    ws.on('error', () => {});
    ws.once('close', (code: number, reason: Buffer) => {
      rec.closes.push({ code, reason: reason.toString() });
      open.splice(open.indexOf(ws), 1);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    ...rec,
    port: (server.address() as net.AddressInfo).port,
    sockets: () => [...open],
    close: () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        for (const s of raw) s.destroy();
        wss.close();
        server.close(() => r());
      }),
  } as WsRecorder;
}

/** The outcome of {@link openWsAt}: an open socket, or the refused upgrade's answer. */
export type WsOpen = { ws: WebSocket } | { status: number; headers: http.IncomingHttpHeaders; body: string };

/**
 * Opens `wss://host:port/path` through the proxy (CONNECT with the token, TLS trusting the sluice CA, then
 * the upgrade). Rejects when CONNECT is refused, on a transport error, or after `timeoutMs`.
 */
export async function openWsAt(o: {
  proxyPort: number;
  token: string | null;
  caPath: string;
  host: string;
  port?: number;
  path: string;
  headers?: Record<string, string>;
  timeoutMs?: number;
}): Promise<WsOpen> {
  const port = o.port ?? 443;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const tunnel = await within(connectTunnel(o.proxyPort, o.host, port, o.token), timeoutMs, `CONNECT ${o.host}:${port}`);
  const ca = fs.readFileSync(o.caPath);
  const ws = new WebSocket(`wss://${o.host}${port === 443 ? '' : `:${port}`}${o.path}`, {
    headers: o.headers,
    handshakeTimeout: timeoutMs,
    perMessageDeflate: false,
    // No SNI for an IP literal (RFC 6066); the certificate is still checked against the IP.
    createConnection: () => tls.connect({ socket: tunnel as net.Socket, host: o.host, servername: net.isIP(o.host) ? undefined : o.host, ca }),
  } as ConstructorParameters<typeof WebSocket>[2]);
  return new Promise<WsOpen>((resolve, reject) => {
    ws.once('open', () => resolve({ ws }));
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    ws.once('error', reject);
  });
}

/** Rejects with `what` when `p` has not settled after `ms`. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_r, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
    }),
  ]);
}

/** The next text message on `ws` (attach before sending what provokes it). */
export function nextMessage(ws: WebSocket, ms = 5000): Promise<string> {
  return within(new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString()))), ms, 'a WebSocket message');
}

/** Resolves with the close code and reason once `ws` closes. */
export function closed(ws: WebSocket, ms = 5000): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: 'already closed' });
  return within(
    new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() }))),
    ms,
    'the WebSocket to close',
  );
}

/** Resolves with the payload of the next pong on `ws`. */
export function nextPong(ws: WebSocket, ms = 5000): Promise<string> {
  return within(new Promise<string>((resolve) => ws.once('pong', (d: Buffer) => resolve(d.toString()))), ms, 'a pong');
}
