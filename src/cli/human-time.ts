/** Short human renderings of durations and timestamps for tables (`3m12s`, `in 1m05s`). */

/** Renders a non-negative number of seconds as `45s`, `3m12s`, `2h05m` or `3d04h`. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** Seconds from `iso` to `now` (positive when `iso` is in the past); NaN for an unparsable time. */
export function secondsSince(iso: string, now: number): number {
  return (now - Date.parse(iso)) / 1000;
}

/** `in 1m05s` for a future time, `now` once it has passed, `-` when there is none. */
export function formatUntil(iso: string | null, now: number): string {
  if (!iso) return '-';
  const left = -secondsSince(iso, now);
  if (Number.isNaN(left)) return iso;
  return left <= 0 ? 'now' : `in ${formatDuration(left)}`;
}
