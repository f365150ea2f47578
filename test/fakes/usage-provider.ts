/**
 * A fake model provider that reports usage exactly as the test asks, in every shape sluice parses
 * (issue 24), and rate-limit headers that count down per key. HTTPS with the test CA's certificate (it
 * covers api.anthropic.com and api.openai.com); 127.0.0.1 only.
 *
 * Every POST body is JSON `{model, stream?, gzip?, plan: {input, output, cache_read?, cache_creation?, cached?},
 * stream_options?}`; the answer carries exactly that usage:
 *   POST /v1/messages          Anthropic: JSON `usage`, or SSE message_start (input + cache counts, output 1)
 *                              … message_delta (cumulative output, sent twice: 1/2 then all)
 *   POST /v1/chat/completions  OpenAI Chat: JSON `usage`, or SSE chunks with the usage chunk last when
 *                              `stream_options.include_usage` is set, then `data: [DONE]`
 *   POST /v1/responses         OpenAI Responses: JSON, or SSE ending in `response.completed`
 *   WS   /v1/responses         each `{"type":"response.create", model, plan}` text message is answered
 *                              with response.created, a delta and response.completed, one message each
 *   POST /status/CODE          that status with a JSON error body (rate-limit headers too)
 * Streamed bodies are written in small pieces (`chunk` bytes, default 11) so events split across reads;
 * `gzip: true` sends the body gzip-encoded. Rate-limit headers: Anthropic `anthropic-ratelimit-requests-*`
 * and `-tokens-*` plus `anthropic-ratelimit-unified-*` on api.anthropic.com; `x-ratelimit-*` elsewhere
 * (the WebSocket upgrade answer too). `remaining` counts down by one request per answer per key.
 */
import fs from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import zlib from 'node:zlib';
import { WebSocketServer } from 'ws';
import { REPO_ROOT } from './repo-root.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');

/** What a request asks the fake to report. */
export interface UsagePlan {
  input: number;
  output: number;
  cache_read?: number;
  cache_creation?: number;
  /** OpenAI cached prompt tokens. */
  cached?: number;
}

/** A running fake. */
export interface UsageProvider {
  port: number;
  /** Requests answered per key (x-api-key or bearer token), WebSocket upgrades included. */
  answered: Map<string, number>;
  close(): Promise<void>;
}

/** The request limit the fake's headers report. */
export const REQUEST_LIMIT = 50;
export const TOKEN_LIMIT = 100_000;

function keyOf(h: http.IncomingHttpHeaders): string {
  return String(h['x-api-key'] ?? '') || String(h.authorization ?? '').replace(/^Bearer /, '');
}

/** Rate-limit headers for the `n`-th answer (1-based) to a key on `host`. */
function rateLimitHeaders(host: string, n: number): Record<string, string> {
  const remaining = String(Math.max(0, REQUEST_LIMIT - n));
  if (host.startsWith('api.anthropic.com')) {
    const reset = new Date(Date.now() + 60_000).toISOString();
    return {
      'anthropic-ratelimit-requests-limit': String(REQUEST_LIMIT),
      'anthropic-ratelimit-requests-remaining': remaining,
      'anthropic-ratelimit-requests-reset': reset,
      'anthropic-ratelimit-tokens-limit': String(TOKEN_LIMIT),
      'anthropic-ratelimit-tokens-remaining': String(TOKEN_LIMIT - 1000 * n),
      'anthropic-ratelimit-tokens-reset': reset,
      'anthropic-ratelimit-unified-status': 'allowed',
      'anthropic-ratelimit-unified-5h-utilization': '0.25',
      'anthropic-ratelimit-unified-5h-reset': String(Math.floor(Date.now() / 1000) + 3600),
    };
  }
  return {
    'x-ratelimit-limit-requests': String(REQUEST_LIMIT),
    'x-ratelimit-remaining-requests': remaining,
    'x-ratelimit-reset-requests': '1m0s',
    'x-ratelimit-limit-tokens': String(TOKEN_LIMIT),
    'x-ratelimit-remaining-tokens': String(TOKEN_LIMIT - 1000 * n),
    'x-ratelimit-reset-tokens': '6m0s',
  };
}

interface Ask {
  model: string;
  stream?: boolean;
  gzip?: boolean;
  chunk?: number;
  plan: UsagePlan;
  stream_options?: { include_usage?: boolean };
}

const sse = (events: [string, unknown][]): string => events.map(([e, d]) => `event: ${e}\ndata: ${JSON.stringify(d)}\n\n`).join('');

function anthropic(a: Ask): { json: unknown; sse: string } {
  const usage = {
    input_tokens: a.plan.input,
    cache_creation_input_tokens: a.plan.cache_creation ?? 0,
    cache_read_input_tokens: a.plan.cache_read ?? 0,
    output_tokens: a.plan.output,
  };
  return {
    json: { id: 'msg_1', type: 'message', role: 'assistant', model: a.model, content: [{ type: 'text', text: 'hello' }], usage },
    sse: sse([
      [
        'message_start',
        { type: 'message_start', message: { id: 'msg_1', type: 'message', model: a.model, content: [], usage: { ...usage, output_tokens: 1 } } },
      ],
      ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
      ['ping', { type: 'ping' }],
      ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'hello there' } }],
      ['content_block_stop', { type: 'content_block_stop', index: 0 }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: null }, usage: { output_tokens: Math.floor(a.plan.output / 2) } }],
      ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: a.plan.output } }],
      ['message_stop', { type: 'message_stop' }],
    ]),
  };
}

