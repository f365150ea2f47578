/**
 * Decides, at response-header time, whether a pool member's response means "stop using this member for a
 * while", and for how long. 429, or 403 whose body names a quota/rate error → rate-limited (60 s);
 * 401, or `invalid_grant`/`invalid_token` from a token endpoint → auth failure (300 s). For rate-limit and
 * quota reasons a `retry-after` or provider reset header sets the end instead when present (the latest one
 * wins); an auth cooldown always lasts its 300 s, whatever reset headers the response carries (they describe
 * rate limits, not the credential). Numeric header values of 1e9 and more are epoch times (seconds, or
 * milliseconds from 1e12), never durations. 5xx never cools. {@link MemberHealth} clamps every cooldown.
 */

/** Why a member cools. */
export type FailoverReason = 'rate_limited' | 'quota_exhausted' | 'auth_failed';

/** A classification: how long to cool and why. */
export interface Failover {
  reason: FailoverReason;
  /** Absolute end of the cooldown, epoch ms. */
  until: number;
}

/** Default cooldowns. */
export const RATE_LIMIT_COOLDOWN_MS = 60_000;
export const AUTH_COOLDOWN_MS = 300_000;

const QUOTA_RE = /insufficient_quota|quota_exceeded|rate_limit_exceeded/;
const TOKEN_RE = /invalid_grant|invalid_token/;

/** True when a response with `status` needs its body read before it can be classified. */
export function needsBody(status: number, isTokenEndpoint: boolean): boolean {
  return status === 403 || (isTokenEndpoint && status >= 400 && status < 500 && status !== 429 && status !== 401);
}

/** Parses a duration such as OpenAI's `6m0s`, `1.5s`, `20ms`, or plain seconds; returns ms or null. */
export function parseDuration(v: string): number | null {
  const s = v.trim();
  if (/^\d+(\.\d+)?$/.test(s)) return Number(s) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/g;
  let total = 0;
  let matched = '';
  for (const m of s.matchAll(re)) {
    const n = Number(m[1]);
    total += m[2] === 'ms' ? n : m[2] === 's' ? n * 1000 : m[2] === 'm' ? n * 60_000 : n * 3_600_000;
    matched += m[0];
  }
  return matched.length > 0 && matched.length === s.length ? total : null;
}

/** Numbers at or above this are epoch seconds (a relative wait of 31 years is not one anyone sends). */
const EPOCH_S_FROM = 1e9;
/** Numbers at or above this are epoch milliseconds. */
const EPOCH_MS_FROM = 1e12;

/** A bare number from a reset header as an absolute time: epoch ms or s when that large, else seconds from now. */
function numericEnd(n: number, now: number): number {
  if (n >= EPOCH_MS_FROM) return n;
  if (n >= EPOCH_S_FROM) return n * 1000;
  return now + n * 1000;
}

/** The latest cooldown end the response's headers ask for, or null when none is given. */
export function headerCooldownEnd(headers: Record<string, string | string[] | undefined>, now: number): number | null {
  let end: number | null = null;
  const consider = (t: number | null) => {
    if (t !== null && Number.isFinite(t) && t > now && (end === null || t > end)) end = t;
  };
  for (const [name, raw] of Object.entries(headers)) {
    const v = Array.isArray(raw) ? raw[0] : raw;
    if (v === undefined) continue;
    const n = name.toLowerCase();
    const trimmed = v.trim();
    const bare = /^\d+(\.\d+)?$/.test(trimmed) ? Number(trimmed) : null;
    if (n === 'retry-after') {
      consider(bare !== null ? numericEnd(bare, now) : Date.parse(v));
    } else if (/^anthropic-ratelimit-.*-reset$/.test(n)) {
      consider(bare !== null ? numericEnd(bare, now) : Date.parse(v));
    } else if (n.startsWith('x-ratelimit-reset')) {
      if (bare !== null) consider(numericEnd(bare, now));
      else {
        const d = parseDuration(v);
        consider(d === null ? Date.parse(v) : now + d);
      }
    }
  }
  return end;
}

/** Classifies a response; null means the member stays healthy. */
export function classify(
  status: number,
  headers: Record<string, string | string[] | undefined>,
  body: string | null,
  isTokenEndpoint: boolean,
  now: number,
): Failover | null {
  let reason: FailoverReason | null = null;
  if (status === 429) reason = 'rate_limited';
  else if (status === 403 && body !== null && QUOTA_RE.test(body)) reason = 'quota_exhausted';
  else if (status === 401) reason = 'auth_failed';
  else if (isTokenEndpoint && status >= 400 && status < 500 && body !== null && TOKEN_RE.test(body)) reason = 'auth_failed';
  if (!reason) return null;
  if (reason === 'auth_failed') return { reason, until: now + AUTH_COOLDOWN_MS };
  return { reason, until: headerCooldownEnd(headers, now) ?? now + RATE_LIMIT_COOLDOWN_MS };
}
