/** Refusal bodies in the provider's own error shape, and the headers written with them. */
import type http from 'node:http';
import { describe, expect, it } from 'vitest';
import { flavourOf, refusalBody, writeRefusal, type Refusal } from '../../../../src/daemon/proxy/refusals.js';

const CAP_REFUSAL: Refusal = {
  status: 429,
  code: 'per_credential_cap',
  message: 'Too many concurrent requests against this credential (cap: 2). Retry shortly.',
  retryAfterS: 1,
  extra: { cap: 2 },
};

/** A response double that records what was written. */
function fakeResponse(state: Partial<{ headersSent: boolean; writableEnded: boolean; destroyed: boolean }> = {}) {
  const rec = { status: 0, headers: {} as http.OutgoingHttpHeaders, body: '', destroyedByCall: false, resumed: false };
  const res = {
    headersSent: false,
    writableEnded: false,
    destroyed: false,
    ...state,
    writeHead(status: number, headers: http.OutgoingHttpHeaders) {
      rec.status = status;
      rec.headers = headers;
      return this;
    },
    end(body: string) {
      rec.body = body;
    },
    destroy() {
      rec.destroyedByCall = true;
    },
  };
  const req = {
    resume() {
      rec.resumed = true;
    },
  };
  return { rec, res: res as unknown as http.ServerResponse, req: req as unknown as http.IncomingMessage };
}

describe('flavourOf', () => {
  it('picks the provider shape from the host, ignoring case', () => {
    expect(flavourOf('api.anthropic.com')).toBe('anthropic');
    expect(flavourOf('API.Anthropic.com')).toBe('anthropic');
    expect(flavourOf('api.openai.com')).toBe('openai');
    expect(flavourOf('chatgpt.com')).toBe('openai');
    expect(flavourOf('example.com')).toBe('generic');
    expect(flavourOf('notanthropic.com')).toBe('generic');
  });
});

describe('refusalBody', () => {
  it('gives Anthropic hosts an overloaded_error body their SDK understands', () => {
    const body = refusalBody(CAP_REFUSAL, flavourOf('api.anthropic.com'));
    expect(
      body.startsWith(
        '{"type":"error","error":{"type":"overloaded_error","message":"Too many concurrent requests against this credential (cap: 2). Retry shortly."}',
      ),
    ).toBe(true);
    const parsed = JSON.parse(body);
    expect(parsed.type).toBe('error');
    expect(parsed.error).toEqual({ type: 'overloaded_error', message: 'Too many concurrent requests against this credential (cap: 2). Retry shortly.' });
    expect(parsed.sluice).toEqual({ code: 'per_credential_cap', cap: 2 });
  });

  it('gives the global-cap message the same Anthropic shape', () => {
    const parsed = JSON.parse(refusalBody({ status: 429, code: 'global_cap', message: 'Server is at capacity. Retry shortly.', retryAfterS: 1 }, 'anthropic'));
    expect(parsed.error).toEqual({ type: 'overloaded_error', message: 'Server is at capacity. Retry shortly.' });
  });

  it('gives api.openai.com the OpenAI error shape', () => {
    const parsed = JSON.parse(refusalBody(CAP_REFUSAL, flavourOf('api.openai.com')));
    expect(parsed.error).toEqual({
      message: 'Too many concurrent requests against this credential (cap: 2). Retry shortly.',
      type: 'rate_limit_error',
      param: null,
      code: 'per_credential_cap',
    });
    expect(parsed.type).toBeUndefined();
  });

  it('gives other hosts a generic shape that still names the reason', () => {
    const parsed = JSON.parse(refusalBody({ status: 403, code: 'policy_denied', message: 'denied' }, 'generic'));
    expect(parsed.error).toEqual({ type: 'policy_denied', message: 'denied' });
  });

  it('maps a 403 to permission_error for both providers', () => {
    const r: Refusal = { status: 403, code: 'phantom_leak', message: 'blocked' };
    expect(JSON.parse(refusalBody(r, 'anthropic')).error.type).toBe('permission_error');
    expect(JSON.parse(refusalBody(r, 'openai')).error.type).toBe('permission_error');
  });
});

describe('writeRefusal', () => {
  it('writes status, JSON body, exact content-length, retry-after and the sluice reason header', () => {
    const { rec, res, req } = fakeResponse();
    writeRefusal(req, res, CAP_REFUSAL, 'api.anthropic.com');
    expect(rec.status).toBe(429);
    expect(rec.headers['retry-after']).toBe('1');
    expect(rec.headers['content-type']).toBe('application/json');
    expect(rec.headers['x-sluice-reason']).toBe('per_credential_cap');
    expect(rec.headers['content-length']).toBe(Buffer.byteLength(rec.body));
    expect(JSON.parse(rec.body).error.type).toBe('overloaded_error');
    expect(rec.resumed).toBe(true);
  });

  it('omits retry-after when the refusal has none, and asks for proxy credentials on 407', () => {
    const { rec, res, req } = fakeResponse();
    writeRefusal(req, res, { status: 407, code: 'proxy_auth_required', message: 'token required' }, 'example.com');
    expect(rec.headers['retry-after']).toBeUndefined();
    expect(rec.headers['proxy-authenticate']).toBe('Basic realm="sluice"');
  });

  it('destroys the connection instead of writing when headers were already sent', () => {
    const { rec, res, req } = fakeResponse({ headersSent: true });
    writeRefusal(req, res, CAP_REFUSAL, 'api.anthropic.com');
    expect(rec.destroyedByCall).toBe(true);
    expect(rec.status).toBe(0);
    expect(rec.body).toBe('');
  });
});
