/**
 * The failover classifier (DESIGN §7): which pool-member responses cool the member, why, and until when.
 * 429 / 403-with-quota-body → 60 s; 401 / token-endpoint invalid_grant|invalid_token → 300 s; a
 * `retry-after` or provider reset header sets the end instead (the latest wins); 5xx never cools.
 */
import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import {
  AUTH_COOLDOWN_MS,
  RATE_LIMIT_COOLDOWN_MS,
  classify,
  headerCooldownEnd,
  needsBody,
  parseDuration,
} from '../../../../src/daemon/pool/failover-classifier.js';

const clock = new FakeClock(); // 2026-01-01T00:00:00Z, a whole second (HTTP dates have second precision)
const NOW = clock.now();

describe('classify: what cools a member', () => {
  it('uses 60 s and 300 s as the default cooldowns', () => {
    expect(RATE_LIMIT_COOLDOWN_MS).toBe(60_000);
    expect(AUTH_COOLDOWN_MS).toBe(300_000);
  });

  it('429 → rate_limited for 60 s', () => {
    expect(classify(429, {}, null, false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 60_000 });
  });

  it('429 → rate_limited whatever the body says', () => {
    expect(classify(429, { 'content-type': 'application/json' }, '{"error":"nope"}', false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 60_000 });
  });

  it.each(['insufficient_quota', 'quota_exceeded', 'rate_limit_exceeded'])('403 whose body says %s → quota for 60 s', (code) => {
    const body = JSON.stringify({ error: { message: 'You exceeded your current quota', type: code, code } });
    expect(classify(403, { 'content-type': 'application/json' }, body, false, NOW)).toEqual({ reason: 'quota_exhausted', until: NOW + 60_000 });
  });

  it('plain 403 (permission error) → null: the member stays healthy', () => {
    expect(classify(403, {}, JSON.stringify({ type: 'error', error: { type: 'permission_error', message: 'forbidden' } }), false, NOW)).toBeNull();
    expect(classify(403, {}, '', false, NOW)).toBeNull();
    expect(classify(403, {}, null, false, NOW)).toBeNull();
  });

  it('401 → auth_failed for 300 s', () => {
    expect(classify(401, {}, null, false, NOW)).toEqual({ reason: 'auth_failed', until: NOW + 300_000 });
    expect(classify(401, {}, '{"error":"invalid x-api-key"}', false, NOW)).toEqual({ reason: 'auth_failed', until: NOW + 300_000 });
  });

  it.each([500, 502, 503, 504, 529])('%i → null (5xx never cools, even with retry-after or a quota-looking body)', (status) => {
    expect(classify(status, {}, null, false, NOW)).toBeNull();
    expect(classify(status, { 'retry-after': '30' }, '{"error":"insufficient_quota"}', false, NOW)).toBeNull();
  });

  it.each([200, 201, 204, 301, 400, 404, 409, 413, 422])('%i → null', (status) => {
    expect(classify(status, { 'retry-after': '30' }, '{"error":"rate_limit_exceeded"}', false, NOW)).toBeNull();
  });

  it('400 with invalid_grant outside a token endpoint → null', () => {
    expect(classify(400, {}, '{"error":"invalid_grant"}', false, NOW)).toBeNull();
  });
});

describe('classify: token endpoints', () => {
  it('400 invalid_grant from a token endpoint → auth_failed for 300 s', () => {
    expect(classify(400, {}, '{"error":"invalid_grant","error_description":"refresh token revoked"}', true, NOW)).toEqual({
      reason: 'auth_failed',
      until: NOW + 300_000,
    });
  });

  it('400 invalid_token from a token endpoint → auth_failed for 300 s', () => {
    expect(classify(400, {}, '{"error":"invalid_token"}', true, NOW)).toEqual({ reason: 'auth_failed', until: NOW + 300_000 });
  });

  it('other token-endpoint 4xx bodies → null; token endpoint 5xx → null', () => {
    expect(classify(400, {}, '{"error":"invalid_request"}', true, NOW)).toBeNull();
    expect(classify(400, {}, null, true, NOW)).toBeNull();
    expect(classify(500, {}, '{"error":"invalid_grant"}', true, NOW)).toBeNull();
  });

  it('needsBody: 403 always; other token-endpoint 4xx; never 429/401/5xx/2xx', () => {
    expect(needsBody(403, false)).toBe(true);
    expect(needsBody(403, true)).toBe(true);
    expect(needsBody(400, true)).toBe(true);
    expect(needsBody(400, false)).toBe(false);
    expect(needsBody(429, true)).toBe(false);
    expect(needsBody(401, true)).toBe(false);
    expect(needsBody(500, true)).toBe(false);
    expect(needsBody(200, false)).toBe(false);
  });
});

