/**
 * The streaming usage parsers: each provider shape, fed whole, split at every byte position into two
 * chunks, and one byte at a time, must report exactly the usage the body carries; bounded memory; the
 * normalisation of src/shared/protocol/usage.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  JsonUsageMeter,
  MAX_JSON_BODY_BYTES,
  MAX_SSE_EVENT_BYTES,
  meterFor,
  SseUsageMeter,
  usageOfMessage,
  type UsageMeter,
} from '../../../../src/daemon/usage/usage-meters.js';
import type { ParsedUsage } from '../../../../src/daemon/usage/usage-fields.js';

const sse = (events: [string, unknown][], eol = '\n'): string =>
  events.map(([name, data]) => `event: ${name}${eol}data: ${typeof data === 'string' ? data : JSON.stringify(data)}${eol}${eol}`).join('');

/** Anthropic Messages SSE with cache counts and a cumulative output count in message_delta. */
const ANTHROPIC_SSE = sse([
  [
    'message_start',
    {
      type: 'message_start',
      message: {
        id: 'msg_1',
        type: 'message',
        role: 'assistant',
        model: 'claude-sonnet-4-5',
        content: [],
        usage: { input_tokens: 25, cache_creation_input_tokens: 100, cache_read_input_tokens: 2000, output_tokens: 1 },
      },
    },
  ],
  ['content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }],
  ['ping', { type: 'ping' }],
  ['content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello "usage" ü 日本' } }],
  ['content_block_stop', { type: 'content_block_stop', index: 0 }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 7 } }],
  ['message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 15, input_tokens: null } }],
  ['message_stop', { type: 'message_stop' }],
]);
const ANTHROPIC_EXPECTED: ParsedUsage = { model: 'claude-sonnet-4-5', input_tokens: 2125, output_tokens: 15, cached_tokens: 2000 };

/** OpenAI Chat Completions stream with `stream_options.include_usage` (usage null until the last chunk). */
const CHAT_SSE =
  [
    { id: 'c1', object: 'chat.completion.chunk', model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }], usage: null },
    { id: 'c1', object: 'chat.completion.chunk', model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta: { content: 'Hi' } }], usage: null },
    { id: 'c1', object: 'chat.completion.chunk', model: 'gpt-4o-2024-08-06', choices: [{ index: 0, delta: {}, finish_reason: 'stop' }], usage: null },
    {
      id: 'c1',
      object: 'chat.completion.chunk',
      model: 'gpt-4o-2024-08-06',
      choices: [],
      usage: { prompt_tokens: 1200, completion_tokens: 42, total_tokens: 1242, prompt_tokens_details: { cached_tokens: 1024 } },
    },
  ]
    .map((c) => `data: ${JSON.stringify(c)}\n\n`)
    .join('') + 'data: [DONE]\n\n';
const CHAT_EXPECTED: ParsedUsage = { model: 'gpt-4o-2024-08-06', input_tokens: 1200, output_tokens: 42, cached_tokens: 1024 };

/** OpenAI Responses stream: usage only in response.completed. */
const RESPONSES_SSE = sse([
  ['response.created', { type: 'response.created', response: { id: 'resp_1', model: 'gpt-5-codex', status: 'in_progress', usage: null } }],
  ['response.output_text.delta', { type: 'response.output_text.delta', delta: 'usage' }],
  [
    'response.completed',
    {
      type: 'response.completed',
      response: {
        id: 'resp_1',
        model: 'gpt-5-codex',
        status: 'completed',
        usage: {
          input_tokens: 900,
          input_tokens_details: { cached_tokens: 512 },
          output_tokens: 77,
          output_tokens_details: { reasoning_tokens: 20 },
          total_tokens: 977,
        },
      },
    },
  ],
]);
const RESPONSES_EXPECTED: ParsedUsage = { model: 'gpt-5-codex', input_tokens: 900, output_tokens: 77, cached_tokens: 512 };

