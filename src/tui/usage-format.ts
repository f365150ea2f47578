/**
 * Usage, rate-limit headroom and daily budgets in the dashboard's short forms (issue 24): `1.2k tok/m`,
 * `req 37/50 · tok 61%` (or `5h 61%` for Anthropic subscription windows), `day 12.3k/50k tok`. Pure and
 * colour-free: each part carries a tone, and the components map tones to the palette, so every part is
 * still readable with NO_COLOR. The daemon computes the rates and fractions; nothing is recomputed here
 * beyond turning remaining/limit into a percentage.
 */
import type { CredentialUsage, Headroom, HeadroomWindow } from '../shared/protocol/usage.js';

/** How urgent a value is: `normal` (terminal default), `warn` (yellow), `bad` (red). */
export type Tone = 'normal' | 'warn' | 'bad';

/** One piece of text with its tone. */
export interface ToneText {
  text: string;
  tone: Tone;
}

/** Below this fraction left a headroom part turns yellow. */
export const WARN_BELOW = 0.2;

/** Below this fraction left a headroom part turns red. */
export const BAD_BELOW = 0.05;

/** The tone of a fraction left (0..1): red below 5 %, yellow below 20 %, else normal. */
export function headroomTone(fractionLeft: number): Tone {
  if (fractionLeft < BAD_BELOW) return 'bad';
  return fractionLeft < WARN_BELOW ? 'warn' : 'normal';
}

/** A compact count: 850, 1.2k, 12.3k, 123k, 1.2M (a trailing ".0" is dropped: 50k, not 50.0k). */
export function formatCompact(n: number): string {
  const v = Math.max(0, Math.round(n));
  if (v < 1000) return String(v);
  const [scaled, unit] = v < 1_000_000 ? [v / 1000, 'k'] : [v / 1_000_000, 'M'];
  const text = scaled < 100 ? scaled.toFixed(1).replace(/\.0$/, '') : String(Math.round(scaled));
  return `${text}${unit}`;
}

/** A whole percentage of a fraction, rounded down so the number never looks healthier than its colour. */
export function percentLeft(fraction: number): number {
  return Math.max(0, Math.min(100, Math.floor(fraction * 100)));
}

/** `1.2k tok/m`, `<1 tok/m`; null for no traffic (a zero rate is hidden) or a value that is not a number. */
export function tokenRateText(perMin: number): string | null {
  if (!Number.isFinite(perMin) || perMin <= 0) return null;
  return perMin < 1 ? '<1 tok/m' : `${formatCompact(perMin)} tok/m`;
}

/** The fraction left of a window, or null when the window is unknown or meaningless (limit ≤ 0). */
function windowFraction(w: HeadroomWindow | null): number | null {
  if (!w || !Number.isFinite(w.limit) || !Number.isFinite(w.remaining) || w.limit <= 0) return null;
  return Math.max(0, Math.min(1, w.remaining / w.limit));
}

/** The token window to show: `tokens`, else the tighter of the input/output token windows. */
function tokenFraction(h: Headroom): number | null {
  const all = h.tokens ? [windowFraction(h.tokens)] : [windowFraction(h.input_tokens), windowFraction(h.output_tokens)];
  const known = all.filter((f): f is number => f !== null);
  return known.length === 0 ? null : Math.min(...known);
}

/**
 * The headroom parts of a credential: `req 37/50` (remaining/limit) and `tok 61%` (percent left), each
 * toned by its own fraction; a part that is unknown is left out. With neither (Anthropic subscriptions),
 * the unified window with the least left, e.g. `5h 61%`. Empty when nothing is known.
 */
export function headroomParts(h: Headroom | null | undefined): ToneText[] {
  if (!h) return [];
  const parts: ToneText[] = [];
  const req = windowFraction(h.requests);
  if (req !== null && h.requests) {
    parts.push({ text: `req ${formatCompact(h.requests.remaining)}/${formatCompact(h.requests.limit)}`, tone: headroomTone(req) });
  }
  const tok = tokenFraction(h);
  if (tok !== null) parts.push({ text: `tok ${percentLeft(tok)}%`, tone: headroomTone(tok) });
  if (parts.length > 0) return parts;
  let lowest: { name: string; left: number } | null = null;
  for (const w of h.unified?.windows ?? []) {
    if (!Number.isFinite(w.utilization)) continue;
    const left = Math.max(0, Math.min(1, 1 - w.utilization));
    if (lowest === null || left < lowest.left) lowest = { name: w.name.slice(0, 8), left };
  }
  return lowest === null ? [] : [{ text: `${lowest.name} ${percentLeft(lowest.left)}%`, tone: headroomTone(lowest.left) }];
}

/** The daily budget as shown, and whether it is spent (requests are then refused or moved on). */
export interface BudgetView extends ToneText {
  spent: boolean;
}

/**
 * The daily budget: `day 12.3k/50k tok` or `day 40/100 req`; with both set, the one closer to its end.
 * Red once spent, yellow with less than 20 % left. Null when no budget is set.
 */
export function budgetView(u: Pick<CredentialUsage, 'today' | 'budget'>): BudgetView | null {
  const options: { used: number; limit: number; unit: string }[] = [];
  const { daily_tokens: tokens, daily_requests: requests } = u.budget;
  if (tokens !== null && Number.isFinite(tokens)) options.push({ used: u.today.input_tokens + u.today.output_tokens, limit: tokens, unit: 'tok' });
  if (requests !== null && Number.isFinite(requests)) options.push({ used: u.today.requests, limit: requests, unit: 'req' });
  let pick: { used: number; limit: number; unit: string; usedShare: number } | null = null;
  for (const o of options) {
    const usedShare = o.limit > 0 ? o.used / o.limit : Infinity;
    if (pick === null || usedShare > pick.usedShare) pick = { ...o, usedShare };
  }
  if (pick === null) return null;
  const spent = pick.used >= pick.limit;
  const tone: Tone = spent ? 'bad' : 1 - pick.usedShare < WARN_BELOW ? 'warn' : 'normal';
  return { text: `day ${formatCompact(pick.used)}/${formatCompact(pick.limit)} ${pick.unit}`, tone, spent };
}

/** Whether any daily budget of this credential is spent. */
export function budgetSpent(u: Pick<CredentialUsage, 'today' | 'budget'>): boolean {
  return budgetView(u)?.spent === true;
}

/** The width of parts joined with ` · `. */
export function partsWidth(parts: readonly ToneText[]): number {
  return parts.reduce((n, p, i) => n + p.text.length + (i > 0 ? 3 : 0), 0);
}
