/**
 * The one exchange lifecycle (request-exchange.ts) and the one builder of its audit rows (exchange-audit.ts):
 * phases only go forward, finishing is once, nothing is recorded after the end, and every per-exchange row
 * comes out of the same builder with the same who/where/what.
 */
import { describe, expect, it } from 'vitest';
import type { AuditEntry } from '../../../../src/daemon/audit/audit-log.js';
import { FakeClock } from '../../../../src/daemon/clock.js';
import type { Permit } from '../../../../src/daemon/concurrency/cap-registry.js';
import { closingRow, ExchangeEnd, exchangeRow, maskedRow } from '../../../../src/daemon/proxy/exchange-audit.js';
import { RequestExchange } from '../../../../src/daemon/proxy/request-exchange.js';
import type { Refusal } from '../../../../src/daemon/proxy/refusals.js';

const CAP: Refusal = { status: 429, code: 'per_credential_cap', message: 'cap' };
const TLS: Refusal = { status: 502, code: 'upstream_tls', message: 'tls' };

function exchange(protocol: 'http' | 'websocket' = 'http'): RequestExchange {
  const ex = new RequestExchange('x-1', 1_000, protocol);
  ex.host = 'api.example';
  ex.port = 443;
  ex.method = protocol === 'websocket' ? 'GET' : 'POST';
  ex.path = '/v1/messages';
  ex.client = '127.0.0.1:5555';
  ex.agent = { id: 'a1', name: 'claude', startedAt: 0 };
  ex.verdict = 'allow';
  ex.ruleId = 7;
  ex.credential = 'anthropic';
  return ex;
}

/** An audit log, an observer and a permit that record what they were told. */
function harness() {
  const rows: AuditEntry[] = [];
  const finished: string[] = [];
  let released = 0;
  const clock = new FakeClock();
  const end = new ExchangeEnd({
    audit: { append: (r: AuditEntry) => void rows.push(r) },
    observer: { finished: (ex: RequestExchange) => void finished.push(ex.outcome()) },
    clock,
  });
  const permit: Permit = { release: () => void released++, switchTo: () => Promise.resolve(false) };
  return { rows, finished, end, clock, permit, released: () => released };
}

describe('the exchange lifecycle', () => {
  it('starts admitting and only moves forward', () => {
    const ex = exchange();
    expect(ex.phase).toBe('admitting');
    expect(ex.advance('reading_body')).toBe(true);
    expect(ex.advance('forwarding')).toBe(true);
    expect(ex.advance('reading_body')).toBe(false);
    expect(ex.phase).toBe('forwarding');
    expect(ex.advance('relaying')).toBe(true);
    expect(ex.advance('relaying')).toBe(false);
    expect(ex.finished).toBe(false);
  });

  it('finishes once; a finished exchange advances no more', () => {
    const ex = exchange();
    expect(ex.finish()).toBe(true);
    expect(ex.finish()).toBe(false);
    expect(ex.phase).toBe('finished');
    expect(ex.advance('relaying')).toBe(false);
    expect(ex.phase).toBe('finished');
  });

  it('a refusal, failure or completion after the end records nothing', () => {
    const ex = exchange();
    ex.finish();
    expect(ex.refuse(CAP)).toBe(false);
    ex.fail('upstream_request_error:ECONNRESET');
    ex.complete();
    expect(ex.refusal).toBeNull();
    expect(ex.errorKind).toBeNull();
    expect(ex.status).toBeNull();
    expect(ex.outcome()).toBe('client_aborted');
  });

  it('the outcome is the strongest recorded: refused over upstream_error over completed over none', () => {
    const a = exchange();
    expect(a.outcome()).toBe('client_aborted');
    a.complete();
    expect(a.outcome()).toBe('completed');
    a.fail('websocket_upstream_error');
    expect(a.outcome()).toBe('upstream_error');
    a.complete();
    expect(a.outcome()).toBe('upstream_error');
    // A token answer sluice cannot read is both a failure and sluice's own answer: refused wins either way.
    a.refuse(TLS);
    expect(a.outcome()).toBe('refused');
    a.fail('later');
    expect(a.outcome()).toBe('refused');
    expect(a.status).toBe(502);
  });
});

