/** What one HTTP exchange and one WebSocket record: replays, unanswered requests, per-response WebSocket counts. */
import type http from 'node:http';
import { describe, expect, it } from 'vitest';
import { RequestExchange } from '../../../../src/daemon/proxy/request-exchange.js';
import { ExchangeMeter } from '../../../../src/daemon/usage/exchange-meter.js';
import type { UsageRecord, UsageRecorder } from '../../../../src/daemon/usage/usage-service.js';
import { WebSocketMeter } from '../../../../src/daemon/usage/websocket-meter.js';

function recorder(): UsageRecorder & { records: UsageRecord[]; headers: [string, http.IncomingHttpHeaders][] } {
  const records: UsageRecord[] = [];
  const headers: [string, http.IncomingHttpHeaders][] = [];
  return { records, headers, record: (r) => records.push(r), observeHeaders: (c, h) => headers.push([c, h]) };
}

const response = (headers: http.IncomingHttpHeaders): http.IncomingMessage => ({ headers }) as http.IncomingMessage;

function exchange(cred: string, pool: string | null = null): RequestExchange {
  const ex = new RequestExchange('x-1', 0);
  ex.credential = cred;
  ex.pool = pool;
  return ex;
}

const BODY = JSON.stringify({ model: 'claude-x', usage: { input_tokens: 10, output_tokens: 5 } });

describe('ExchangeMeter', () => {
  it('a replayed request counts once for each member that answered; tokens go to the one the client got', () => {
    const rec = recorder();
    const ex = exchange('a', 'team');
    const m = new ExchangeMeter(rec, '/v1/messages');
    m.answeredBy('a', response({ 'x-ratelimit-limit-requests': '1', 'x-ratelimit-remaining-requests': '0' }));
    ex.credential = 'b';
    const ok = response({ 'content-type': 'application/json' });
    m.answeredBy('b', ok);
    m.relaying(ok);
    for (let i = 0; i < BODY.length; i += 5) m.tap(Buffer.from(BODY.slice(i, i + 5)));
    m.end(ex);
    m.end(ex);
    expect(rec.headers.map(([c]) => c)).toEqual(['a', 'b']);
    expect(rec.records).toEqual([
      { credential: 'a', pool: 'team', agent: null, model: null, requests: 1, input_tokens: 0, output_tokens: 0, cached_tokens: 0 },
      { credential: 'b', pool: 'team', agent: null, model: 'claude-x', requests: 1, input_tokens: 10, output_tokens: 5, cached_tokens: 0 },
    ]);
  });

  it('an upstream that never answered counts nothing; a non-API path counts the request only', () => {
    const rec = recorder();
    new ExchangeMeter(rec, '/v1/messages').end(exchange('a'));
    expect(rec.records).toEqual([]);
    const m = new ExchangeMeter(rec, '/v1/models');
    const res = response({ 'content-type': 'application/json' });
    m.answeredBy('a', res);
    m.relaying(res);
    m.tap(Buffer.from(BODY));
    m.end(exchange('a'));
    expect(rec.records).toEqual([{ credential: 'a', pool: null, agent: null, model: null, requests: 1, input_tokens: 0, output_tokens: 0, cached_tokens: 0 }]);
  });
});

describe('WebSocketMeter', () => {
  const completed = (input: number) =>
    Buffer.from(JSON.stringify({ type: 'response.completed', response: { model: 'gpt-x', usage: { input_tokens: input, output_tokens: 1 } } }));

  it('one request per response.completed, none extra for the upgrade', () => {
    const rec = recorder();
    const m = new WebSocketMeter(rec, exchange('o'));
    m.answered(response({ 'x-ratelimit-limit-requests': '5', 'x-ratelimit-remaining-requests': '4' }), false);
    m.message(Buffer.from('{"type":"response.created","response":{"usage":null}}'));
    m.message(completed(3));
    m.message(completed(4));
    m.closed();
    expect(rec.headers).toHaveLength(1);
    expect(rec.records.map((r) => [r.requests, r.input_tokens, r.model])).toEqual([
      [1, 3, 'gpt-x'],
      [1, 4, 'gpt-x'],
    ]);
  });

  it('a refused upgrade, and a socket that carried no response, count one request each', () => {
    const rec = recorder();
    new WebSocketMeter(rec, exchange('o')).answered(response({}), true);
    new WebSocketMeter(rec, exchange('o')).closed();
    expect(rec.records.map((r) => [r.credential, r.requests, r.input_tokens])).toEqual([
      ['o', 1, 0],
      ['o', 1, 0],
    ]);
  });
});
