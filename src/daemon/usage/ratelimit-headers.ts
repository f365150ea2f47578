/**
 * Rate-limit headroom from response headers (pure; the caller passes the time the response arrived):
 * - Anthropic: `anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,remaining,reset}`,
 *   reset an RFC 3339 time;
 * - Anthropic subscriptions: `anthropic-ratelimit-unified-status` and, for any window name,
 *   `anthropic-ratelimit-unified-<window>-utilization` (0..1) with `-<window>-reset` (epoch seconds);
 * - OpenAI: `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`, reset a duration (`6m0s`, `1s`, `20ms`).
 */
import type http from 'node:http';
import type { Headroom, HeadroomWindow } from '../../shared/protocol/usage.js';

/** The standard windows a {@link Headroom} has. */
export type WindowName = 'requests' | 'tokens' | 'input_tokens' | 'output_tokens';

/** One window with its reset as epoch ms (null when the provider gave none or it did not parse). */
export interface ParsedWindow {
  limit: number;
  remaining: number;
  resetAt: number | null;
}

/** What one response's headers said. */
export interface RateLimitState {
  windows: Partial<Record<WindowName, ParsedWindow>>;
  unified: { status: string | null; windows: { name: string; utilization: number; resetAt: number | null }[] } | null;
  /** When the response arrived (epoch ms). */
  at: number;
}

const ANTHROPIC: [string, WindowName][] = [
  ['requests', 'requests'],
  ['tokens', 'tokens'],
  ['input-tokens', 'input_tokens'],
  ['output-tokens', 'output_tokens'],
];
const OPENAI: [string, WindowName][] = [
  ['requests', 'requests'],
  ['tokens', 'tokens'],
];
const UNIFIED_PREFIX = 'anthropic-ratelimit-unified-';
const UNIFIED_UTIL = /^anthropic-ratelimit-unified-([a-z0-9_-]{1,32})-utilization$/;
/** At most this many unified windows are kept (an upstream chooses the header names). */
const MAX_UNIFIED_WINDOWS = 8;

function text(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function nonNegative(v: string | undefined): number | null {
  if (v === undefined || v.trim() === '') return null;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : null;
}

/** An RFC 3339 time as epoch ms, or null. */
function rfc3339(v: string | undefined): number | null {
  if (!v) return null;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : null;
}

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|h|m|s)/y;

/** An OpenAI reset duration (`6m0s`, `1s`, `20ms`, `1h2m3.5s`; a bare number is seconds) in ms, or null. */
export function parseDuration(v: string | undefined): number | null {
  if (v === undefined) return null;
  const s = v.trim();
  if (s === '') return null;
  if (/^\d+(?:\.\d+)?$/.test(s)) return Number(s) * 1000;
  let ms = 0;
  DURATION_PART.lastIndex = 0;
  let pos = 0;
  while (pos < s.length) {
    DURATION_PART.lastIndex = pos;
    const m = DURATION_PART.exec(s);
    if (!m) return null;
    const n = Number(m[1]);
    ms += m[2] === 'h' ? n * 3_600_000 : m[2] === 'm' ? n * 60_000 : m[2] === 's' ? n * 1000 : n;
    pos = DURATION_PART.lastIndex;
  }
  return ms;
}

/**
 * The rate-limit state `headers` report, or null when they carry none. `now` is when the response arrived
 * (OpenAI resets are relative to it). A window needs both its limit and its remaining count.
 */
export function parseRateLimitHeaders(headers: http.IncomingHttpHeaders, now: number): RateLimitState | null {
  // One pass over the names first: most answers carry none of these headers, and then nothing else is done.
  if (!hasRateLimitHeader(headers)) return null;
  const windows: Partial<Record<WindowName, ParsedWindow>> = {};
  let any = false;
  for (const [h, w] of ANTHROPIC) {
    const limit = nonNegative(text(headers[`anthropic-ratelimit-${h}-limit`]));
    const remaining = nonNegative(text(headers[`anthropic-ratelimit-${h}-remaining`]));
    if (limit === null || remaining === null) continue;
    windows[w] = { limit, remaining, resetAt: rfc3339(text(headers[`anthropic-ratelimit-${h}-reset`])) };
    any = true;
  }
  for (const [h, w] of OPENAI) {
    const limit = nonNegative(text(headers[`x-ratelimit-limit-${h}`]));
    const remaining = nonNegative(text(headers[`x-ratelimit-remaining-${h}`]));
    if (limit === null || remaining === null) continue;
    const d = parseDuration(text(headers[`x-ratelimit-reset-${h}`]));
    windows[w] = { limit, remaining, resetAt: d === null ? null : now + d };
    any = true;
  }
  let unified: RateLimitState['unified'] = null;
  for (const name in headers) {
    if (!name.startsWith(UNIFIED_PREFIX)) continue;
    unified ??= { status: null, windows: [] };
    if (name === 'anthropic-ratelimit-unified-status') {
      unified.status = (text(headers[name]) ?? '').slice(0, 64) || null;
      continue;
    }
    const m = UNIFIED_UTIL.exec(name);
    if (!m || unified.windows.length >= MAX_UNIFIED_WINDOWS) continue;
    const utilization = nonNegative(text(headers[name]));
    if (utilization === null) continue;
    const resetS = nonNegative(text(headers[`${UNIFIED_PREFIX}${m[1]}-reset`]));
    unified.windows.push({ name: m[1]!, utilization, resetAt: resetS === null ? null : resetS * 1000 });
  }
  if (unified && (unified.status !== null || unified.windows.length > 0)) any = true;
  else unified = null;
  return any ? { windows, unified, at: now } : null;
}