const ANTHROPIC_JSON = JSON.stringify({
  id: 'msg_2',
  type: 'message',
  model: 'claude-haiku-4-5',
  content: [{ type: 'text', text: 'hi' }],
  usage: { input_tokens: 10, cache_read_input_tokens: 5, output_tokens: 3 },
});
const CHAT_JSON = JSON.stringify({
  object: 'chat.completion',
  model: 'gpt-4o-mini',
  choices: [],
  usage: { prompt_tokens: 11, completion_tokens: 4, prompt_tokens_details: { cached_tokens: 0 } },
});
const RESPONSES_JSON = JSON.stringify({
  object: 'response',
  model: 'gpt-5',
  usage: { input_tokens: 30, input_tokens_details: { cached_tokens: 8 }, output_tokens: 9 },
});

function feedAll(m: UsageMeter, chunks: Buffer[]): ParsedUsage | null {
  for (const c of chunks) m.feed(c);
  return m.result();
}

/** Every way of cutting `body` into two chunks, plus one byte at a time. */
function splits(body: Buffer): Buffer[][] {
  const out: Buffer[][] = [[body]];
  for (let i = 1; i < body.length; i++) out.push([body.subarray(0, i), body.subarray(i)]);
  out.push([...body].map((b) => Buffer.from([b])));
  return out;
}

describe('SSE usage meter', () => {
  const cases: [string, string, ParsedUsage][] = [
    ['Anthropic Messages', ANTHROPIC_SSE, ANTHROPIC_EXPECTED],
    ['Anthropic Messages (CRLF)', ANTHROPIC_SSE.replace(/\n/g, '\r\n'), ANTHROPIC_EXPECTED],
    ['OpenAI Chat Completions with include_usage', CHAT_SSE, CHAT_EXPECTED],
    ['OpenAI Responses', RESPONSES_SSE, RESPONSES_EXPECTED],
  ];
  for (const [name, body, expected] of cases) {
    it(`${name}: exact usage at every split point and one byte at a time`, () => {
      const buf = Buffer.from(body, 'utf8');
      for (const chunks of splits(buf)) expect(feedAll(new SseUsageMeter(), chunks)).toEqual(expected);
    });
  }

  it('a stream cut off after message_start reports the input and the output counted so far', () => {
    const cut = ANTHROPIC_SSE.slice(0, ANTHROPIC_SSE.indexOf('event: content_block_start'));
    expect(feedAll(new SseUsageMeter(), [Buffer.from(cut)])).toEqual({ model: 'claude-sonnet-4-5', input_tokens: 2125, output_tokens: 1, cached_tokens: 2000 });
  });

  it('the last event counts without its trailing blank line', () => {
    const body = `data: ${JSON.stringify({ type: 'message_delta', usage: { output_tokens: 3, input_tokens: 2 } })}`;
    expect(feedAll(new SseUsageMeter(), [Buffer.from(body)])).toEqual({ model: null, input_tokens: 2, output_tokens: 3, cached_tokens: 0 });
  });

  it('a chat stream without include_usage reports nothing', () => {
    const body = CHAT_SSE.split('\n\n').slice(0, 3).join('\n\n') + '\n\ndata: [DONE]\n\n';
    expect(feedAll(new SseUsageMeter(), [Buffer.from(body)])).toBeNull();
  });

  it('an event over the limit is not parsed, and the events after it still are', () => {
    const huge = `data: {"type":"message_delta","usage":{"output_tokens":999},"pad":"${'x'.repeat(MAX_SSE_EVENT_BYTES)}"}\n\n`;
    const after = `data: ${JSON.stringify({ type: 'message_delta', usage: { output_tokens: 5 } })}\n\n`;
    const m = new SseUsageMeter();
    // In 64 KiB pieces, like a real stream: the meter never holds more than the limit.
    const all = Buffer.from(huge + after);
    for (let i = 0; i < all.length; i += 65536) m.feed(all.subarray(i, i + 65536));
    expect(m.result()).toEqual({ model: null, input_tokens: 0, output_tokens: 5, cached_tokens: 0 });
  });

  it('an over-long event split over many data lines is dropped as a whole', () => {
    const line = `data: ${'y'.repeat(1000)}\n`;
    const body = 'data: {"usage":{"output_tokens":1}}\n' + line.repeat(Math.ceil(MAX_SSE_EVENT_BYTES / 1000) + 1) + '\n';
    expect(feedAll(new SseUsageMeter(), [Buffer.from(body)])).toBeNull();
  });

  it('hostile values (negative, fractional, strings, huge) are ignored', () => {
    const body = `data: ${JSON.stringify({ usage: { input_tokens: -5, output_tokens: 1.5, cache_read_input_tokens: '7', prompt_tokens: 1e300 } })}\n\n`;
    expect(feedAll(new SseUsageMeter(), [Buffer.from(body)])).toBeNull();
  });

  it('the chunks it is fed are left unchanged', () => {
    const buf = Buffer.from(ANTHROPIC_SSE);
    const copy = Buffer.from(buf);
    const m = new SseUsageMeter();
    for (let i = 0; i < buf.length; i += 7) m.feed(buf.subarray(i, i + 7));
    m.result();
    expect(buf.equals(copy)).toBe(true);
  });
});

