/** The one mapping of upstream failures to the client's answer and the audit detail (upstream-errors.ts). */
import { describe, expect, it } from 'vitest';
import { REFUSALS } from '../../../../src/shared/protocol/refusal-codes.js';
import {
  errorLabel,
  mapUpstreamError,
  UpstreamCancelledError,
  UpstreamResponseError,
  UpstreamTimeoutError,
} from '../../../../src/daemon/proxy/upstream-errors.js';

/** An error as Node's sockets and TLS raise them: a message and an errno-style code. */
function nodeError(code: string): Error {
  return Object.assign(new Error(`socket said ${code}`), { code });
}

describe('mapUpstreamError', () => {
  it.each([
    ['ECONNREFUSED', 502, 'upstream_error'],
    ['ECONNRESET', 502, 'upstream_error'],
    ['EPIPE', 502, 'upstream_error'],
    ['ENOTFOUND', 502, 'upstream_error'],
    ['EAI_AGAIN', 502, 'upstream_error'],
    ['EHOSTUNREACH', 502, 'upstream_error'],
    ['ETIMEDOUT', 504, 'upstream_error'],
    ['ESOCKETTIMEDOUT', 504, 'upstream_error'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 502, 'upstream_tls'],
    ['SELF_SIGNED_CERT_IN_CHAIN', 502, 'upstream_tls'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 502, 'upstream_tls'],
    ['UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 502, 'upstream_tls'],
    ['CERT_HAS_EXPIRED', 502, 'upstream_tls'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 502, 'upstream_tls'],
    ['HOSTNAME_MISMATCH', 502, 'upstream_tls'],
  ])('Node error %s before a response: %i %s, audited with its code', (code, status, refusal) => {
    const f = mapUpstreamError(nodeError(code), 'api.example', 443, 'request');
    expect(f).toMatchObject({ status, code: refusal, errorKind: `upstream_request_error:${code}` });
    expect(f.message).toContain('api.example');
    expect(f.message).toContain(code);
    if (refusal === 'upstream_tls') expect(f.message).toContain('certificate that does not verify');
  });

  it('every code it answers with is in the refusal catalogue', () => {
    const errs = [nodeError('ECONNRESET'), nodeError('CERT_HAS_EXPIRED'), new UpstreamTimeoutError('connect', 5), new UpstreamCancelledError()];
    for (const e of errs) expect(Object.keys(REFUSALS)).toContain(mapUpstreamError(e, 'h', 1, 'request').code);
  });

  it('an error without a code is a 502 upstream_error saying "error"', () => {
    const f = mapUpstreamError(new Error('boom'), 'h.example', 8443, 'request');
    expect(f).toEqual({ status: 502, code: 'upstream_error', message: 'sluice: upstream h.example:8443 failed (error)', errorKind: 'upstream_request_error' });
    expect(mapUpstreamError(undefined, 'h', 1, 'response').errorKind).toBe('upstream_response_error');
  });

  it("sluice's own timeouts are a 504 upstream_timeout naming the phase", () => {
    expect(mapUpstreamError(new UpstreamTimeoutError('connect', 250), 'slow.example', 443, 'request')).toEqual({
      status: 504,
      code: 'upstream_timeout',
      message: 'sluice: upstream slow.example:443 did not connect within 250 ms',
      errorKind: 'upstream_timeout:connect',
    });
    expect(mapUpstreamError(new UpstreamTimeoutError('headers', 900), 'slow.example', 443, 'request')).toMatchObject({
      status: 504,
      message: 'sluice: upstream slow.example:443 sent no response headers within 900 ms',
      errorKind: 'upstream_timeout:headers',
    });
    expect(mapUpstreamError(new UpstreamTimeoutError('headers', 900), 'slow.example', 443, 'upgrade').message).toBe(
      'sluice: upstream slow.example:443 did not answer the WebSocket upgrade within 900 ms',
    );
  });

  it('response faults keep the labels audit rows have always shown, and are never TLS failures', () => {
    const cases: [UpstreamResponseError, string][] = [
      [new UpstreamResponseError('cut_short', 'ended early'), 'ECONNRESET'],
      [new UpstreamResponseError('undecodable', 'x-zstd'), 'EUNDECODABLE'],
      [new UpstreamResponseError('bad_coding', 'corrupt gzip', { cause: new Error('zlib') }), 'EBADCODING'],
      [new UpstreamResponseError('too_large', 'token response too_large'), 'ETOOBIG'],
    ];
    for (const [err, label] of cases) {
      expect(errorLabel(err)).toBe(label);
      expect(mapUpstreamError(err, 'h', 443, 'response')).toMatchObject({ status: 502, code: 'upstream_error', errorKind: `upstream_response_error:${label}` });
      // Typed, not an errno in disguise.
      expect((err as Error & { code?: string }).code).toBeUndefined();
    }
  });

  it('a cancelled leg is labelled ECANCELED without carrying an errno code', () => {
    const err = new UpstreamCancelledError();
    expect((err as Error & { code?: string }).code).toBeUndefined();
    expect(mapUpstreamError(err, 'h', 443, 'request').errorKind).toBe('upstream_request_error:ECANCELED');
  });

  it('an upgrade that fails before any answer is audited as a request error', () => {
    expect(mapUpstreamError(nodeError('ECONNREFUSED'), 'ws.example', 443, 'upgrade').errorKind).toBe('upstream_request_error:ECONNREFUSED');
  });
});
