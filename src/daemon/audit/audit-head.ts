/**
 * The signed head of the audit chain: one row (`audit_head`) holding the last seq, the last hash, the row
 * count, where the pre-0006 legacy chain ends, and an HMAC over all of it under the audit key. The writer
 * updates it in the same transaction as each batch, so the head always describes exactly what was written;
 * rows deleted from the end, or a chain recomputed without the key, no longer match it.
 */
import crypto from 'node:crypto';
import type { Db } from '../store/database.js';
import { GENESIS, legacyHash, type RowFields } from './audit-hash.js';

/** What the head says (everything but its MAC). */
export interface HeadState {
  last_seq: number;
  last_hash: string;
  row_count: number;
  legacy_last_seq: number;
  legacy_last_hash: string;
  anchored_at: string | null;
  reset_at: string | null;
  reset_reason: string | null;
  updated_at: string | null;
}

/** The stored head row. `mac` is '' when migration 0006 wrote it and no daemon has signed it yet. */
export interface HeadRow extends HeadState {
  mac: string;
}

/** How the stored head looks to a reader holding the key. */
export type HeadStatus = 'ok' | 'missing' | 'invalid' | 'unsigned';

/** Something opening the chain found that the log and the audit trail should say. */
export type Opening =
  | { kind: 'anchored'; legacy_rows: number; legacy_last_seq: number; legacy_ok: boolean; legacy_first_bad: number | null }
  | { kind: 'head_reset'; reason: string }
  | { kind: 'tail_missing'; head_last_seq: number; table_last_seq: number };

/** One sentence for the daemon log and the audit row that record an {@link Opening}. */
export function describeOpening(o: Opening): string {
  if (o.kind === 'anchored') {
    const check = o.legacy_ok ? 'verified with the old rule' : `broken at row ${o.legacy_first_bad} under the old rule`;
    return `rows 1–${o.legacy_last_seq}: legacy SHA-256 chain (unkeyed; ${o.legacy_rows} rows, ${check}) re-anchored; rows after ${o.legacy_last_seq} are HMAC-chained`;
  }
  if (o.kind === 'head_reset') return `${o.reason}; re-signed from the table (audit verify will keep reporting this)`;
  return `the signed head ends at row ${o.head_last_seq} but the table ends at row ${o.table_last_seq}: rows were deleted from the end`;
}

/** The audit event that records an {@link Opening} in the chain itself. */
export function openingEvent(o: Opening): string {
  return o.kind === 'anchored' ? 'audit_anchored' : o.kind === 'head_reset' ? 'audit_head_reset' : 'audit_tail_missing';
}

const COLUMNS = ['last_seq', 'last_hash', 'row_count', 'legacy_last_seq', 'legacy_last_hash', 'anchored_at', 'reset_at', 'reset_reason', 'updated_at'] as const;

/** The head's MAC: HMAC-SHA256 under the audit key over a label and every field, in a fixed order. */
export function headMac(key: Buffer, s: HeadState): string {
  let text = 'sluice audit head v1';
  for (const c of COLUMNS) text += '\x1f' + (s[c] === null ? '\x00' : String(s[c]));
  return crypto.createHmac('sha256', key).update(text).digest('hex');
}

function sameMac(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && crypto.timingSafeEqual(x, y);
}

function stateOf(row: HeadRow): HeadState {
  const { mac: _mac, ...state } = row;
  return state;
}

/** Reads, checks, signs and stores the head. */
export class HeadStore {
  private readonly upsert;

  constructor(
    private readonly db: Db,
    private readonly key: Buffer,
  ) {
    this.upsert = db.prepare(
      `INSERT INTO audit_head (id, ${COLUMNS.join(', ')}, mac) VALUES (1, ${COLUMNS.map(() => '?').join(', ')}, ?)
       ON CONFLICT(id) DO UPDATE SET ${COLUMNS.map((c) => `${c} = excluded.${c}`).join(', ')}, mac = excluded.mac`,
    );
  }

