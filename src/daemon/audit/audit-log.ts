/**
 * The hash-chained audit log (see audit-chain.ts for the chain). Rows are queued as plain value lists, then
 * chained and written in small batches (every 25 ms or 256 rows), one transaction each, so a crash loses at
 * most the last unwritten batch and never leaves a half-written row.
 *
 * Writing from a worker thread was tried: on two cores the worker's CPU and the batch copies cost more
 * throughput than the ~5 µs a request it took off the proxy's thread (four alternating A/B pairs).
 */
import type { AuditRow } from '../../shared/protocol/entities.js';
import type { Clock } from '../clock.js';
import type { Db } from '../store/database.js';
import { ChainWriter, GENESIS, rowHash, type RowValues } from './audit-chain.js';

export { rowHash } from './audit-chain.js';

/** The fields a caller supplies; the log adds id, time and hashes. */
export type AuditEntry = Partial<Omit<AuditRow, 'id' | 'ts' | 'prev_hash' | 'hash'>> & { event: string };

const RETRY_MS = 1000;
const BATCH_ROWS = 256;

/** Appends, tails and verifies the audit chain. */
export class AuditLog {
  private pending: RowValues[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private failing = false;
  private readonly chain: ChainWriter;
  /** Called with the error when writes start failing, and with null when they recover. */
  onTrouble: ((err: unknown) => void) | null = null;

  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly flushDelayMs = 25,
  ) {
    this.chain = new ChainWriter(db);
  }

  /** Queues `entry`; it is chained (in order) and written by the next flush. */
  append(entry: AuditEntry): void {
    const d = entry.duration_ms;
    this.pending.push([
      this.clock.iso(),
      entry.event,
      entry.client ?? null,
      entry.host ?? null,
      entry.port ?? null,
      entry.method ?? null,
      entry.path ?? null,
      entry.verdict ?? null,
      entry.rule_id ?? null,
      entry.credential ?? null,
      entry.status ?? null,
      entry.bytes ?? null,
      d === undefined || d === null ? null : Math.round(d * 1000) / 1000,
      entry.detail ?? null,
    ]);
    if (this.pending.length >= BATCH_ROWS) this.flush();
    else if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => this.flush(), this.flushDelayMs);
      this.flushTimer.unref?.();
    }
  }

  /**
   * Writes queued rows now, in one transaction. When the database cannot be written (locked by
   * another process) the rows stay queued, in order, and are retried: the chain is never ahead of rows
   * that will not be written. Throws only when `strict` (RPC reads that must see every row).
   */
  flush(strict = false): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer);
      this.flushTimer = null;
    }
    if (this.pending.length === 0) return;
    try {
      this.chain.write(this.pending);
      this.pending = [];
      this.setFailing(null);
    } catch (err) {
      this.setFailing(err);
      this.flushTimer = setTimeout(() => this.flush(), RETRY_MS);
      this.flushTimer.unref?.();
      if (strict) throw err;
    }
  }

  private setFailing(err: unknown): void {
    if (!!err === this.failing) return;
    this.failing = !!err;
    this.onTrouble?.(err);
  }

  /** Rows queued but not yet written. */
  get unwritten(): number {
    return this.pending.length;
  }

  /** The last `n` rows, oldest first. */
  tail(n: number): AuditRow[] {
    this.flush(true);
    const rows = this.db.prepare('SELECT * FROM audit_log ORDER BY id DESC LIMIT ?').all(n) as AuditRow[];
    return rows.reverse();
  }

  /** Number of stored rows. */
  count(): number {
    this.flush(true);
    return (this.db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  }

  /** Walks the whole chain; reports the first row whose link or hash does not match. */
  verify(): { ok: boolean; rows: number; first_bad_id: number | null; reason: string | null } {
    this.flush(true);
    let prev = GENESIS;
    let n = 0;
    for (const r of this.db.prepare('SELECT * FROM audit_log ORDER BY id').iterate() as Iterable<AuditRow>) {
      n++;
      if (r.prev_hash !== prev) return { ok: false, rows: n, first_bad_id: r.id, reason: 'prev_hash does not match the previous row (row removed or reordered)' };
      if (rowHash(prev, r) !== r.hash) return { ok: false, rows: n, first_bad_id: r.id, reason: 'hash does not match the row contents (row edited)' };
      prev = r.hash;
    }
    return { ok: true, rows: n, first_bad_id: null, reason: null };
  }
}
