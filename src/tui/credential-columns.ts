/**
 * Which columns the credentials panel shows at a given width, and how wide each is, so every row lines up
 * and the frame fits 80 columns. Without usage (a daemon from before issue 24, or no traffic and no limits
 * reported) the row is exactly what it was: name, load bar, in-flight/cap, queue, `cap N`, counters, the
 * end cut by the terminal. With usage, the name yields first (down to {@link NAME_MIN} cells) and then
 * whole columns are left out rather than cut mid-number. Columns claim the room in this order: headroom,
 * the daily budget (or just `budget spent` when the budget does not fit and one is spent), tokens/min,
 * the load bar (the in-flight numbers carry the same load, in the same colour), the status counters,
 * `cap N` (the cap is also in the in-flight column).
 */
import { formatCount } from './display-format.js';
import type { CredentialRow } from './state/selectors.js';
import { partsWidth } from './usage-format.js';

/** The columns to draw and their text widths (0 = the column is left out). */
export interface CredentialColumns {
  nameWidth: number;
  bar: boolean;
  cap: boolean;
  counters: boolean;
  tokenRate: number;
  headroom: number;
  budget: number;
  /** `budget spent` in place of a budget column that had no room (only when a budget is spent). */
  budgetNote: boolean;
}

/** Marker (2), space after the name (1), in-flight (8), queue (5). */
export const CORE_WIDTH = 16;

/** The in-flight bar. */
export const BAR_WIDTH = 8;

/** `budget spent` as drawn in place of the budget column. */
export const BUDGET_NOTE = 'budget spent';

/** `cap N` as drawn. */
export const CAP_WIDTH = 8;

/** The name keeps at least this many cells (or its length) before usage columns are left out. */
export const NAME_MIN = 12;

/** Gap before each usage column. */
export const GAP = 2;

/** The status counters as drawn: `  2xx 120 4xx 2 5xx 1 rej 3`. */
export function countersText(r: Pick<CredentialRow, 'ok2xx' | 'client4xx' | 'server5xx' | 'rejected'>): string {
  return `  2xx ${formatCount(r.ok2xx)} 4xx ${formatCount(r.client4xx)} 5xx ${formatCount(r.server5xx)} rej ${formatCount(r.rejected)}`;
}

/** Plans the credentials panel's columns for `rows` at `width` terminal columns. */
export function planCredentialColumns(rows: readonly CredentialRow[], width: number): CredentialColumns {
  const longest = Math.max(8, ...rows.map((r) => r.name.length));
  const tokenRate = Math.max(0, ...rows.map((r) => r.tokenRate?.length ?? 0));
  const headroom = Math.max(0, ...rows.map((r) => partsWidth(r.headroom)));
  const budget = Math.max(0, ...rows.map((r) => r.budget?.text.length ?? 0));
  if (tokenRate + headroom + budget === 0) {
    // The row as before issue 24: the columns after the name take about 62 cells; the name gets the rest.
    return {
      nameWidth: Math.min(32, longest, Math.max(8, width - 62)),
      bar: true,
      cap: true,
      counters: true,
      tokenRate: 0,
      headroom: 0,
      budget: 0,
      budgetNote: false,
    };
  }
  const nameFull = Math.min(32, longest);
  const nameMin = Math.min(nameFull, NAME_MIN);
  let free = width - CORE_WIDTH - nameMin;
  const take = (w: number): boolean => {
    if (w <= 0 || w > free) return false;
    free -= w;
    return true;
  };
  const shownHeadroom = take(headroom + GAP) ? headroom : 0;
  const shownBudget = take(budget + GAP) ? budget : 0;
  const anySpent = rows.some((r) => r.budget?.spent === true);
  const out: CredentialColumns = {
    nameWidth: nameMin,
    headroom: shownHeadroom,
    budget: shownBudget,
    budgetNote: shownBudget === 0 && anySpent && take(BUDGET_NOTE.length + GAP),
    tokenRate: take(tokenRate + GAP) ? tokenRate : 0,
    bar: take(BAR_WIDTH),
    counters: take(Math.max(...rows.map((r) => countersText(r).length))),
    cap: take(CAP_WIDTH),
  };
  // What is left goes back to the name.
  out.nameWidth = Math.min(nameFull, nameMin + Math.max(0, free));
  return out;
}
