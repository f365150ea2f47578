/** Rate-limit headroom from the three header families, OpenAI durations, fraction left and expiry. */
import { describe, expect, it } from 'vitest';
import {
  expired,
  fractionLeft,
  parseDuration,
  parseRateLimitHeaders,
  toHeadroom,
  mergeRateLimit,
  nextResetAt,
} from '../../../../src/daemon/usage/ratelimit-headers.js';

const NOW = Date.UTC(2026, 0, 1, 12, 0, 0);

describe('rate-limit headers', () => {
  it('Anthropic request, token, input and output windows with RFC 3339 resets', () => {
    const s = parseRateLimitHeaders(
      {
        'anthropic-ratelimit-requests-limit': '50',
        'anthropic-ratelimit-requests-remaining': '37',
        'anthropic-ratelimit-requests-reset': '2026-01-01T12:00:30Z',
        'anthropic-ratelimit-tokens-limit': '100000',
        'anthropic-ratelimit-tokens-remaining': '61000',
        'anthropic-ratelimit-tokens-reset': '2026-01-01T12:01:00Z',
        'anthropic-ratelimit-input-tokens-limit': '80000',
        'anthropic-ratelimit-input-tokens-remaining': '60000',
        'anthropic-ratelimit-input-tokens-reset': '2026-01-01T12:01:00Z',
        'anthropic-ratelimit-output-tokens-limit': '20000',
        'anthropic-ratelimit-output-tokens-remaining': '1000',
        'anthropic-ratelimit-output-tokens-reset': '2026-01-01T12:00:10+00:00',
      },
      NOW,
    )!;
    const h = toHeadroom(s, NOW);
    expect(h.requests).toEqual({ limit: 50, remaining: 37, reset_at: '2026-01-01T12:00:30.000Z' });
    expect(h.tokens).toEqual({ limit: 100000, remaining: 61000, reset_at: '2026-01-01T12:01:00.000Z' });
    expect(h.input_tokens?.remaining).toBe(60000);
    expect(h.output_tokens).toEqual({ limit: 20000, remaining: 1000, reset_at: '2026-01-01T12:00:10.000Z' });
    expect(h.unified).toBeNull();
    // min(37/50, 0.61, 0.75, 0.05)
    expect(h.fraction_left).toBeCloseTo(0.05);
    expect(h.updated_at).toBe('2026-01-01T12:00:00.000Z');
  });

  it('Anthropic unified (subscription) windows, any window name, epoch-second resets', () => {
    const s = parseRateLimitHeaders(
      {
        'anthropic-ratelimit-unified-status': 'allowed_warning',
        'anthropic-ratelimit-unified-5h-utilization': '0.42',
        'anthropic-ratelimit-unified-5h-reset': String(NOW / 1000 + 3600),
        'anthropic-ratelimit-unified-7d-utilization': '0.9',
        'anthropic-ratelimit-unified-7d-reset': String(NOW / 1000 + 86400),
        'anthropic-ratelimit-unified-7d_opus-utilization': '0.1',
        'anthropic-ratelimit-unified-representative-claim': 'five_hour',
      },
      NOW,
    )!;
    const h = toHeadroom(s, NOW);
    expect(h.unified?.status).toBe('allowed_warning');
    expect(h.unified?.windows).toEqual([
      { name: '5h', utilization: 0.42, reset_at: '2026-01-01T13:00:00.000Z' },
      { name: '7d', utilization: 0.9, reset_at: '2026-01-02T12:00:00.000Z' },
      { name: '7d_opus', utilization: 0.1, reset_at: null },
    ]);
    expect(h.fraction_left).toBeCloseTo(0.1);
    expect(h.requests).toBeNull();
  });

  it('OpenAI windows with duration resets relative to the response time', () => {
    const s = parseRateLimitHeaders(
      {
        'x-ratelimit-limit-requests': '500',
        'x-ratelimit-remaining-requests': '499',
        'x-ratelimit-reset-requests': '120ms',
        'x-ratelimit-limit-tokens': '30000',
        'x-ratelimit-remaining-tokens': '3000',
        'x-ratelimit-reset-tokens': '6m0s',
      },
      NOW,
    )!;
    const h = toHeadroom(s, NOW);
    expect(h.requests).toEqual({ limit: 500, remaining: 499, reset_at: new Date(NOW + 120).toISOString() });
    expect(h.tokens).toEqual({ limit: 30000, remaining: 3000, reset_at: new Date(NOW + 360_000).toISOString() });
    expect(h.fraction_left).toBeCloseTo(0.1);
  });

  it('parses OpenAI durations', () => {
    expect(parseDuration('6m0s')).toBe(360_000);
    expect(parseDuration('1s')).toBe(1000);
    expect(parseDuration('20ms')).toBe(20);
    expect(parseDuration('1h2m3.5s')).toBe(3_723_500);
    expect(parseDuration('17')).toBe(17_000);
    expect(parseDuration('0.5s')).toBe(500);
    expect(parseDuration('soon')).toBeNull();
    expect(parseDuration('5x')).toBeNull();
    expect(parseDuration('')).toBeNull();
  });

  it('no rate-limit headers, or only half a window, say nothing', () => {
    expect(parseRateLimitHeaders({ 'content-type': 'application/json' }, NOW)).toBeNull();
    expect(parseRateLimitHeaders({ 'x-ratelimit-limit-requests': '5' }, NOW)).toBeNull();
    expect(parseRateLimitHeaders({ 'anthropic-ratelimit-requests-limit': 'abc', 'anthropic-ratelimit-requests-remaining': '1' }, NOW)).toBeNull();
  });

  it('a window with a zero limit does not count toward the fraction; utilisation over 1 clamps to 0 left', () => {
    const s = parseRateLimitHeaders(
      { 'x-ratelimit-limit-requests': '0', 'x-ratelimit-remaining-requests': '0', 'anthropic-ratelimit-unified-5h-utilization': '1.3' },
      NOW,
    )!;
    expect(fractionLeft(s)).toBe(0);
    const only = parseRateLimitHeaders({ 'x-ratelimit-limit-requests': '0', 'x-ratelimit-remaining-requests': '0' }, NOW)!;
    expect(fractionLeft(only)).toBeNull();
  });

  it('expires only once every window has reset', () => {
    const s = parseRateLimitHeaders(
      {
        'x-ratelimit-limit-requests': '10',
        'x-ratelimit-remaining-requests': '1',
        'x-ratelimit-reset-requests': '1s',
        'x-ratelimit-limit-tokens': '10',
        'x-ratelimit-remaining-tokens': '1',
        'x-ratelimit-reset-tokens': '1m0s',
      },
      NOW,
    )!;
    expect(expired(s, NOW + 2000)).toBe(false);
    expect(expired(s, NOW + 60_000)).toBe(true);
    const noReset = parseRateLimitHeaders({ 'x-ratelimit-limit-requests': '10', 'x-ratelimit-remaining-requests': '1' }, NOW)!;
    expect(expired(noReset, NOW + 10 * 86_400_000)).toBe(false);
  });
});