/**
 * Answers of parallel requests arrive in any order, so the latest answer is not always the latest count: two
 * states this close together (ms) describe the same moment, and the lower remaining (higher utilisation)
 * of each window is the true one.
 */
export const SAME_MOMENT_MS = 1000;

/**
 * What the provider's limits are after `next` arrived, given the state before it. A window `next` does not
 * mention keeps its last value (until it resets); one it mentions is `next`'s, except within
 * {@link SAME_MOMENT_MS} of `prev` with the same limit, where the lower remaining wins (racing answers).
 */
export function mergeRateLimit(prev: RateLimitState | undefined, next: RateLimitState): RateLimitState {
  if (!prev) return next;
  const racing = next.at - prev.at < SAME_MOMENT_MS;
  const windows: RateLimitState['windows'] = { ...prev.windows };
  for (const name of Object.keys(next.windows) as WindowName[]) {
    const n = next.windows[name]!;
    const p = prev.windows[name];
    windows[name] = racing && p && p.limit === n.limit && p.remaining < n.remaining ? { ...n, remaining: p.remaining, resetAt: p.resetAt } : n;
  }
  let unified = next.unified ?? prev.unified;
  if (next.unified && prev.unified) {
    const byName = new Map(prev.unified.windows.map((w) => [w.name, w]));
    for (const w of next.unified.windows) {
      const p = byName.get(w.name);
      byName.set(w.name, racing && p && p.utilization > w.utilization ? p : w);
    }
    unified = { status: next.unified.status ?? prev.unified.status, windows: [...byName.values()].slice(0, MAX_UNIFIED_WINDOWS) };
  }
  return { windows, unified, at: next.at };
}

/** The earliest reset still ahead of `now` among the windows of `s` (epoch ms), or null. */
export function nextResetAt(s: RateLimitState, now: number): number | null {
  let next: number | null = null;
  for (const r of [...Object.values(s.windows).map((w) => w.resetAt), ...(s.unified?.windows.map((w) => w.resetAt) ?? [])])
    if (r !== null && r > now && (next === null || r < next)) next = r;
  return next;
}

/** True when some header name is an Anthropic or OpenAI rate-limit header. */
function hasRateLimitHeader(headers: http.IncomingHttpHeaders): boolean {
  for (const name in headers) {
    const c = name.charCodeAt(0);
    if ((c === 0x61 && name.startsWith('anthropic-ratelimit-')) || (c === 0x78 && name.startsWith('x-ratelimit-'))) return true;
  }
  return false;
}

/** True when every window of `s` has a reset and all of them have passed at `now` (the state says nothing any more). */
export function expired(s: RateLimitState, now: number): boolean {
  const end = expiresAt(s);
  return end !== null && end <= now;
}

/** When every window of `s` has reset (epoch ms), or null when one has no reset time (it never expires). */
export function expiresAt(s: RateLimitState): number | null {
  const resets: (number | null)[] = [...Object.values(s.windows).map((w) => w.resetAt), ...(s.unified?.windows.map((w) => w.resetAt) ?? [])];
  let end: number | null = null;
  for (const r of resets) {
    if (r === null) return null;
    end = Math.max(end ?? r, r);
  }
  return end;
}

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function windowOf(w: ParsedWindow | undefined): HeadroomWindow | null {
  return w ? { limit: w.limit, remaining: w.remaining, reset_at: iso(w.resetAt) } : null;
}

/** `s` without the windows that have reset by `now` (their numbers are stale: the provider refilled them). */
function current(s: RateLimitState, now: number): RateLimitState {
  const live = (r: number | null): boolean => r === null || r > now;
  const windows: RateLimitState['windows'] = {};
  for (const name of Object.keys(s.windows) as WindowName[]) if (live(s.windows[name]!.resetAt)) windows[name] = s.windows[name];
  const unified = s.unified ? { status: s.unified.status, windows: s.unified.windows.filter((w) => live(w.resetAt)) } : null;
  return { windows, unified, at: s.at };
}

/** The smallest fraction left over all windows of `s` (remaining/limit, 1 − utilisation), 0..1; null when none. */
export function fractionLeft(s: RateLimitState): number | null {
  let min: number | null = null;
  const see = (f: number): void => {
    const c = Math.min(1, Math.max(0, f));
    min = min === null ? c : Math.min(min, c);
  };
  for (const w of Object.values(s.windows)) if (w.limit > 0) see(w.remaining / w.limit);
  for (const w of s.unified?.windows ?? []) see(1 - w.utilization);
  return min;
}

/** `s` as clients see it at `now`: windows that have reset since are left out. */
export function toHeadroom(state: RateLimitState, now: number): Headroom {
  const s = current(state, now);
  return {
    requests: windowOf(s.windows.requests),
    tokens: windowOf(s.windows.tokens),
    input_tokens: windowOf(s.windows.input_tokens),
    output_tokens: windowOf(s.windows.output_tokens),
    unified: s.unified
      ? { status: s.unified.status, windows: s.unified.windows.map((w) => ({ name: w.name, utilization: w.utilization, reset_at: iso(w.resetAt) })) }
      : null,
    fraction_left: fractionLeft(s),
    updated_at: new Date(s.at).toISOString(),
  };
}