  /** The stored head and whether its MAC verifies. */
  read(): { row: HeadRow | null; status: HeadStatus } {
    const row = (this.db.prepare(`SELECT ${COLUMNS.join(', ')}, mac FROM audit_head WHERE id = 1`).get() as HeadRow | undefined) ?? null;
    if (!row) return { row: null, status: 'missing' };
    if (row.mac === '') return { row, status: 'unsigned' };
    return { row, status: sameMac(row.mac, headMac(this.key, stateOf(row))) ? 'ok' : 'invalid' };
  }

  /** `state` with its MAC. */
  sign(state: HeadState): HeadRow {
    return { ...state, mac: headMac(this.key, state) };
  }

  /** Stores a signed head (inside the caller's transaction when there is one). */
  save(row: HeadRow): void {
    this.upsert.run(...COLUMNS.map((c) => row[c]), row.mac);
  }

  /**
   * Loads the head the writer continues from, signing it first when needed: the anchor migration 0006 left
   * (the legacy rows are checked with the old rule once, here), or a head that is missing or does not verify
   * (re-signed from the table, with `reset_at` set for good so `audit verify` never again says "ok").
   */
  open(now: () => string): { state: HeadState; opening: Opening | null } {
    const { row, status } = this.read();
    if (status === 'ok') {
      const state = stateOf(row!);
      const last = this.lastRow();
      const opening: Opening | null =
        (last?.id ?? 0) < state.last_seq ? { kind: 'tail_missing', head_last_seq: state.last_seq, table_last_seq: last?.id ?? 0 } : null;
      return { state, opening };
    }
    if (status === 'unsigned') {
      const state: HeadState = { ...stateOf(row!), anchored_at: now(), updated_at: now() };
      const legacy = this.checkLegacy(state.legacy_last_seq);
      this.save(this.sign(state));
      const opening: Opening | null =
        state.legacy_last_seq > 0
          ? {
              kind: 'anchored',
              legacy_rows: legacy.rows,
              legacy_last_seq: state.legacy_last_seq,
              legacy_ok: legacy.firstBad === null,
              legacy_first_bad: legacy.firstBad,
            }
          : null;
      return { state, opening };
    }
    const reason = status === 'missing' ? 'the signed head was missing' : 'the signed head did not verify (edited, or written without the key)';
    const last = this.lastRow();
    const count = (this.db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
    const state: HeadState = {
      last_seq: last?.id ?? 0,
      last_hash: last?.hash ?? GENESIS,
      row_count: count,
      // An unverified head's legacy boundary is kept (it only changes how rows are labelled); the reset
      // itself keeps verification failing.
      legacy_last_seq: row?.legacy_last_seq ?? 0,
      legacy_last_hash: row?.legacy_last_hash ?? GENESIS,
      anchored_at: row?.anchored_at ?? null,
      reset_at: now(),
      reset_reason: reason,
      updated_at: now(),
    };
    this.save(this.sign(state));
    return { state, opening: { kind: 'head_reset', reason } };
  }

  private lastRow(): { id: number; hash: string } | undefined {
    return this.db.prepare('SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1').get() as { id: number; hash: string } | undefined;
  }

  /** Checks rows 1..`lastSeq` with the legacy rule; returns how many there are and the first that fails. */
  private checkLegacy(lastSeq: number): { rows: number; firstBad: number | null } {
    let prev = GENESIS;
    let rows = 0;
    let firstBad: number | null = null;
    for (const r of this.db.prepare('SELECT * FROM audit_log WHERE id <= ? ORDER BY id').iterate(lastSeq) as Iterable<
      RowFields & { id: number; prev_hash: string; hash: string }
    >) {
      rows++;
      if (firstBad === null && (r.prev_hash !== prev || legacyHash(r.prev_hash, r) !== r.hash)) firstBad = r.id;
      prev = r.hash;
    }
    return { rows, firstBad };
  }
}