describe('ExchangeEnd.close', () => {
  it('releases permits, writes the closing row and tells the observer exactly once', () => {
    const h = harness();
    const ex = exchange();
    ex.permit = h.permit;
    ex.status = 200;
    ex.bytes = 42;
    ex.complete();
    h.clock.advance(5);
    expect(h.end.close(ex)).toBe(true);
    expect(h.end.close(ex)).toBe(false);
    expect(h.released()).toBe(1);
    expect(h.finished).toEqual(['completed']);
    expect(h.rows).toHaveLength(1);
    expect(h.rows[0]).toMatchObject({ event: 'request', status: 200, bytes: 42, detail: 'completed', verdict: 'allow', rule_id: 7, credential: 'anthropic' });
  });

  it('a refusal after close neither answers nor adds a row', () => {
    const h = harness();
    const ex = exchange();
    h.end.close(ex);
    expect(ex.refuse(CAP)).toBe(false);
    expect(h.end.close(ex)).toBe(false);
    expect(h.rows).toHaveLength(1);
    expect(h.rows[0]!.verdict).toBe('allow');
  });

  it('leaves the closing row out when a more specific row was written, but still ends the exchange', () => {
    const h = harness();
    const ex = exchange();
    ex.permit = h.permit;
    ex.refuse({ status: 403, code: 'phantom_leak', message: 'leak' }, true);
    expect(h.end.close(ex)).toBe(true);
    expect(h.rows).toEqual([]);
    expect(h.released()).toBe(1);
    expect(h.finished).toEqual(['refused']);
  });

  it('writes the secret_masked row before the closing row', () => {
    const h = harness();
    const ex = exchange('websocket');
    ex.status = 101;
    ex.complete();
    h.end.close(ex, { event: 'websocket', masked: { where: ['ws'], credentials: new Set(['anthropic', 'openai']) } });
    expect(h.rows.map((r) => r.event)).toEqual(['secret_masked', 'websocket']);
    expect(h.rows[0]).toMatchObject({ method: 'GET', status: 101, credential: 'anthropic,openai', detail: 'ws' });
    expect(h.rows[1]).toMatchObject({ detail: 'websocket' });
  });
});

describe('the audit-row builder', () => {
  it('every row names the exchange the same way', () => {
    const ex = exchange();
    const who = { client: '127.0.0.1:5555', agent: 'claude', host: 'api.example', port: 443, method: 'POST', path: '/v1/messages' };
    expect(exchangeRow(ex, 'proxy_auth_failed', { status: 407 })).toEqual({ event: 'proxy_auth_failed', ...who, status: 407 });
    expect(exchangeRow(ex, 'phantom_leak', { method: 'WS', credential: 'x' })).toEqual({ event: 'phantom_leak', ...who, method: 'WS', credential: 'x' });
    expect(maskedRow(ex, { where: new Set(['header:location', 'body']), credentials: ['anthropic'] })).toEqual({
      event: 'secret_masked',
      ...who,
      credential: 'anthropic',
      status: null,
      detail: 'header:location,body',
    });
  });

  it("the closing row's verdict is the refusal code when sluice answered, and its detail says how it ended", () => {
    const ex = exchange();
    ex.refuse(CAP);
    expect(closingRow(ex, 1_250)).toMatchObject({ event: 'request', verdict: 'per_credential_cap', status: 429, duration_ms: 250, detail: 'refused' });
    const failed = exchange();
    failed.fail('upstream_timeout:headers');
    expect(closingRow(failed, 1_000)).toMatchObject({ verdict: 'allow', detail: 'upstream_timeout:headers' });
    expect(closingRow(exchange(), 1_000, 'request', 'client_left_during_upgrade').detail).toBe('client_left_during_upgrade');
    expect(closingRow(exchange(), 1_000).detail).toBe('client_aborted');
  });

  it('a WebSocket closing row says websocket, or that its upgrade was refused', () => {
    const ws = exchange('websocket');
    expect(closingRow(ws, 1_000, 'websocket').detail).toBe('websocket');
    ws.fail('websocket_upstream_error');
    expect(closingRow(ws, 1_000, 'websocket').detail).toBe('websocket_upstream_error');
    const refused = exchange('websocket');
    refused.fail('upstream_timeout:connect');
    refused.refuse({ status: 504, code: 'upstream_timeout', message: 't' });
    expect(closingRow(refused, 1_000)).toMatchObject({ event: 'request', verdict: 'upstream_timeout', detail: 'websocket upgrade refused' });
  });
});
