/**
 * How many rows each panel gets. The frame is kept one row shorter than the terminal: when Ink's output
 * is as tall as the terminal it clears the whole screen on every frame, which flickers at 10 updates/s.
 */

/** Rows that are always there: two header lines, four panel titles, the footer. */
export const FIXED_ROWS = 7;

/** Rows an open number field adds. */
export const FIELD_ROWS = 2;

/** What the panels would like to show. */
export interface LayoutDemand {
  /** Terminal rows. */
  rows: number;
  approvals: number;
  credentials: number;
  pools: number;
  notices: number;
  fieldOpen: boolean;
}

/** Content rows per panel (titles excluded). */
export interface PanelRows {
  approvals: number;
  credentials: number;
  pools: number;
  notices: number;
}

const ORDER: readonly (keyof PanelRows)[] = ['approvals', 'credentials', 'pools', 'notices'];

/** The frame height for a terminal of `rows` rows. */
export function frameHeight(rows: number): number {
  return Math.max(1, rows - 1);
}

/**
 * Splits the free rows: every panel gets one row (room for its "none" line), then rows go one at a time,
 * round-robin in priority order (approvals first), to panels that have more to show.
 */
export function planRows(d: LayoutDemand): PanelRows {
  const out: PanelRows = { approvals: 1, credentials: 1, pools: 1, notices: 1 };
  let free = frameHeight(d.rows) - FIXED_ROWS - (d.fieldOpen ? FIELD_ROWS : 0) - ORDER.length;
  let progressed = true;
  while (free > 0 && progressed) {
    progressed = false;
    for (const panel of ORDER) {
      if (free > 0 && out[panel] < d[panel]) {
        out[panel]++;
        free--;
        progressed = true;
      }
    }
  }
  return out;
}
