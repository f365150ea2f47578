/**
 * Plain-text formatting for the panels: durations, counts, fixed-width columns, the in-flight bar and
 * the rate sparkline. Pure and colour-free, so every cell is readable with NO_COLOR.
 */

/** A short duration: "42s", "3m05s", "2h03m". Negative values count as 0. */
export function formatDuration(ms: number): string {
  const total = Math.max(0, Math.floor(ms / 1000));
  if (total < 60) return `${total}s`;
  const m = Math.floor(total / 60);
  const s = total % 60;
  if (m < 60) return `${m}m${String(s).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return `${h}h${String(m % 60).padStart(2, '0')}m`;
}

/** A compact count: 999, 12.3k, 4.5M. */
export function formatCount(n: number): string {
  if (n < 10_000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 100_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** A request rate: "0", "0.4", "12", "1.2k". */
export function formatRate(perSecond: number): string {
  if (perSecond <= 0) return '0';
  if (perSecond < 10) return perSecond.toFixed(1).replace(/\.0$/, '');
  return formatCount(Math.round(perSecond));
}

/** Pads or cuts `text` to exactly `width` columns (cut text ends with "…"). */
export function fit(text: string, width: number): string {
  if (width <= 0) return '';
  if (text.length <= width) return text.padEnd(width);
  return width === 1 ? '…' : `${text.slice(0, width - 1)}…`;
}

/** Like {@link fit} but right-aligned, for numbers. */
export function fitRight(text: string, width: number): string {
  return text.length >= width ? fit(text, width) : text.padStart(width);
}

/** An in-flight bar of `width` cells: filled share of `value / max`, at least one cell when value > 0. */
export function usageBar(value: number, max: number, width: number): string {
  if (width <= 0) return '';
  const ratio = max > 0 ? Math.min(1, value / max) : 0;
  let filled = Math.round(ratio * width);
  if (value > 0 && filled === 0) filled = 1;
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}

const SPARK = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/** A sparkline of `values`, scaled to their maximum; all-zero input is a flat baseline. */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(0, ...values);
  return values.map((v) => (max === 0 ? SPARK[0] : SPARK[Math.min(SPARK.length - 1, Math.round((v / max) * (SPARK.length - 1)))])).join('');
}

/** The row window of `size` rows that keeps `selected` visible, centred where possible. */
export interface RowWindow {
  start: number;
  end: number;
}

/** Picks which rows of `total` to show in `size` rows so that row `selected` (-1 = none) is visible. */
export function windowAround(total: number, selected: number, size: number): RowWindow {
  if (size <= 0) return { start: 0, end: 0 };
  if (total <= size) return { start: 0, end: total };
  const anchor = Math.max(0, selected);
  const start = Math.min(total - size, Math.max(0, anchor - Math.floor(size / 2)));
  return { start, end: start + size };
}
