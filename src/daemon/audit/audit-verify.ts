/**
 * Checks the audit chain against the audit key and the signed head, and says what is wrong in terms a
 * person can act on: which row was edited, which rows are missing (middle or tail), which stretch was
 * recomputed without the key, whether the head itself verifies. Rows are fed in seq order, in chunks, so the
 * daemon can yield between chunks on a long log.
 */
import type { AuditHeadInfo, AuditProblem, AuditSegment, AuditVerifyResult } from '../../shared/protocol/audit.js';
import { MAX_PROBLEMS } from '../../shared/protocol/audit.js';
import type { AuditRow } from '../../shared/protocol/entities.js';
import { GENESIS, keyedHash, legacyHash } from './audit-hash.js';
import type { HeadRow, HeadStatus } from './audit-head.js';

/** A run of consecutive rows whose hashes do not verify while their links do. */
interface BadRun {
  from: number;
  to: number;
  legacy: boolean;
  /** Every hash in the run is the plain SHA-256 of its row: recomputed without the key. */
  plain: boolean;
}

const range = (a: number, b: number) => (a === b ? `row ${a}` : `rows ${a}–${b}`);

/** Walks the chain. Feed rows in ascending seq, then call {@link finish}. */
export class ChainVerifier {
  private readonly problems: AuditProblem[] = [];
  private readonly legacyLast: number;
  private expectedPrev = GENESIS;
  private prevSeq = 0;
  private rows = 0;
  private legacyRows = 0;
  private rowsUpToHead = 0;
  private missing = 0;
  private run: BadRun | null = null;
  private lastHash = GENESIS;

  constructor(
    private readonly key: Buffer,
    private readonly head: HeadRow | null,
    private readonly headStatus: HeadStatus,
  ) {
    this.legacyLast = head?.legacy_last_seq ?? 0;
  }

  /** Checks the next rows (ascending seq, continuing from the previous call). */
  feed(rows: readonly AuditRow[]): void {
    for (const r of rows) this.check(r);
  }

  private check(r: AuditRow): void {
    this.rows++;
    if (r.id <= this.legacyLast) this.legacyRows++;
    if (this.head && r.id <= this.head.last_seq) this.rowsUpToHead++;
    const gap = r.id > this.prevSeq + 1;
    const linkOk = r.prev_hash === this.expectedPrev;
    if (gap) {
      this.missing += r.id - this.prevSeq - 1;
      this.add('rows_missing', this.prevSeq + 1, r.id - 1, `${range(this.prevSeq + 1, r.id - 1)} missing: deleted from the middle of the log`);
    }
    // A broken link right after a row whose hash was replaced is that row's damage, already reported.
    const afterReplacedHash = this.run !== null && this.run.to === this.prevSeq;
    if (!linkOk && !gap && !afterReplacedHash) {
      this.add('link_broken', r.id, r.id, `row ${r.id} does not link to row ${this.prevSeq} (rows reordered, or row ${this.prevSeq} replaced)`);
    }
    const legacy = r.id <= this.legacyLast;
    const expected = legacy ? legacyHash(r.prev_hash, r) : keyedHash(this.key, r.id, r.prev_hash, r);
    if (expected !== r.hash) {
      const plain = !legacy && legacyHash(r.prev_hash, r) === r.hash;
      if (this.run && linkOk && this.run.to === this.prevSeq && this.run.legacy === legacy) {
        this.run.to = r.id;
        this.run.plain &&= plain;
      } else {
        this.closeRun(linkOk);
        this.run = { from: r.id, to: r.id, legacy, plain };
      }
    } else {
      this.closeRun(linkOk);
    }
    if (r.id === this.legacyLast && this.head && this.headStatus === 'ok' && r.hash !== this.head.legacy_last_hash) {
      this.add(
        'legacy_rewritten',
        r.id,
        r.id,
        `the legacy rows were rewritten after the re-anchor: row ${r.id}'s hash is not the one anchored${this.head.anchored_at ? ` on ${this.head.anchored_at}` : ''}`,
      );
    }
    this.expectedPrev = r.hash;
    this.prevSeq = r.id;
    this.lastHash = r.hash;
  }

  /** Reports the open run of bad hashes; `nextLinkOk` says whether the row after it still links to it. */
  private closeRun(nextLinkOk: boolean | null): void {
    const run = this.run;
    if (!run) return;
    this.run = null;
    if (run.from === run.to) {
      const how = run.plain
        ? 'its hash was recomputed with plain SHA-256 (without the audit key)'
        : nextLinkOk === false
          ? 'its contents and hash were replaced'
          : `its hash does not match its contents${run.legacy ? ' (legacy SHA-256 rule)' : ''}`;
      this.add('row_edited', run.from, run.to, `row ${run.from} was edited: ${how}`);
      return;
    }
    if (run.legacy) {
      this.add('row_edited', run.from, run.to, `${range(run.from, run.to)} were edited: their hashes do not match their contents (legacy SHA-256 rule)`);
      return;
    }
    const how = run.plain
      ? 'plain SHA-256 hashes, computed without the audit key'
      : 'hashes that do not verify under this audit key (another key, or edited rows)';
    this.add('chain_recomputed', run.from, run.to, `${range(run.from, run.to)}: the chain was recomputed without the audit key (${how})`);
  }

