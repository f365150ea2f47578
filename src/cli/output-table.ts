/**
 * Plain aligned text tables for human output. Columns are padded to their widest cell, separated by two
 * spaces, with no trailing whitespace, so output is stable to read in a terminal and to diff in tests.
 */

/** A cell value; `null` and `undefined` print as `-`. */
export type Cell = string | number | boolean | null | undefined;

/** Renders `rows` under `headers` as aligned lines. An empty `rows` renders `empty` instead of a bare header. */
export function formatTable(headers: string[], rows: Cell[][], empty = '(none)'): string[] {
  if (rows.length === 0) return [empty];
  const text = rows.map((row) => headers.map((_, i) => cellText(row[i])));
  const widths = headers.map((h, i) => Math.max(h.length, ...text.map((row) => row[i]!.length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), ...text.map(line)];
}

/** Shortens `text` to `max` characters with an ellipsis, for columns such as paths that may be long. */
export function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

function cellText(value: Cell): string {
  if (value === null || value === undefined || value === '') return '-';
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  // A control character in a cell (e.g. from a request path) would let data rewrite the terminal.
  return String(value).replace(/[\u0000-\u001f\u007f]/g, '?');
}
