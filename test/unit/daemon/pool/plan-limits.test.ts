/**
 * Issue 24, plan limits only: classification of "moved to paid overage" answers from real-shaped Anthropic
 * bodies (as users reported them), and a `--plan-limits-only` pool treating such a member as exhausted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { classify, isPlanLimitBody, mayBePlanLimit, PLAN_LIMIT_COOLDOWN_MS } from '../../../../src/daemon/pool/failover-classifier.js';
import { oauthWorld, type OAuthWorld } from '../oauth/oauth-setup.js';

const NOW = Date.UTC(2026, 0, 1);

/** Bodies as Anthropic sends them (request ids shortened). */
const OUT_OF_EXTRA_USAGE_400 = JSON.stringify({
  type: 'error',
  error: { type: 'invalid_request_error', message: "You're out of extra usage. Add more at claude.ai/settings/usage and keep going." },
  request_id: 'req_011CZqnb9kHEjoyRX6EAR4mn',
});
const THIRD_PARTY_400 = JSON.stringify({
  type: 'error',
  error: { type: 'invalid_request_error', message: 'Third-party apps now draw from your extra usage, not your plan limits.' },
});
const LONG_CONTEXT_429 = JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'Extra usage is required for long context requests.' } });
const SPEND_LIMIT_429 = JSON.stringify({
  type: 'error',
  error: { type: 'rate_limit_error', message: 'This request would exceed your spend limit.', details: { error_code: 'enforced_spend_limit_reached' } },
});
const MONTHLY_SPEND_429 = JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: "You've hit your monthly spend limit." } });
/** Plain rate limit: NOT a plan limit. */
const RATE_LIMIT_429 = JSON.stringify({
  type: 'error',
  error: { type: 'rate_limit_error', message: "This request would exceed your account's rate limit. Please try again later." },
  request_id: 'req_011CbAGKeWkdYDYkZNm8FEyP',
});
/** A 400 that only quotes the words in a field the user controls is not about the account. */
const PROMPT_ECHO_400 = JSON.stringify({
  type: 'error',
  error: { type: 'invalid_request_error', message: 'messages.0.content: field required' },
  echo: 'extra usage',
});

describe('paid-overage classification', () => {
  it('matches the reported bodies: out of extra usage, third-party apps, long context, enforced_spend_limit_reached, monthly spend limit', () => {
    for (const b of [OUT_OF_EXTRA_USAGE_400, THIRD_PARTY_400, LONG_CONTEXT_429, SPEND_LIMIT_429, MONTHLY_SPEND_429]) expect(isPlanLimitBody(b)).toBe(true);
  });

  it('does not match a plain rate limit, unrelated 400s, text outside error.message, non-JSON or a cut-off body', () => {
    for (const b of [RATE_LIMIT_429, PROMPT_ECHO_400, 'extra usage', '', SPEND_LIMIT_429.slice(0, 60), 'null', '{"error":"extra usage"}'])
      expect(isPlanLimitBody(b)).toBe(false);
  });

  it('classify: plan_limit until the reset header, else the 5 h default; 400 and 429 only', () => {
    const reset = Math.floor(NOW / 1000) + 7200;
    expect(classify(400, { 'anthropic-ratelimit-unified-reset': String(reset) }, OUT_OF_EXTRA_USAGE_400, false, NOW)).toEqual({
      reason: 'plan_limit',
      until: reset * 1000,
    });
    expect(classify(429, {}, SPEND_LIMIT_429, false, NOW)).toEqual({ reason: 'plan_limit', until: NOW + PLAN_LIMIT_COOLDOWN_MS });
    expect(classify(429, { 'retry-after': '30' }, RATE_LIMIT_429, false, NOW)).toEqual({ reason: 'rate_limited', until: NOW + 30_000 });
    expect(classify(400, {}, PROMPT_ECHO_400, false, NOW)).toBeNull();
    expect(classify(403, {}, OUT_OF_EXTRA_USAGE_400, false, NOW)).toBeNull();
  });

  it('a 429 whose unified representative claim is an overage window is a plan limit even without a body', () => {
    expect(classify(429, { 'anthropic-ratelimit-unified-representative-claim': 'seven_day_overage_included' }, null, false, NOW)?.reason).toBe('plan_limit');
    expect(classify(429, { 'anthropic-ratelimit-unified-representative-claim': 'five_hour' }, null, false, NOW)?.reason).toBe('rate_limited');
  });

  it('only a JSON 429/400 is peeked (a streamed 429 stays classified at header time)', () => {
    expect(mayBePlanLimit(400, { 'content-type': 'application/json' })).toBe(true);
    expect(mayBePlanLimit(429, { 'content-type': 'application/json; charset=utf-8' })).toBe(true);
    expect(mayBePlanLimit(429, { 'content-type': 'text/event-stream' })).toBe(false);
    expect(mayBePlanLimit(200, { 'content-type': 'application/json' })).toBe(false);
    expect(mayBePlanLimit(400, {})).toBe(false);
  });
});

describe('a --plan-limits-only pool', () => {
  let w: OAuthWorld;
  afterEach(() => w?.close());

  function world(planLimitsOnly: boolean) {
    w = oauthWorld();
    for (const m of ['a', 'b'])
      w.vault.add({ name: m, kind: 'api-key', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: `sk-ant-api03-REAL${m}xxxxxxxxxxxxxxxxxxxxxxxx` });
    w.pools.create('p', ['a', 'b'], { rotate_below: null, plan_limits_only: planLimitsOnly });
  }

  it('moves on at a plan limit and never falls back to that member; when every member is out it refuses (429, retry-after)', () => {
    world(true);
    const now = w.clock.now();
    expect(w.pools.failover('p', 'a', 'plan_limit', now + 60_000)).toEqual({ from: 'a', to: 'b' });
    expect(w.pools.activeMember(w.pools.get('p'))).toBe('b');
    // b is rate-limited for an hour: the usual fallback would pick a (it recovers first); a is out of plan
    // allowance, so the pool stays on b (waiting out a rate limit costs nothing).
    w.pools.failover('p', 'b', 'rate_limited', now + 3_600_000);
    expect(w.pools.activeMember(w.pools.get('p'))).toBe('b');
    expect(w.pools.memberRefusal('b', 'p')).toBeNull();
    expect(w.pools.memberRefusal('a', 'p')).toMatchObject({ code: 'plan_limits_exhausted', retryAfterS: 60 });
    // Both out of plan allowance: refused, never sent.
    w.pools.failover('p', 'b', 'plan_limit', now + 7_200_000);
    const m = w.pools.activeMember(w.pools.get('p'));
    expect(w.pools.memberRefusal(m, 'p')).toMatchObject({ status: 429, code: 'plan_limits_exhausted' });
    // retry-after: when the first member comes back (a, in 60 s), not when the chosen one does.
    expect(w.pools.memberRefusal(m, 'p')!.retryAfterS).toBe(60);
  });

  it('without the option, a plan-limited member cools the same way but stays the last resort (never fail hard)', () => {
    world(false);
    const now = w.clock.now();
    w.pools.failover('p', 'a', 'plan_limit', now + 60_000);
    w.pools.failover('p', 'b', 'rate_limited', now + 3_600_000);
    expect(w.pools.activeMember(w.pools.get('p'))).toBe('a'); // recovers first, plan limit or not
    expect(w.pools.memberRefusal('a', 'p')).toBeNull();
  });
});
