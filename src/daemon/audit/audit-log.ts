/**
 * The keyed, hash-chained audit log (see audit-chain.ts for the chain, audit-head.ts for the signed head).
 * Rows are queued as plain value lists, then chained and written in small batches (every 25 ms or 256 rows),
 * one transaction each together with the new signed head, so a crash loses at most the last unwritten batch
 * and never leaves a half-written row or a head that disagrees with the rows.
 *
 * Writing from a worker thread was tried: on two cores the worker's CPU and the batch copies cost more
 * throughput than the ~5 µs a request it took off the proxy's thread (four alternating A/B pairs).
 */
import crypto from 'node:crypto';
import type { AuditVerifyResult } from '../../shared/protocol/audit.js';
import type { AuditRow } from '../../shared/protocol/entities.js';
import type { Clock } from '../clock.js';
import type { Db } from '../store/database.js';
import { ChainWriter, type RowValues } from './audit-chain.js';
import { describeOpening, HeadStore, openingEvent, type Opening } from './audit-head.js';
import { tailQuery, type TailFilter } from './audit-tail-query.js';
import { ChainVerifier } from './audit-verify.js';

export { keyedHash, legacyHash } from './audit-chain.js';
export type { TailFilter } from './audit-tail-query.js';

/** The fields a caller supplies; the log adds id, time and hashes. */
export type AuditEntry = Partial<Omit<AuditRow, 'id' | 'ts' | 'prev_hash' | 'hash'>> & { event: string };

const RETRY_MS = 1000;
const BATCH_ROWS = 256;
/** Rows verified between two turns of the event loop in {@link AuditLog.verifyInChunks}. */
const VERIFY_CHUNK = 2000;

/** Appends, tails and verifies the audit chain. */
export class AuditLog {
  private pending: RowValues[] = [];
  private flushTimer: ReturnType<typeof setTimeout> | null = null;
  private failing = false;
  private readonly chain: ChainWriter;
  private readonly heads: HeadStore;
  /** What opening the chain found (a legacy chain re-anchored, a head re-signed, a missing tail); also audited. */
  readonly opening: Opening | null;
  /** Called with the error when writes start failing, and with null when they recover. */
  onTrouble: ((err: unknown) => void) | null = null;

  /**
   * `key` is the audit chain key (`deriveAuditKey` of the master key; the daemon always passes it). Without
   * one, a random key for this object only is used: rows then verify in this process and nowhere else,
   * which suits tests of other parts and nothing more.
   */
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly flushDelayMs = 25,
    private readonly key: Buffer = crypto.randomBytes(32),
  ) {
    this.chain = new ChainWriter(db, key, () => clock.iso());
    this.heads = new HeadStore(db, key);
    this.opening = this.chain.opening;
    if (this.opening) this.append({ event: openingEvent(this.opening), detail: describeOpening(this.opening) });
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
      entry.agent ?? null,
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

  /**
   * The last `n` rows that match `filter`, oldest first: the filter is applied before the limit, so `n`
   * counts matching rows.
   */
  tail(n: number, filter: TailFilter = {}): AuditRow[] {
    this.flush(true);
    const q = tailQuery(this.db, filter, this.clock.now());
    const rows = this.db.prepare(`SELECT * FROM audit_log ${q.where} ORDER BY id DESC LIMIT ?`).all(...q.params, n) as AuditRow[];
    return rows.reverse();
  }

  /** Number of stored rows. */
  count(): number {
    this.flush(true);
    return (this.db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n;
  }

  /** Walks the whole chain and checks it against the signed head, in one go (see {@link verifyInChunks}). */
  verify(): AuditVerifyResult {
    const { verifier, upTo } = this.startVerify();
    let after = 0;
    for (;;) {
      const rows = this.chunk(after, upTo);
      if (rows.length === 0) break;
      verifier.feed(rows);
      after = rows[rows.length - 1]!.id;
    }
    return verifier.finish();
  }

  /**
   * {@link verify}, yielding to the event loop between chunks so a long log does not stall the proxy. It
   * checks the rows and head as they were when it started; rows appended meanwhile are left for next time.
   */
  async verifyInChunks(): Promise<AuditVerifyResult> {
    const { verifier, upTo } = this.startVerify();
    let after = 0;
    for (;;) {
      const rows = this.chunk(after, upTo);
      if (rows.length === 0) break;
      verifier.feed(rows);
      after = rows[rows.length - 1]!.id;
      await new Promise((r) => setImmediate(r));
    }
    return verifier.finish();
  }

  private startVerify(): { verifier: ChainVerifier; upTo: number } {
    this.flush(true);
    const { row, status } = this.heads.read();
    const max = (this.db.prepare('SELECT ifnull(max(id), 0) AS m FROM audit_log').get() as { m: number }).m;
    return { verifier: new ChainVerifier(this.key, row, status), upTo: max };
  }

  private chunk(after: number, upTo: number): AuditRow[] {
    return this.db.prepare('SELECT * FROM audit_log WHERE id > ? AND id <= ? ORDER BY id LIMIT ?').all(after, upTo, VERIFY_CHUNK) as AuditRow[];
  }
}
