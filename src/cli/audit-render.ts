/**
 * Human renderings for `sluicectl audit`: the tail table, fitted to a terminal width (100 columns by
 * default) with times in local time unless asked for UTC, and the verify report, which names each segment
 * of the chain and each problem. Pure functions: no I/O, no clock.
 */
import type { AuditVerifyResult } from '../shared/protocol/audit.js';
import type { AuditRow } from '../shared/protocol/entities.js';

/** The width `audit tail` fits by default. */
export const TAIL_WIDTH = 100;

const SEP = '  ';
/** Caps on the narrow columns; the last column (request and detail) gets what is left. */
const CAP = { event: 20, verdict: 10, cred: 12 } as const;
const MIN_WHAT = 20;

/** `MM-DD HH:MM:SS` in local time, or in UTC with `utc`; the stored text when it does not parse. */
export function formatAuditTime(iso: string, utc: boolean): string {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const p = (n: number) => String(n).padStart(2, '0');
  return utc
    ? `${p(t.getUTCMonth() + 1)}-${p(t.getUTCDate())} ${p(t.getUTCHours())}:${p(t.getUTCMinutes())}:${p(t.getUTCSeconds())}`
    : `${p(t.getMonth() + 1)}-${p(t.getDate())} ${p(t.getHours())}:${p(t.getMinutes())}:${p(t.getSeconds())}`;
}

/** Data must not drive the terminal: control characters become `?`. */
function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?');
}

function cut(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/**
 * Shortens a `METHOD host/path?query` string to `max`: the query goes first (`?…`), then the middle of the
 * path, so the method, the host and the end of the path stay readable.
 */
export function shortenRequest(req: string, max: number): string {
  if (req.length <= max) return req;
  const q = req.indexOf('?');
  if (q !== -1) {
    req = `${req.slice(0, q)}?…`;
    if (req.length <= max) return req;
  }
  if (max < 8) return cut(req, max);
  // Keep the method and host whole when that leaves room for the end of the path.
  const pathStart = req.indexOf('/', req.indexOf(' ') + 1);
  const head = Math.min(max - 8, Math.max(Math.ceil((max - 1) * 0.6), pathStart + 1));
  return `${req.slice(0, head)}…${req.slice(req.length - (max - 1 - head))}`;
}

function requestOf(r: AuditRow): string {
  if (!r.host) return '';
  const port = r.port && r.port !== 443 ? `:${r.port}` : '';
  return clean(`${r.method ? `${r.method} ` : ''}${r.host}${port}${r.path ?? ''}`);
}

/** The last column: the request, then the detail, both shortened to fit `width`. */
export function whatCell(r: AuditRow, width: number): string {
  const req = requestOf(r);
  const detail = r.detail ? clean(r.detail) : '';
  if (!req) return cut(detail, width);
  if (!detail) return shortenRequest(req, width);
  const full = `${req} · ${detail}`;
  if (full.length <= width) return full;
  // The request comes first (without its query when that is what it takes); the detail gets what is left,
  // but at least a quarter of the room when it is that long, and is dropped when fewer than 8 columns remain.
  const whole = shortenRequest(req, width);
  const detailRoom = Math.min(detail.length, Math.max(8, Math.floor(width * 0.25)));
  const reqShort = shortenRequest(req, width - 3 - detailRoom);
  const room = width - reqShort.length - 3;
  return room >= 8 ? `${reqShort} · ${cut(detail, room)}` : whole;
}

/** The `audit tail` table: one line per row, every line at most `width` columns. */
export function auditTailLines(rows: readonly AuditRow[], opts: { utc: boolean; width?: number }): string[] {
  if (rows.length === 0) return ['(no matching audit rows)'];
  const width = opts.width ?? TAIL_WIDTH;
  const headers = ['ID', opts.utc ? 'TIME (UTC)' : 'TIME', 'EVENT', 'VERDICT', 'CODE', 'CRED', 'REQUEST · DETAIL'];
  const cells = rows.map((r) => [
    String(r.id),
    formatAuditTime(r.ts, opts.utc),
    cut(clean(r.event), CAP.event),
    cut(clean(r.verdict ?? '-'), CAP.verdict),
    r.status === null ? '-' : String(r.status),
    cut(clean(r.credential ?? '-'), CAP.cred),
  ]);
  const widths = headers.slice(0, 6).map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const fixed = widths.reduce((a, b) => a + b, 0) + SEP.length * widths.length;
  const whatWidth = Math.max(MIN_WHAT, width - fixed);
  const line = (c: string[], what: string) => [...c.map((x, i) => (i === 0 ? x.padStart(widths[0]!) : x.padEnd(widths[i]!))), what].join(SEP).trimEnd();
  return [line(headers.slice(0, 6), headers[6]!), ...rows.map((r, i) => line(cells[i]!, whatCell(r, whatWidth)))];
}

const span = (from: number, to: number) => (from === to ? `row ${from}` : `rows ${from}–${to}`);

/** The `audit verify` report. Tolerates results from an older daemon (no segments or problems). */
export function verifyLines(r: AuditVerifyResult, utc = true): string[] {
  const when = (iso: string | null) => (iso ? `${iso.slice(0, 10)} ${formatAuditTime(iso, utc).slice(6)}${utc ? ' UTC' : ''}` : 'an unknown date');
  const lines: string[] = [];
  if (r.ok) lines.push(`audit chain ok (${r.rows} rows)`);
  else lines.push(`audit chain BROKEN${r.first_bad_id === null ? '' : ` at row ${r.first_bad_id}`}: ${r.reason ?? 'hash mismatch'} (${r.rows} rows checked)`);
  for (const s of r.segments ?? []) {
    const state = s.ok ? 'ok' : 'BROKEN';
    if (s.kind === 'legacy_sha256')
      lines.push(`  ${span(s.from, s.to)}: legacy SHA-256 chain (unkeyed), re-anchored at row ${s.to} on ${when(s.anchored_at)}; ${state}`);
    else lines.push(`  ${span(s.from, s.to)}: HMAC chain ${state}`);
  }
  if (r.head) {
    if (r.head.status === 'ok') lines.push(`  signed head: row ${r.head.last_seq}, ${r.head.row_count} rows, ${r.ok ? 'matches the table' : 'verifies'}`);
    else lines.push(`  signed head: ${r.head.status}`);
  }
  const problems = r.problems ?? [];
  if (problems.length > 1 || (problems.length === 1 && problems[0]!.message !== r.reason)) {
    lines.push('problems:');
    for (const p of problems) lines.push(`  - ${p.message}`);
    if ((r.problems_total ?? problems.length) > problems.length) lines.push(`  … and ${r.problems_total - problems.length} more (see --json)`);
  }
  return lines;
}
