/**
 * Rotation before the wall (`--rotate-below PCT`, issue 24): reading a member's rate-limit headroom, as the
 * usage ledger last saw it in the member's own response headers, and choosing where to go when it runs low.
 * Pure: the caller passes the time. A window whose reset time has passed counts as full again (its numbers
 * are stale), and a member whose headroom is unknown counts as full.
 */
import type { Headroom } from '../../shared/protocol/usage.js';
import { RATE_LIMIT_COOLDOWN_MS } from './failover-classifier.js';

/** One window of a member's headroom: the fraction left (0..1) and when it resets (epoch ms), if known. */
export interface WindowLeft {
  name: string;
  fraction: number;
  resetAt: number | null;
}

/** Every window of `h` still in force at `now`, with the fraction left in it. */
export function windowsLeft(h: Headroom, now: number): WindowLeft[] {
  const out: WindowLeft[] = [];
  const add = (name: string, fraction: number, reset: string | null) => {
    const resetAt = reset === null ? null : Date.parse(reset);
    if (resetAt !== null && Number.isFinite(resetAt) && resetAt <= now) return;
    out.push({ name, fraction: Math.min(1, Math.max(0, fraction)), resetAt: resetAt !== null && Number.isFinite(resetAt) ? resetAt : null });
  };
  for (const name of ['requests', 'tokens', 'input_tokens', 'output_tokens'] as const) {
    const w = h[name];
    if (w && w.limit > 0) add(name, w.remaining / w.limit, w.reset_at);
  }
  for (const w of h.unified?.windows ?? []) add(`unified-${w.name}`, 1 - w.utilization, w.reset_at);
  return out;
}

/** The smallest fraction left over `h`'s windows in force at `now` (1 when none: unknown counts as full). */
export function fractionLeft(h: Headroom | null, now: number): number {
  if (!h) return 1;
  const ws = windowsLeft(h, now);
  if (ws.length === 0) return h.fraction_left === null || hasWindows(h) ? 1 : h.fraction_left;
  return Math.min(...ws.map((w) => w.fraction));
}

function hasWindows(h: Headroom): boolean {
  return h.requests !== null || h.tokens !== null || h.input_tokens !== null || h.output_tokens !== null || (h.unified?.windows.length ?? 0) > 0;
}

/** True when `h` is below `pct` % at `now`. */
export function isLow(h: Headroom | null, pct: number, now: number): boolean {
  return h !== null && fractionLeft(h, now) < pct / 100;
}

/**
 * When a member that fell below `pct` % may serve again: the latest reset among its low windows (so every
 * low window has refilled), else {@link RATE_LIMIT_COOLDOWN_MS} from now when none says. MemberHealth clamps it.
 */
export function lowUntil(h: Headroom, pct: number, now: number): number {
  let until: number | null = null;
  for (const w of windowsLeft(h, now)) {
    if (w.fraction < pct / 100 && w.resetAt !== null && (until === null || w.resetAt > until)) until = w.resetAt;
  }
  return until ?? now + RATE_LIMIT_COOLDOWN_MS;
}

/**
 * The member to move to from `from`: among those `available`, the one with the most headroom left; ties go to
 * the first after `from` in pool order (wrapping), as a failover would. Null when no other member is available.
 */
export function healthiest(members: readonly string[], from: string, available: (m: string) => boolean, left: (m: string) => number): string | null {
  const start = Math.max(0, members.indexOf(from));
  let best: string | null = null;
  let bestLeft = -1;
  for (let i = 1; i <= members.length; i++) {
    const m = members[(start + i) % members.length]!;
    if (m === from || !available(m)) continue;
    const l = left(m);
    if (l > bestLeft) {
      best = m;
      bestLeft = l;
    }
  }
  return best;
}
