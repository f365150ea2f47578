/**
 * The audit chain's one writer. Each row's `hash` is an HMAC-SHA256, under the audit key (audit-key.ts), over
 * the row's seq, the previous row's hash and the row's own fields (audit-hash.ts): editing, deleting or
 * reordering a row breaks the chain at that point, and without the key nobody can compute a hash that fits.
 * Rows written before migration 0006 keep their unkeyed SHA-256 hashes; the signed head (audit-head.ts)
 * records where that legacy chain ends.
 */
import type { Db } from '../store/database.js';
import { keyedValuesHash, type RowValues } from './audit-hash.js';
import { HeadStore, type HeadState, type Opening } from './audit-head.js';

export { FIELDS, GENESIS, keyedHash, keyedValuesHash, legacyHash, type RowFields, type RowValues } from './audit-hash.js';

/**
 * Chains rows onto the stored chain and inserts them together with the new signed head. The only code that
 * writes audit rows. It continues from the signed head (never from whatever the table ends with), so rows
 * removed while the daemon was down leave a gap the next rows cannot hide.
 */
export class ChainWriter {
  private readonly heads: HeadStore;
  private state: HeadState;
  private readonly insert;
  private readonly maxIdFrom;
  /** What opening the chain found (a legacy chain re-anchored, a head that had to be re-signed), or null. */
  readonly opening: Opening | null;

  constructor(
    private readonly db: Db,
    private readonly key: Buffer,
    now: () => string,
  ) {
    this.heads = new HeadStore(db, key);
    const opened = this.heads.open(now);
    this.state = opened.state;
    this.opening = opened.opening;
    // Prepared once: preparing it on every flush showed in profiles.
    this.maxIdFrom = db.prepare('SELECT max(id) AS m FROM audit_log WHERE id >= ?');
    // Positional parameters: binding by name costs a property lookup per column per row.
    this.insert = db.prepare(
      `INSERT INTO audit_log (id, ts, event, client, host, port, method, path, verdict, rule_id, credential, status, bytes, duration_ms, detail, agent, prev_hash, hash)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
  }

  /** The head as of the last successful write. */
  get head(): Readonly<HeadState> {
    return this.state;
  }

  /**
   * Chains and writes `rows` and the new head in one transaction, in order. Throws (nothing written, chain
   * head unchanged) when the database cannot be written; writing the same rows again then gives the same hashes.
   */
  write(rows: readonly RowValues[]): void {
    if (rows.length === 0) return;
    // Seqs are never reused: a seq taken by a row someone inserted behind the daemon's back is skipped
    // (the gap and the foreign row both show in `audit verify`), rather than failing every write from now on.
    let firstSeq = this.state.last_seq + 1;
    const taken = this.maxIdFrom.get(firstSeq) as { m: number | null };
    if (taken.m !== null) firstSeq = taken.m + 1;
    const links: string[] = new Array(rows.length * 2);
    let prev = this.state.last_hash;
    for (let i = 0; i < rows.length; i++) {
      const hash = keyedValuesHash(this.key, firstSeq + i, prev, rows[i]!);
      links[2 * i] = prev;
      links[2 * i + 1] = hash;
      prev = hash;
    }
    const next: HeadState = {
      ...this.state,
      last_seq: firstSeq + rows.length - 1,
      last_hash: prev,
      row_count: this.state.row_count + rows.length,
      updated_at: String(rows[rows.length - 1]![0]),
    };
    const signed = this.heads.sign(next);
    this.db.transaction(() => {
      // Arguments spelled out: spreading each row into run() showed up in profiles.
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        this.insert.run(
          firstSeq + i,
          r[0],
          r[1],
          r[2],
          r[3],
          r[4],
          r[5],
          r[6],
          r[7],
          r[8],
          r[9],
          r[10],
          r[11],
          r[12],
          r[13],
          r[14] ?? null,
          links[2 * i],
          links[2 * i + 1],
        );
      }
      this.heads.save(signed);
    })();
    this.state = next;
  }
}
