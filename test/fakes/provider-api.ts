/**
 * A fake model provider for running REAL clients (Claude Code, Codex CLI, the official SDKs, curl, git,
 * Python) through sluice. It serves HTTPS with the test CA's certificate (which covers api.anthropic.com,
 * api.openai.com, auth.openai.com, chatgpt.com, localhost) and speaks enough of the real APIs:
 *
 *   POST /v1/messages                 Anthropic Messages: JSON, or with `stream: true` the real SSE sequence
 *                                     (message_start, content_block_start, ping, content_block_delta
 *                                     text_delta…, content_block_stop, message_delta, message_stop)
 *   POST /v1/messages/count_tokens    `{ input_tokens }`
 *   GET  /v1/models                   an Anthropic-shaped list on api.anthropic.com, OpenAI-shaped elsewhere
 *   POST /v1/responses                OpenAI Responses API: JSON, or with `stream: true` the SSE sequence
 *                                     (response.created … response.output_text.delta … response.completed)
 *   WS   /v1/responses                the Responses API over WebSocket, as Codex uses it: each
 *                                     `{"type":"response.create",…}` text message is answered with the same
 *                                     event sequence, one JSON text message per event
 *   POST /v1/chat/completions         OpenAI Chat Completions: JSON, or `stream: true` chunks + `[DONE]`
 *   GET  /<repo>.git/info/refs        a tiny git smart-HTTP ref advertisement (`git ls-remote` works)
 *   GET  /hello                       `{ ok: true }` (plain probes from curl, Python, fetch)
 *   anything else                     404 with a provider-shaped JSON error (recorded like everything else)
 *
 * Every request is recorded with its headers and body, and whether it came over HTTPS or as a WebSocket
 * upgrade (plus the text messages sent on that socket), so tests can assert that the upstream saw the REAL
 * key, never a phantom, and which transport a client used. Listens on 127.0.0.1 only.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { REPO_ROOT } from './repo-root.js';
import { listenOnLoopback } from './loopback-server.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');

/** One request as the provider saw it. */
export interface ProviderRequest {
  /** `https` for a plain request, `ws` for a WebSocket upgrade (then `messages` holds what the client sent). */
  transport: 'https' | 'ws';
  method: string;
  /** Path with query string. */
  path: string;
  /** The Host header (the provider answers for every name its certificate covers). */
  host: string;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** Client→server text messages on a WebSocket (in order). */
  messages: string[];
  /** HTTP status answered (101 for an accepted upgrade). */
  status: number;
}

/** A running fake provider. */
export interface ProviderApi {
  port: number;
  /** Every request in arrival order. */
  seen: ProviderRequest[];
  /** The text every model answer carries. */
  answer: string;
  /** Everything recorded (headers, bodies, messages) as one string, for "no phantom anywhere" checks. */
  dump(): string;
  close(): Promise<void>;
}

/** Options for {@link startProviderApi}. */
export interface ProviderOptions {
  /** The text of every model answer (default: a distinctive sentence tests can look for). */
  answer?: string;
  /** Gap between streamed chunks in ms (default 5), so streams really arrive in pieces. */
  gapMs?: number;
}

/** Default answer text: distinctive enough that finding it in a client's output proves the round trip. */
export const DEFAULT_ANSWER = 'Hi from the fake provider, via sluice.';

/** Starts the fake provider on 127.0.0.1 with a free port. */
export async function startProviderApi(opts: ProviderOptions = {}): Promise<ProviderApi> {
  const answer = opts.answer ?? DEFAULT_ANSWER;
  const gap = opts.gapMs ?? 5;
  const seen: ProviderRequest[] = [];
  const server = https.createServer({
    key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')),
    cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')),
  });
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: ProviderRequest = {
        transport: 'https',
        method: req.method ?? '',
        path: req.url ?? '/',
        host: String(req.headers.host ?? ''),
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        messages: [],
        status: 0,
      };
      seen.push(rec);
      const origWriteHead = res.writeHead.bind(res) as (...a: unknown[]) => http.ServerResponse;
      (res as unknown as { writeHead: (...a: unknown[]) => http.ServerResponse }).writeHead = (...a: unknown[]) => {
        rec.status = a[0] as number;
        return origWriteHead(...a);
      };
      try {
        route(rec, res, answer, gap);
      } catch (err) {
        if (!res.headersSent) json(res, 500, { error: { type: 'fake_provider_error', message: String(err) } });
      }
    });
  });

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
  server.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const rec: ProviderRequest = {
      transport: 'ws',
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      host: String(req.headers.host ?? ''),
      headers: req.headers,
      body: '',
      messages: [],
      status: 0,
    };
    seen.push(rec);
    const pathname = new URL(rec.path, 'https://x').pathname;
    if (pathname !== '/v1/responses') {
      rec.status = 404;
      socket.end('HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{"error":{"type":"not_found"}}');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      rec.status = 101;
      serveResponsesSocket(ws, rec, answer);
    });
  });

  const listening = await listenOnLoopback(server, () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return {
    port: listening.port,
    seen,
    answer,
    dump: () => JSON.stringify(seen),
    close: listening.close,
  };
}