function chat(a: Ask): { json: unknown; sse: string } {
  const usage = {
    prompt_tokens: a.plan.input,
    completion_tokens: a.plan.output,
    total_tokens: a.plan.input + a.plan.output,
    prompt_tokens_details: { cached_tokens: a.plan.cached ?? 0 },
  };
  const include = a.stream_options?.include_usage === true;
  const chunk = (delta: unknown, finish: string | null) => ({
    id: 'c1',
    object: 'chat.completion.chunk',
    model: a.model,
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(include ? { usage: null } : {}),
  });
  const chunks: unknown[] = [chunk({ role: 'assistant', content: '' }, null), chunk({ content: 'hello' }, null), chunk({}, 'stop')];
  if (include) chunks.push({ id: 'c1', object: 'chat.completion.chunk', model: a.model, choices: [], usage });
  return {
    json: { id: 'c1', object: 'chat.completion', model: a.model, choices: [{ index: 0, message: { role: 'assistant', content: 'hello' } }], usage },
    sse: chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join('') + 'data: [DONE]\n\n',
  };
}

/** The Responses API events for one response, as [type, data] pairs. */
export function responsesEvents(model: string, plan: UsagePlan): [string, unknown][] {
  const usage = {
    input_tokens: plan.input,
    input_tokens_details: { cached_tokens: plan.cached ?? 0 },
    output_tokens: plan.output,
    total_tokens: plan.input + plan.output,
  };
  return [
    ['response.created', { type: 'response.created', response: { id: 'resp_1', model, status: 'in_progress', usage: null } }],
    ['response.output_text.delta', { type: 'response.output_text.delta', delta: 'hello' }],
    ['response.completed', { type: 'response.completed', response: { id: 'resp_1', model, status: 'completed', usage } }],
  ];
}

function responses(a: Ask): { json: unknown; sse: string } {
  const events = responsesEvents(a.model, a.plan);
  return { json: { id: 'resp_1', object: 'response', model: a.model, ...(events[2]![1] as { response: object }).response }, sse: sse(events) };
}

async function writeSlowly(res: http.ServerResponse, body: string, gzip: boolean, chunk: number): Promise<void> {
  const out: NodeJS.WritableStream = gzip ? zlib.createGzip() : res;
  if (gzip) (out as zlib.Gzip).pipe(res);
  const buf = Buffer.from(body);
  for (let i = 0; i < buf.length; i += chunk) {
    out.write(buf.subarray(i, i + chunk));
    if (gzip) await new Promise<void>((r) => (out as zlib.Gzip).flush(() => r()));
    await new Promise((r) => setImmediate(r));
  }
  out.end();
}

/** Starts the fake on 127.0.0.1 with a free port. */
export async function startUsageProvider(): Promise<UsageProvider> {
  const answered = new Map<string, number>();
  const count = (h: http.IncomingHttpHeaders): number => {
    const k = keyOf(h);
    const n = (answered.get(k) ?? 0) + 1;
    answered.set(k, n);
    return n;
  };
  const server = https.createServer({
    key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')),
    cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')),
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const host = String(req.headers.host ?? '');
      const limits = rateLimitHeaders(host, count(req.headers));
      const url = req.url ?? '/';
      const status = /^\/status\/(\d{3})/.exec(url);
      if (status) {
        res.writeHead(Number(status[1]), { 'content-type': 'application/json', ...limits });
        res.end(JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'slow down' } }));
        return;
      }
      let a: Ask;
      try {
        a = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Ask;
      } catch {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"error":"bad json"}');
        return;
      }
      const shape = url.startsWith('/v1/messages')
        ? anthropic(a)
        : url.startsWith('/v1/chat/completions')
          ? chat(a)
          : url.startsWith('/v1/responses')
            ? responses(a)
            : null;
      if (!shape) {
        res.writeHead(404, { 'content-type': 'application/json', ...limits });
        res.end('{"error":"not found"}');
        return;
      }
      const headers: Record<string, string> = { ...limits, 'content-type': a.stream ? 'text/event-stream' : 'application/json' };
      if (a.gzip) headers['content-encoding'] = 'gzip';
      res.writeHead(200, headers);
      void writeSlowly(res, a.stream ? shape.sse : JSON.stringify(shape.json), a.gzip === true, a.chunk ?? 11);
    });
  });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const limits = rateLimitHeaders(String(req.headers.host ?? ''), count(req.headers));
    wss.once('headers', (headers: string[]) => {
      for (const [k, v] of Object.entries(limits)) headers.push(`${k}: ${v}`);
    });
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        if (isBinary) return;
        const m = JSON.parse(data.toString()) as { type: string; model: string; plan: UsagePlan };
        if (m.type !== 'response.create') return;
        for (const [, ev] of responsesEvents(m.model, m.plan)) ws.send(JSON.stringify(ev));
      });
      ws.on('error', () => {});
    });
  });
  const sockets = new Set<net.Socket>();
  server.on('connection', (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    answered,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