describe('headroom over several answers', () => {
  const anth = (remaining: number, reset = '2026-01-01T12:00:30Z') => ({
    'anthropic-ratelimit-requests-limit': '50',
    'anthropic-ratelimit-requests-remaining': String(remaining),
    'anthropic-ratelimit-requests-reset': reset,
  });

  it('answers of parallel requests that arrive out of order: the lower remaining wins within a second', () => {
    const a = parseRateLimitHeaders(anth(9), NOW)!;
    const b = parseRateLimitHeaders(anth(10), NOW + 40)!; // sent earlier, answered later
    expect(toHeadroom(mergeRateLimit(a, b), NOW + 40).requests?.remaining).toBe(9);
  });

  it('a later answer (over a second on) is taken as it is, also when it says more is left (the window refilled)', () => {
    const a = parseRateLimitHeaders(anth(9), NOW)!;
    const b = parseRateLimitHeaders(anth(40, '2026-01-01T12:01:30Z'), NOW + 5000)!;
    expect(toHeadroom(mergeRateLimit(a, b), NOW + 5000).requests?.remaining).toBe(40);
  });

  it('a window an answer does not mention keeps its last value; a window that reset is left out on its own', () => {
    const a = parseRateLimitHeaders(
      {
        ...anth(1, '2026-01-01T12:00:30Z'),
        'anthropic-ratelimit-unified-5h-utilization': '0.25',
        'anthropic-ratelimit-unified-5h-reset': String(NOW / 1000 + 5 * 3600),
      },
      NOW,
    )!;
    const b = parseRateLimitHeaders(
      { 'anthropic-ratelimit-unified-5h-utilization': '0.3', 'anthropic-ratelimit-unified-5h-reset': String(NOW / 1000 + 5 * 3600) },
      NOW + 2000,
    )!;
    const m = mergeRateLimit(a, b);
    expect(toHeadroom(m, NOW + 2000).requests?.remaining).toBe(1);
    expect(toHeadroom(m, NOW + 2000).fraction_left).toBeCloseTo(1 / 50);
    // 30 s on, the requests window has refilled: it no longer shows, while the 5 h window still does.
    const later = toHeadroom(m, NOW + 31_000);
    expect(later.requests).toBeNull();
    expect(later.unified?.windows.map((w) => w.name)).toEqual(['5h']);
    expect(later.fraction_left).toBeCloseTo(0.7);
    expect(nextResetAt(m, NOW + 2000)).toBe(Date.parse('2026-01-01T12:00:30Z'));
  });
});