function id(prefix: string): string {
  return `${prefix}${randomBytes(12).toString('hex')}`;
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function parseBody(body: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body) as unknown;
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** Splits the answer into a few word-ish pieces (a stream of one chunk would prove nothing). */
function pieces(text: string): string[] {
  return text.match(/\S+\s*/g) ?? [text];
}

/** Writes SSE events with a gap between them; resolves when the response ended (or the client left). */
function sse(res: http.ServerResponse, events: { event?: string; data: string }[], gap: number): void {
  res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
  let i = 0;
  const tick = (): void => {
    if (res.destroyed) return;
    if (i >= events.length) return void res.end();
    const e = events[i++]!;
    res.write(`${e.event ? `event: ${e.event}\n` : ''}data: ${e.data}\n\n`);
    setTimeout(tick, gap);
  };
  tick();
}

function route(rec: ProviderRequest, res: http.ServerResponse, answer: string, gap: number): void {
  const url = new URL(rec.path, 'https://x');
  const p = url.pathname;
  const anthropic = rec.host.startsWith('api.anthropic.com');
  const body = parseBody(rec.body);
  if (rec.method === 'POST' && p === '/v1/messages') return anthropicMessages(body, res, answer, gap);
  if (rec.method === 'POST' && p === '/v1/messages/count_tokens') return json(res, 200, { input_tokens: 42 });
  if (rec.method === 'POST' && p === '/v1/responses') return openaiResponses(body, res, answer, gap);
  if (rec.method === 'POST' && p === '/v1/chat/completions') return chatCompletions(body, res, answer, gap);
  if (rec.method === 'GET' && p === '/v1/models') {
    if (anthropic) {
      return json(res, 200, {
        data: [{ type: 'model', id: 'claude-sonnet-4-5', display_name: 'Claude Sonnet 4.5 (fake)', created_at: '2025-09-29T00:00:00Z' }],
        has_more: false,
        first_id: 'claude-sonnet-4-5',
        last_id: 'claude-sonnet-4-5',
      });
    }
    return json(res, 200, { object: 'list', data: [{ id: 'gpt-5', object: 'model', created: 1_700_000_000, owned_by: 'fake' }] });
  }
  if (rec.method === 'GET' && p === '/hello') return json(res, 200, { ok: true, hello: answer });
  if (rec.method === 'GET' && /\.git\/info\/refs$/.test(p) && url.searchParams.get('service') === 'git-upload-pack') return gitRefs(res);
  if (anthropic) return json(res, 404, { type: 'error', error: { type: 'not_found_error', message: `fake provider: no route ${rec.method} ${p}` } });
  return json(res, 404, { error: { type: 'invalid_request_error', code: 'not_found', message: `fake provider: no route ${rec.method} ${p}`, param: null } });
}

function anthropicMessages(body: Record<string, unknown>, res: http.ServerResponse, answer: string, gap: number): void {
  const model = typeof body.model === 'string' ? body.model : 'claude-sonnet-4-5';
  const msgId = id('msg_fake');
  const usage = { input_tokens: 12, output_tokens: pieces(answer).length, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
  if (body.stream !== true) {
    return json(res, 200, {
      id: msgId,
      type: 'message',
      role: 'assistant',
      model,
      content: [{ type: 'text', text: answer }],
      stop_reason: 'end_turn',
      stop_sequence: null,
      usage,
    });
  }
  const ev = (type: string, data: Record<string, unknown>) => ({ event: type, data: JSON.stringify({ type, ...data }) });
  sse(
    res,
    [
      ev('message_start', {
        message: {
          id: msgId,
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          usage: { ...usage, output_tokens: 1 },
        },
      }),
      ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }),
      ev('ping', {}),
      ...pieces(answer).map((t) => ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: t } })),
      ev('content_block_stop', { index: 0 }),
      ev('message_delta', { delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }),
      ev('message_stop', {}),
    ],
    gap,
  );
}

