/**
 * The audit log's RPC shapes beyond the row itself: what `audit.verify` reports, and the `audit.tail`
 * filters (the `--since` duration grammar is shared so the CLI can refuse a bad value before calling).
 */

/** What kind of damage a verification found. Stable strings: scripts may match on them. */
export type AuditProblemKind =
  | 'row_edited' // one row's hash does not match its contents
  | 'chain_recomputed' // consecutive rows re-hashed without the audit key (plain SHA-256 or another key)
  | 'rows_missing' // a gap in the seqs: rows deleted from the middle
  | 'link_broken' // a row does not link to the row before it (reordered or replaced)
  | 'legacy_rewritten' // the legacy rows no longer end with the hash the head anchored
  | 'tail_deleted' // the signed head says the log goes further than the table does
  | 'rows_after_head' // rows past the last signed write (not written by the daemon)
  | 'head_mismatch' // the last row is not the one the head signed
  | 'count_mismatch' // the head's row count does not match the table
  | 'head_missing'
  | 'head_invalid' // the head's own HMAC does not verify
  | 'head_unsigned' // the head migration 0006 left has not been signed by a daemon yet
  | 'head_reset'; // the daemon once found the head missing or invalid and re-signed it

/** One finding; `seq`..`to` is the range of row seqs concerned (null for the head itself). */
export interface AuditProblem {
  kind: AuditProblemKind;
  seq: number | null;
  to: number | null;
  message: string;
}

/** A stretch of the chain under one hashing rule. */
export interface AuditSegment {
  kind: 'legacy_sha256' | 'hmac';
  from: number;
  to: number;
  rows: number;
  ok: boolean;
  /** For the legacy segment: when it was re-anchored under the HMAC chain. */
  anchored_at: string | null;
}

/** The signed head as the verifier saw it. */
export interface AuditHeadInfo {
  status: 'ok' | 'missing' | 'invalid' | 'unsigned';
  last_seq: number | null;
  row_count: number | null;
  updated_at: string | null;
  reset_at: string | null;
}

/** `audit.verify`. `first_bad_id` and `reason` summarise the first problem (null when ok). */
export interface AuditVerifyResult {
  ok: boolean;
  /** Rows checked. */
  rows: number;
  first_bad_id: number | null;
  reason: string | null;
  /** The findings, first ones first (at most {@link MAX_PROBLEMS}); `problems_total` counts all of them. */
  problems: AuditProblem[];
  problems_total: number;
  segments: AuditSegment[];
  head: AuditHeadInfo;
}

/** How many problems `audit.verify` lists. */
export const MAX_PROBLEMS = 100;

/** `--since` values: a whole number and a unit (s, m, h, d). */
export const SINCE_PATTERN = /^([1-9]\d{0,6})([smhd])$/;

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds in a `--since` value such as `10m`, `2h`, `1d`; null when it does not parse. */
export function sinceMs(text: string): number | null {
  const m = SINCE_PATTERN.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}