describe('classify: cooldown end from response headers', () => {
  it('retry-after: 7 → 7 s (shorter than the default still wins)', () => {
    expect(classify(429, { 'retry-after': '7' }, null, false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 7_000 });
  });

  it('retry-after never sets the end of an auth cooldown (issue 22 #4): it stays 300 s', () => {
    expect(classify(401, { 'retry-after': '45' }, null, false, NOW)).toEqual({ reason: 'auth_failed', until: NOW + 300_000 });
  });

  it('retry-after longer than the default extends it', () => {
    expect(classify(429, { 'retry-after': '600' }, null, false, NOW)?.until).toBe(NOW + 600_000);
  });

  it('retry-after as an HTTP-date', () => {
    const date = new Date(NOW + 120_000).toUTCString(); // "Thu, 01 Jan 2026 00:02:00 GMT"
    expect(classify(429, { 'retry-after': date }, null, false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 120_000 });
  });

  it('a header name in another case is still read', () => {
    expect(classify(429, { 'Retry-After': '9' }, null, false, NOW)?.until).toBe(NOW + 9_000);
  });

  it('an array header value uses its first value', () => {
    expect(classify(429, { 'retry-after': ['11', '99'] }, null, false, NOW)?.until).toBe(NOW + 11_000);
  });

  it('anthropic-ratelimit-requests-reset (RFC 3339 time)', () => {
    const reset = new Date(NOW + 42_000).toISOString();
    expect(classify(429, { 'anthropic-ratelimit-requests-reset': reset }, null, false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 42_000 });
  });

  it('anthropic-ratelimit-tokens-reset and -input-tokens-reset are provider reset headers too', () => {
    expect(classify(429, { 'anthropic-ratelimit-tokens-reset': new Date(NOW + 13_000).toISOString() }, null, false, NOW)?.until).toBe(NOW + 13_000);
    expect(classify(429, { 'anthropic-ratelimit-input-tokens-reset': '2026-01-01T00:00:21Z' }, null, false, NOW)?.until).toBe(NOW + 21_000);
  });

  it('x-ratelimit-reset-requests: 6m0s → 360 s', () => {
    expect(classify(429, { 'x-ratelimit-reset-requests': '6m0s' }, null, false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 360_000 });
  });

  it('x-ratelimit-reset-tokens: 20ms → 20 ms', () => {
    expect(classify(429, { 'x-ratelimit-reset-tokens': '20ms' }, null, false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 20 });
  });

  it('x-ratelimit-reset-requests on a quota 403', () => {
    expect(classify(403, { 'x-ratelimit-reset-requests': '1.5s' }, '{"error":{"code":"insufficient_quota"}}', false, NOW)).toEqual({
      reason: 'quota_exhausted',
      until: NOW + 1_500,
    });
  });

  it('the latest of several headers wins', () => {
    const headers = {
      'retry-after': '7',
      'anthropic-ratelimit-requests-reset': new Date(NOW + 30_000).toISOString(),
      'anthropic-ratelimit-tokens-reset': new Date(NOW + 12_000).toISOString(),
      'x-ratelimit-reset-requests': '2s',
    };
    expect(classify(429, headers, null, false, NOW)?.until).toBe(NOW + 30_000);
    expect(classify(429, { ...headers, 'x-ratelimit-reset-tokens': '1m' }, null, false, NOW)?.until).toBe(NOW + 60_000);
    expect(classify(429, { ...headers, 'retry-after': '90' }, null, false, NOW)?.until).toBe(NOW + 90_000);
  });

  it('unparseable or past reset headers fall back to the default cooldown', () => {
    expect(classify(429, { 'retry-after': 'soon' }, null, false, NOW)?.until).toBe(NOW + 60_000);
    expect(classify(429, { 'anthropic-ratelimit-requests-reset': 'garbage' }, null, false, NOW)?.until).toBe(NOW + 60_000);
    expect(classify(429, { 'anthropic-ratelimit-requests-reset': new Date(NOW - 5_000).toISOString() }, null, false, NOW)?.until).toBe(NOW + 60_000);
    expect(classify(401, { 'x-ratelimit-reset-requests': 'later' }, null, false, NOW)?.until).toBe(NOW + 300_000);
  });

  it('unrelated headers are ignored', () => {
    expect(
      classify(
        429,
        { 'x-ratelimit-limit-requests': '600', 'anthropic-ratelimit-requests-remaining': '0', date: new Date(NOW + 99_000).toUTCString() },
        null,
        false,
        NOW,
      )?.until,
    ).toBe(NOW + 60_000);
  });

  it('headerCooldownEnd: null without any usable header', () => {
    expect(headerCooldownEnd({}, NOW)).toBeNull();
    expect(headerCooldownEnd({ 'retry-after': undefined }, NOW)).toBeNull();
    expect(headerCooldownEnd({ 'retry-after': '5' }, NOW)).toBe(NOW + 5_000);
  });
});

describe('parseDuration', () => {
  it.each([
    ['6m0s', 360_000],
    ['20ms', 20],
    ['1.5s', 1_500],
    ['1h2m3s', 3_723_000],
    ['30', 30_000],
    ['0.25', 250],
    [' 7s ', 7_000],
  ])('%s → %i ms', (v, ms) => {
    expect(parseDuration(v)).toBe(ms);
  });

  it.each(['', 'soon', '6m0sx', '5 minutes', '-3s'])('%j → null', (v) => {
    expect(parseDuration(v)).toBeNull();
  });
});
