/**
 * A scriptable fake HTTPS upstream standing in for api.anthropic.com / api.openai.com (certificate from
 * the test CA in test/fixtures/tls). It records every request it sees (method, path, headers, body) so
 * tests can assert what reached the "provider". Behaviour is chosen by path:
 *   /v1/messages, anything else  200 JSON echo (`{ok, path, method}`)
 *   /sse?n=N&gap=MS             SSE stream of N events MS apart (`&ts=1`: each event's data also carries
 *                               `t`, the wall-clock send time in ms with sub-ms precision, for latency benches)
 *   /status/CODE                that status with a JSON body (`retry-after` via ?retry_after=S)
 *   /hang                       accepts and never answers
 *   /reset                      destroys the socket before any header
 *   /reset-mid                  sends headers and one chunk, then destroys the socket
 *   /redirect                   302 to https://evil.example/steal
 *   /slow?ms=MS                 answers 200 after MS
 * WebSocket upgrades on any path: recorded in `seen` (method `WS`), each text message is echoed back as
 * `echo:<text>`; the message `close-me` closes with code 4001; `keyStatus` refuses the upgrade too.
 */
import fs from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';
import { listenOnLoopback, type LoopbackServer } from './loopback-server.js';
import { REPO_ROOT } from './repo-root.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');

/** Path of the test CA that signs the fake upstream's certificate. */
export const UPSTREAM_CA = path.join(TLS_DIR, 'upstream-ca.pem');

/** One request as the upstream saw it. */
export interface SeenRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** A running fake upstream. */
export interface FakeUpstream {
  port: number;
  seen: SeenRequest[];
  /** Requests currently open at the upstream. */
  open(): number;
  /**
   * Per-key answers: a request whose `x-api-key` or bearer token is a key here gets that status (with a
   * JSON error body and the optional headers) whatever its path; simulates one account rate-limited.
   */
  /** Per real key: answer with this instead (`bodyBytes`, e.g. a gzip body, wins over `body`). */
  keyStatus: Map<string, { status: number; headers?: Record<string, string>; body?: string; bodyBytes?: Buffer }>;
  close(): Promise<void>;
}

/**
 * A bare HTTPS server with the upstream certificate (api.anthropic.com, … and 127.0.0.1) answering with
 * `handler`, for tests that need an upstream behaving in one specific way.
 */
export async function startHttpsUpstream(handler: http.RequestListener): Promise<LoopbackServer> {
  const server = https.createServer(
    { key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')) },
    handler,
  );
  return listenOnLoopback(server);
}

/**
 * Starts a fake upstream on 127.0.0.1 (`untrusted` = self-signed cert no CA vouches for; `record: false`
 * keeps `seen` empty, for benchmarks that send hundreds of thousands of requests).
 */
export async function startFakeUpstream(opts: { untrusted?: boolean; record?: boolean } = {}): Promise<FakeUpstream> {
  const record = opts.record ?? true;
  const key = fs.readFileSync(path.join(TLS_DIR, opts.untrusted ? 'untrusted-key.pem' : 'upstream-key.pem'));
  const cert = fs.readFileSync(path.join(TLS_DIR, opts.untrusted ? 'untrusted-cert.pem' : 'upstream-cert.pem'));
  const seen: SeenRequest[] = [];
  const keyStatus: FakeUpstream['keyStatus'] = new Map();
  let open = 0;
  const server = https.createServer({ key, cert }, (req, res) => {
    open++;
    res.once('close', () => open--);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'https://x');
      if (record) seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      const key = String(req.headers['x-api-key'] ?? '') || String(req.headers.authorization ?? '').replace(/^Bearer\s+/i, '');
      const forced = keyStatus.get(key);
      if (forced) {
        res.writeHead(forced.status, { 'content-type': 'application/json', ...forced.headers });
        return void res.end(
          forced.bodyBytes ?? forced.body ?? JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'fake account limit' } }),
        );
      }
      route(url, req, res);
    });
  });
  const wss = new WebSocketServer({
    server,
    verifyClient: (info, cb) => {
      const h = info.req.headers;
      const key = String(h['x-api-key'] ?? '') || String(h.authorization ?? '').replace(/^Bearer\s+/i, '');
      seen.push({ method: 'WS', path: info.req.url ?? '', headers: h, body: '' });
      const forced = keyStatus.get(key);
      if (forced) cb(false, forced.status, 'refused', forced.headers);
      else cb(true);
    },
  });
  wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
      const text = data.toString();
      if (!isBinary && text === 'close-me') return void ws.close(4001, 'bye');
      ws.send(isBinary ? data : `echo:${text}`, { binary: isBinary });
    });
  });
  const listening = await listenOnLoopback(server, () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return {
    port: listening.port,
    seen,
    keyStatus,
    open: () => open,
    close: listening.close,
  };
}

function route(url: URL, req: http.IncomingMessage, res: http.ServerResponse): void {
  const p = url.pathname;
  if (p === '/sse') {
    const n = Number(url.searchParams.get('n') ?? 5);
    const gap = Number(url.searchParams.get('gap') ?? 20);
    const stamp = url.searchParams.get('ts') === '1';
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    let i = 0;
    const tick = () => {
      if (res.destroyed) return;
      if (i >= n) return void res.end('event: done\ndata: [DONE]\n\n');
      const t = stamp ? `,"t":${(performance.timeOrigin + performance.now()).toFixed(3)}` : '';
      res.write(`event: message\ndata: {"i":${i++}${t}}\n\n`);
      setTimeout(tick, gap);
    };
    tick();
    return;
  }
  const status = /^\/status\/(\d{3})$/.exec(p);
  if (status) {
    const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json' };
    const ra = url.searchParams.get('retry_after');
    if (ra) headers['retry-after'] = ra;
    res.writeHead(Number(status[1]), headers);
    return void res.end(JSON.stringify({ error: { type: 'fake', status: Number(status[1]) } }));
  }
  if (p === '/hang') return;
  if (p === '/reset') return void req.socket.destroy();
  if (p === '/reset-mid') {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: first\n\n');
    setTimeout(() => req.socket.destroy(), 30);
    return;
  }
  if (p === '/redirect') {
    res.writeHead(302, { location: 'https://evil.example/steal' });
    return void res.end();
  }
  if (p === '/slow') {
    setTimeout(
      () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"ok":true}');
      },
      Number(url.searchParams.get('ms') ?? 100),
    );
    return;
  }
  const body = JSON.stringify({ ok: true, path: p, method: req.method });
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
