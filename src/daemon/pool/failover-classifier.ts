/**
 * Decides, at response-header time, whether a pool member's response means "stop using this member for a
 * while", and for how long. 429, or 403 whose body names a quota/rate error → rate-limited (60 s);
 * 401, or `invalid_grant`/`invalid_token` from a token endpoint → auth failure (300 s). For rate-limit and
 * quota reasons a `retry-after` or provider reset header sets the end instead when present (the latest one
 * wins); an auth cooldown always lasts its 300 s, whatever reset headers the response carries (they describe
 * rate limits, not the credential). Numeric header values of 1e9 and more are epoch times (seconds, or
 * milliseconds from 1e12), never durations. 5xx never cools. {@link MemberHealth} clamps every cooldown.
 *
 * Paid overage ("plan limits", issue 24): an Anthropic 429 or 400 that says the account has left its plan
 * allowance for paid extra usage (or ran out of that too) → `plan_limit`, cooled until the reset the
 * headers name, else {@link PLAN_LIMIT_COOLDOWN_MS}. The patterns, from bodies users reported
 * (anthropics/claude-code#45052, router-for-me/CLIProxyAPI#6004 and #5915), matched only in an Anthropic
 * error body (`{"type":"error","error":{…}}`):
 * - `error.details.error_code == "enforced_spend_limit_reached"` (the spend cap on extra usage is reached);
 * - `error.message` mentioning extra usage: "You're out of extra usage. Add more at claude.ai/settings/usage
 *   and keep going." (400), "Third-party apps now draw from your extra usage, not your plan limits." (400),
 *   "Extra usage is required for long context requests." (429);
 * - `error.message` mentioning the monthly spend limit: "You've hit your monthly spend limit" (429);
 * - a 429 whose `anthropic-ratelimit-unified-representative-claim` names an overage window
 *   (`seven_day_overage_included`: the plan window is fine, only overage was refused).
 * A body that is not such JSON (or is cut off by the bounded peek) is never a plan limit.
 */

/** Why a member cools. */
export type FailoverReason = 'rate_limited' | 'quota_exhausted' | 'auth_failed' | 'plan_limit';

/** A classification: how long to cool and why. */
export interface Failover {
  reason: FailoverReason;
  /** Absolute end of the cooldown, epoch ms. */
  until: number;
}

/** Default cooldowns. */
export const RATE_LIMIT_COOLDOWN_MS = 60_000;
export const AUTH_COOLDOWN_MS = 300_000;
/**
 * Cooldown of a member that moved to paid overage when no header says when its plan allowance comes back:
 * 5 h, the length of Anthropic's shortest subscription window (the weekly one is clamped anyway by
 * SLUICE_MAX_COOLDOWN_S). `pool reset` clears it early.
 */
export const PLAN_LIMIT_COOLDOWN_MS = 5 * 3_600_000;

const QUOTA_RE = /insufficient_quota|quota_exceeded|rate_limit_exceeded/;
const TOKEN_RE = /invalid_grant|invalid_token/;

/** True when a response with `status` needs its body read before it can be classified. */
export function needsBody(status: number, isTokenEndpoint: boolean): boolean {
  return status === 403 || (isTokenEndpoint && status >= 400 && status < 500 && status !== 429 && status !== 401);
}

/**
 * True when a pooled response with `status` from an Anthropic host may be a paid-overage answer whose body
 * must be looked at: a 429 or 400 with a JSON body. (A streamed 429 is not JSON and stays classified from its
 * status line alone, at header time.)
 */
export function mayBePlanLimit(status: number, headers: Record<string, string | string[] | undefined>): boolean {
  if (status !== 429 && status !== 400) return false;
  const ct = headers['content-type'];
  return /\bjson\b/i.test(Array.isArray(ct) ? (ct[0] ?? '') : (ct ?? ''));
}

const PLAN_MESSAGE_RE = /\bextra usage\b|\bmonthly spend limit\b/i;

/** True when an Anthropic error body (see the module comment) says the account moved to, or ran out of, paid overage. */
export function isPlanLimitBody(body: string): boolean {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return false;
  }
  const error = (parsed as { error?: unknown } | null)?.error;
  if (typeof error !== 'object' || error === null) return false;
  const e = error as { message?: unknown; details?: unknown };
  const details = e.details as { error_code?: unknown } | null | undefined;
  if (typeof details === 'object' && details !== null && details.error_code === 'enforced_spend_limit_reached') return true;
  return typeof e.message === 'string' && PLAN_MESSAGE_RE.test(e.message);
}

/** True when a 429's unified rate-limit headers say only the overage window refused it. */
function overageClaim(headers: Record<string, string | string[] | undefined>): boolean {
  const v = headers['anthropic-ratelimit-unified-representative-claim'];
  return /overage/i.test(Array.isArray(v) ? (v[0] ?? '') : (v ?? ''));
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
  if ((status === 429 || status === 400) && ((body !== null && isPlanLimitBody(body)) || (status === 429 && overageClaim(headers)))) {
    return { reason: 'plan_limit', until: headerCooldownEnd(headers, now) ?? now + PLAN_LIMIT_COOLDOWN_MS };
  }
  if (status === 429) reason = 'rate_limited';
  else if (status === 403 && body !== null && QUOTA_RE.test(body)) reason = 'quota_exhausted';
  else if (status === 401) reason = 'auth_failed';
  else if (isTokenEndpoint && status >= 400 && status < 500 && body !== null && TOKEN_RE.test(body)) reason = 'auth_failed';
  if (!reason) return null;
  if (reason === 'auth_failed') return { reason, until: now + AUTH_COOLDOWN_MS };
  return { reason, until: headerCooldownEnd(headers, now) ?? now + RATE_LIMIT_COOLDOWN_MS };
}