describe('JSON usage meter', () => {
  const cases: [string, string, ParsedUsage][] = [
    ['Anthropic Messages', ANTHROPIC_JSON, { model: 'claude-haiku-4-5', input_tokens: 15, output_tokens: 3, cached_tokens: 5 }],
    ['OpenAI Chat Completions', CHAT_JSON, { model: 'gpt-4o-mini', input_tokens: 11, output_tokens: 4, cached_tokens: 0 }],
    ['OpenAI Responses', RESPONSES_JSON, { model: 'gpt-5', input_tokens: 30, output_tokens: 9, cached_tokens: 8 }],
  ];
  for (const [name, body, expected] of cases) {
    it(`${name}: exact usage at every split point and one byte at a time`, () => {
      for (const chunks of splits(Buffer.from(body))) expect(feedAll(new JsonUsageMeter(), chunks)).toEqual(expected);
    });
  }

  it('an error body, a non-JSON body and a body over the limit report nothing', () => {
    expect(feedAll(new JsonUsageMeter(), [Buffer.from('{"type":"error","error":{"type":"rate_limit_error"}}')])).toBeNull();
    expect(feedAll(new JsonUsageMeter(), [Buffer.from('<html>usage</html>')])).toBeNull();
    const big = Buffer.from(`{"usage":{"input_tokens":1,"output_tokens":1},"pad":"${'z'.repeat(MAX_JSON_BODY_BYTES)}"}`);
    expect(feedAll(new JsonUsageMeter(), [big.subarray(0, 1000), big.subarray(1000)])).toBeNull();
  });
});

describe('meterFor', () => {
  it('picks by content type on model API paths only', () => {
    expect(meterFor('/v1/messages', 'text/event-stream; charset=utf-8', undefined)).toBeInstanceOf(SseUsageMeter);
    expect(meterFor('/v1/chat/completions', 'application/json', '120')).toBeInstanceOf(JsonUsageMeter);
    expect(meterFor('/openai/deployments/x/chat/completions', 'application/json', undefined)).toBeInstanceOf(JsonUsageMeter);
    expect(meterFor('/v1/responses', 'text/event-stream', undefined)).toBeInstanceOf(SseUsageMeter);
    expect(meterFor('/v1/models', 'application/json', undefined)).toBeNull();
    expect(meterFor('/v1/messages', 'text/plain', undefined)).toBeNull();
    expect(meterFor('/v1/messages', undefined, undefined)).toBeNull();
    expect(meterFor('/v1/messages', 'application/json', String(MAX_JSON_BODY_BYTES + 1))).toBeNull();
  });
});

describe('WebSocket messages', () => {
  it('response.completed reports its usage; other events report none', () => {
    const events = RESPONSES_SSE.split('\n\n')
      .filter(Boolean)
      .map((e) => Buffer.from(e.split('\n')[1]!.slice('data: '.length)));
    expect(events.map((e) => usageOfMessage(e))).toEqual([null, null, RESPONSES_EXPECTED]);
    expect(usageOfMessage(Buffer.from('not json "usage"'))).toBeNull();
  });
});