  private add(kind: AuditProblem['kind'], seq: number | null, to: number | null, message: string): void {
    this.problems.push({ kind, seq, to, message });
  }

  /** Compares what was walked with the signed head and returns the report. */
  finish(): AuditVerifyResult {
    this.closeRun(null);
    const headProblems: AuditProblem[] = [];
    const h = this.head;
    const addHead = (kind: AuditProblem['kind'], seq: number | null, to: number | null, message: string) => headProblems.push({ kind, seq, to, message });
    if (this.headStatus === 'missing') addHead('head_missing', null, null, 'the signed head is missing (deleted)');
    else if (this.headStatus === 'invalid') addHead('head_invalid', null, null, 'the signed head does not verify (edited, or written without the audit key)');
    else if (this.headStatus === 'unsigned') addHead('head_unsigned', null, null, 'the head has not been signed yet (no daemon has started since the upgrade)');
    if (h && this.headStatus === 'ok') {
      if (h.reset_at) {
        addHead(
          'head_reset',
          null,
          null,
          `on ${h.reset_at} the daemon found that ${h.reset_reason ?? 'the signed head was unusable'} and re-signed it from the table: rows removed before then cannot be ruled out`,
        );
      }
      if (this.prevSeq < h.last_seq) {
        this.missing += h.last_seq - this.prevSeq;
        addHead(
          'tail_deleted',
          this.prevSeq + 1,
          h.last_seq,
          `${range(this.prevSeq + 1, h.last_seq)} missing from the end: the signed head says the log ends at row ${h.last_seq} with ${h.row_count} rows, the table ends at row ${this.prevSeq}`,
        );
      } else if (this.prevSeq > h.last_seq) {
        addHead(
          'rows_after_head',
          h.last_seq + 1,
          this.prevSeq,
          `${range(h.last_seq + 1, this.prevSeq)} were added after the last signed write (not by the daemon)`,
        );
      } else if (this.lastHash !== h.last_hash && !this.problems.some((p) => p.to === h.last_seq)) {
        addHead('head_mismatch', h.last_seq, h.last_seq, `row ${h.last_seq} is not the row the head signed (replaced)`);
      }
      if (h.row_count !== this.rowsUpToHead && h.row_count !== this.rowsUpToHead + this.missing && !h.reset_at) {
        addHead('count_mismatch', null, null, `the signed head counts ${h.row_count} rows up to row ${h.last_seq}; the table has ${this.rowsUpToHead}`);
      }
    }
    const all = [...this.problems, ...headProblems].sort((a, b) => (a.seq ?? Infinity) - (b.seq ?? Infinity));
    const legacyLast = Math.min(this.legacyLast, Math.max(this.prevSeq, h?.last_seq ?? 0));
    const lastSeq = Math.max(this.prevSeq, h && this.headStatus === 'ok' ? h.last_seq : 0);
    const segments: AuditSegment[] = [];
    const okIn = (from: number, to: number) => !all.some((p) => p.seq !== null && p.seq <= to && (p.to ?? p.seq) >= from);
    if (legacyLast > 0)
      segments.push({ kind: 'legacy_sha256', from: 1, to: legacyLast, rows: this.legacyRows, ok: okIn(1, legacyLast), anchored_at: h?.anchored_at ?? null });
    if (lastSeq > legacyLast)
      segments.push({
        kind: 'hmac',
        from: legacyLast + 1,
        to: lastSeq,
        rows: this.rows - this.legacyRows,
        ok: okIn(legacyLast + 1, lastSeq),
        anchored_at: null,
      });
    const head: AuditHeadInfo = {
      status: this.headStatus,
      last_seq: h?.last_seq ?? null,
      row_count: h?.row_count ?? null,
      updated_at: h?.updated_at ?? null,
      reset_at: h?.reset_at ?? null,
    };
    const first = all[0];
    const firstSeq = all.find((p) => p.seq !== null)?.seq ?? null;
    return {
      ok: all.length === 0,
      rows: this.rows,
      first_bad_id: firstSeq,
      reason: first?.message ?? null,
      problems: all.slice(0, MAX_PROBLEMS),
      problems_total: all.length,
      segments,
      head,
    };
  }
}