/** The Responses API event sequence for one text answer (shared by SSE and WebSocket). */
function responsesEvents(body: Record<string, unknown>, answer: string): Record<string, unknown>[] {
  const model = typeof body.model === 'string' ? body.model : 'gpt-5';
  const respId = id('resp_fake');
  const itemId = id('msg_fake');
  const created = Math.floor(Date.now() / 1000);
  const base = { id: respId, object: 'response', created_at: created, model, output: [] as unknown[], status: 'in_progress' };
  const doneItem = { id: itemId, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: answer, annotations: [] }] };
  const usage = {
    input_tokens: 12,
    input_tokens_details: { cached_tokens: 0 },
    output_tokens: pieces(answer).length,
    output_tokens_details: { reasoning_tokens: 0 },
    total_tokens: 12 + pieces(answer).length,
  };
  let seq = 0;
  const ev = (type: string, data: Record<string, unknown>) => ({ type, sequence_number: seq++, ...data });
  if (body.generate === false) {
    // Codex's warm-up request: no output, just a completed response to chain from.
    return [ev('response.created', { response: base }), ev('response.completed', { response: { ...base, status: 'completed', usage } })];
  }
  return [
    ev('response.created', { response: base }),
    ev('response.in_progress', { response: base }),
    ev('response.output_item.added', { output_index: 0, item: { id: itemId, type: 'message', status: 'in_progress', role: 'assistant', content: [] } }),
    ev('response.content_part.added', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } }),
    ...pieces(answer).map((delta) => ev('response.output_text.delta', { item_id: itemId, output_index: 0, content_index: 0, delta })),
    ev('response.output_text.done', { item_id: itemId, output_index: 0, content_index: 0, text: answer }),
    ev('response.content_part.done', { item_id: itemId, output_index: 0, content_index: 0, part: { type: 'output_text', text: answer, annotations: [] } }),
    ev('response.output_item.done', { output_index: 0, item: doneItem }),
    ev('response.completed', { response: { ...base, status: 'completed', output: [doneItem], output_text: answer, usage } }),
  ];
}

function openaiResponses(body: Record<string, unknown>, res: http.ServerResponse, answer: string, gap: number): void {
  const events = responsesEvents(body, answer);
  if (body.stream !== true) return json(res, 200, (events[events.length - 1] as { response: unknown }).response);
  sse(
    res,
    events.map((e) => ({ event: String(e.type), data: JSON.stringify(e) })),
    gap,
  );
}

/** Answers each `response.create` on a Responses WebSocket with the event sequence, one text message each. */
function serveResponsesSocket(ws: WebSocket, rec: ProviderRequest, answer: string): void {
  ws.on('message', (data, isBinary) => {
    if (isBinary) return void ws.close(1003, 'binary not supported');
    const text = data.toString();
    rec.messages.push(text);
    const msg = parseBody(text);
    if (msg.type !== 'response.create') {
      ws.send(JSON.stringify({ type: 'error', status: 400, error: { type: 'invalid_request_error', message: `unexpected message type ${String(msg.type)}` } }));
      return;
    }
    for (const e of responsesEvents(msg, answer)) ws.send(JSON.stringify(e));
  });
}

function chatCompletions(body: Record<string, unknown>, res: http.ServerResponse, answer: string, gap: number): void {
  const model = typeof body.model === 'string' ? body.model : 'gpt-4o';
  const cid = id('chatcmpl-fake');
  const created = Math.floor(Date.now() / 1000);
  const usage = { prompt_tokens: 12, completion_tokens: pieces(answer).length, total_tokens: 12 + pieces(answer).length };
  if (body.stream !== true) {
    return json(res, 200, {
      id: cid,
      object: 'chat.completion',
      created,
      model,
      choices: [{ index: 0, message: { role: 'assistant', content: answer, refusal: null }, logprobs: null, finish_reason: 'stop' }],
      usage,
    });
  }
  const chunk = (delta: Record<string, unknown>, finish: string | null) =>
    JSON.stringify({ id: cid, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
  sse(
    res,
    [
      { data: chunk({ role: 'assistant', content: '' }, null) },
      ...pieces(answer).map((t) => ({ data: chunk({ content: t }, null) })),
      { data: chunk({}, 'stop') },
      { data: '[DONE]' },
    ],
    gap,
  );
}

/** A git pkt-line. */
function pkt(line: string): string {
  return (line.length + 4).toString(16).padStart(4, '0') + line;
}

/** The commit every fake repository's refs point at. */
export const FAKE_GIT_SHA = '3f786850e387550fdab836ed7e6dc881de23001b';

/** Smart-HTTP v0 ref advertisement for `git ls-remote`: HEAD and refs/heads/main. */
function gitRefs(res: http.ServerResponse): void {
  const body =
    pkt('# service=git-upload-pack\n') +
    '0000' +
    pkt(
      `${FAKE_GIT_SHA} HEAD\0multi_ack thin-pack side-band side-band-64k ofs-delta shallow no-progress include-tag symref=HEAD:refs/heads/main agent=git/fake-provider\n`,
    ) +
    pkt(`${FAKE_GIT_SHA} refs/heads/main\n`) +
    '0000';
  res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-advertisement', 'cache-control': 'no-cache', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}
