/**
 * Tamper evidence of the keyed audit chain and its signed head, on real SQLite files with a fake clock:
 * each way of altering the log behind the daemon's back is reported by `verify()` (and names the rows),
 * a clean log verifies, a restart continues the chain, and a database written by the pre-HMAC code is
 * re-anchored once and then verifies with both segments named.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, keyedHash } from '../../../../src/daemon/audit/audit-log.js';
import { deriveAuditKey } from '../../../../src/daemon/audit/audit-key.js';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { loadMigrations, openDatabase, type Db } from '../../../../src/daemon/store/database.js';
import type { AuditRow } from '../../../../src/shared/protocol/entities.js';

const KEY = deriveAuditKey(Buffer.alloc(32, 1));
const OTHER_KEY = deriveAuditKey(Buffer.alloc(32, 2));
const FIELDS = [
  'ts',
  'event',
  'client',
  'host',
  'port',
  'method',
  'path',
  'verdict',
  'rule_id',
  'credential',
  'status',
  'bytes',
  'duration_ms',
  'detail',
] as const;

const dbs: Db[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tempFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-audit-tamper-'));
  dirs.push(dir);
  return path.join(dir, 'sluice.db');
}

function openDb(file: string, migrations = loadMigrations()): Db {
  const db = openDatabase(file, migrations);
  dbs.push(db);
  return db;
}

/** The pre-0006 formula, written out here rather than imported: sha256 over the previous hash and the fields. */
function oldFormula(prev: string, row: Record<string, unknown>): string {
  let text = prev;
  for (const f of FIELDS) text += '\x1f' + (row[f] === null || row[f] === undefined ? '\x00' : String(row[f]));
  return crypto.createHash('sha256').update(text).digest('hex');
}

function appendRequests(log: AuditLog, clock: FakeClock, n: number, from = 0): void {
  for (let i = from; i < from + n; i++) {
    log.append({
      event: 'request',
      host: 'api.anthropic.com',
      port: 443,
      method: 'POST',
      path: `/v1/messages/${i}`,
      status: 200,
      bytes: 100 + i,
      duration_ms: 12.3456,
      credential: 'work',
    });
    clock.advance(1_000);
  }
  log.flush();
}

function allRows(db: Db): AuditRow[] {
  return db.prepare('SELECT * FROM audit_log ORDER BY id').all() as AuditRow[];
}

/** Re-hashes rows with seq >= `from` with `hash` (a forger's rule), relinking each to the previous one. */
function rechain(db: Db, from: number, hash: (seq: number, prev: string, row: AuditRow) => string): void {
  let prev = '0'.repeat(64);
  for (const r of allRows(db)) {
    if (r.id < from) {
      prev = r.hash;
      continue;
    }
    const next = hash(r.id, prev, r);
    db.prepare('UPDATE audit_log SET prev_hash = ?, hash = ? WHERE id = ?').run(prev, next, r.id);
    prev = next;
  }
}

function fresh(n = 10) {
  const file = tempFile();
  const db = openDb(file);
  const clock = new FakeClock();
  const log = new AuditLog(db, clock, 25, KEY);
  appendRequests(log, clock, n);
  return { file, db, clock, log };
}

describe('audit chain tamper evidence', () => {
  it('a clean log verifies, as one HMAC segment whose head matches the table', () => {
    const { log } = fresh(10);
    const v = log.verify();
    expect(v).toMatchObject({ ok: true, rows: 10, first_bad_id: null, reason: null, problems: [], problems_total: 0 });
    expect(v.segments).toEqual([{ kind: 'hmac', from: 1, to: 10, rows: 10, ok: true, anchored_at: null }]);
    expect(v.head).toMatchObject({ status: 'ok', last_seq: 10, row_count: 10 });
  });

  it('an edited row is reported by its seq', () => {
    const { db, log } = fresh(10);
    db.prepare("UPDATE audit_log SET path = '/innocent' WHERE id = 4").run();
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(4);
    expect(v.problems).toEqual([expect.objectContaining({ kind: 'row_edited', seq: 4, to: 4 })]);
  });

  it('deleting the last rows is reported: the signed head says the log goes further', () => {
    const { db, log } = fresh(10);
    db.prepare('DELETE FROM audit_log WHERE id > 7').run();
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(8);
    expect(v.problems).toEqual([expect.objectContaining({ kind: 'tail_deleted', seq: 8, to: 10 })]);
    expect(v.reason).toMatch(/rows 8–10 missing from the end/);
  });

  it('deleting a middle row is reported as that seq missing', () => {
    const { db, log } = fresh(10);
    db.prepare('DELETE FROM audit_log WHERE id = 5').run();
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(5);
    expect(v.problems[0]).toMatchObject({ kind: 'rows_missing', seq: 5, to: 5 });
  });

  it('deleting a middle row and renumbering the rest is still found (the seq is inside each HMAC)', () => {
    const { db, log } = fresh(6);
    db.prepare('DELETE FROM audit_log WHERE id = 3').run();
    for (const id of [4, 5, 6]) db.prepare('UPDATE audit_log SET id = ? WHERE id = ?').run(id - 1, id);
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(3);
  });

  it('a chain recomputed with plain SHA-256 (links all consistent) is reported as recomputed without the key', () => {
    const { db, log } = fresh(10);
    db.prepare("UPDATE audit_log SET host = 'exfil.example' WHERE id = 6").run();
    rechain(db, 6, (_seq, prev, row) => oldFormula(prev, row));
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(6);
    expect(v.problems[0]).toMatchObject({ kind: 'chain_recomputed', seq: 6, to: 10 });
    expect(v.problems[0]!.message).toMatch(/plain SHA-256/);
  });

  it('the whole chain recomputed from row 1 with plain SHA-256 is found too', () => {
    const { db, log } = fresh(5);
    rechain(db, 1, (_seq, prev, row) => oldFormula(prev, row));
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.problems[0]).toMatchObject({ kind: 'chain_recomputed', seq: 1, to: 5 });
  });

  it('a chain recomputed with the right formula under a wrong key is reported', () => {
    const { db, log } = fresh(10);
    db.prepare('UPDATE audit_log SET status = 201 WHERE id = 3').run();
    rechain(db, 3, (seq, prev, row) => keyedHash(OTHER_KEY, seq, prev, row));
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.problems[0]).toMatchObject({ kind: 'chain_recomputed', seq: 3, to: 10 });
    expect(v.problems[0]!.message).toMatch(/another key/);
  });

  it('a tampered head is reported: edited counts, a forged MAC, a deleted head', () => {
    const { db, log } = fresh(10);
    // Delete the tail and make the head agree, without the key: the head's MAC no longer verifies.
    db.prepare('DELETE FROM audit_log WHERE id > 8').run();
    const last = allRows(db).at(-1)!;
    db.prepare('UPDATE audit_head SET last_seq = 8, row_count = 8, last_hash = ?').run(last.hash);
    let v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.head.status).toBe('invalid');
    expect(v.problems.map((p) => p.kind)).toContain('head_invalid');
    // A MAC computed with another key does not verify either.
    db.prepare('UPDATE audit_head SET mac = ?').run(crypto.createHmac('sha256', OTHER_KEY).update('x').digest('hex'));
    expect(log.verify().head.status).toBe('invalid');
    db.prepare('DELETE FROM audit_head').run();
    v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.kind)).toEqual(['head_missing']);
  });
});

describe('verifying in chunks (what audit.verify runs)', () => {
  it('gives the same report as a one-pass verify across chunk boundaries, and checks only rows that existed when it started', async () => {
    const { db, clock, log } = fresh(4500);
    db.prepare('DELETE FROM audit_log WHERE id = 2500').run();
    db.prepare("UPDATE audit_log SET path = '/x' WHERE id = 4100").run();
    const pending = log.verifyInChunks();
    // Rows appended while it runs are left for next time (they are written between chunks).
    appendRequests(log, clock, 3, 4500);
    const chunked = await pending;
    const whole = log.verify();
    expect(chunked.rows).toBe(4499);
    expect(chunked.problems.map((p) => [p.kind, p.seq])).toEqual([
      ['rows_missing', 2500],
      ['row_edited', 4100],
    ]);
    expect(whole.problems.map((p) => [p.kind, p.seq])).toEqual(chunked.problems.map((p) => [p.kind, p.seq]));
    expect(whole.rows).toBe(4502);
  });
});

describe('audit chain across restarts', () => {
  it('a restart continues the chain from the signed head: seqs and links carry on, and the log verifies', () => {
    const { file, db, clock, log } = fresh(4);
    const lastHash = allRows(db).at(-1)!.hash;
    db.close();
    const db2 = openDb(file);
    const log2 = new AuditLog(db2, clock, 25, KEY);
    expect(log2.opening).toBeNull();
    appendRequests(log2, clock, 3, 4);
    const rows = allRows(db2);
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(rows[4]!.prev_hash).toBe(lastHash);
    expect(log2.verify()).toMatchObject({ ok: true, rows: 7 });
    expect(log.unwritten).toBe(0);
  });

  it('rows deleted from the end while the daemon was down stay reported after it writes new rows', () => {
    const { file, db, clock } = fresh(6);
    db.prepare('DELETE FROM audit_log WHERE id > 4').run();
    db.close();
    const db2 = openDb(file);
    const log2 = new AuditLog(db2, clock, 25, KEY);
    expect(log2.opening).toEqual({ kind: 'tail_missing', head_last_seq: 6, table_last_seq: 4 });
    appendRequests(log2, clock, 3, 6);
    const v = log2.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(5);
    expect(v.problems[0]).toMatchObject({ kind: 'rows_missing', seq: 5, to: 6 });
    // The daemon also wrote down what it found when it opened the log.
    expect(log2.tail(50, { event: 'audit_tail_missing' })).toHaveLength(1);
  });

  it('a head found missing at start is re-signed, and verify keeps saying so after later writes', () => {
    const { file, db, clock } = fresh(5);
    db.prepare('DELETE FROM audit_log WHERE id > 3').run();
    db.prepare('DELETE FROM audit_head').run();
    db.close();
    const db2 = openDb(file);
    const log2 = new AuditLog(db2, clock, 25, KEY);
    expect(log2.opening).toMatchObject({ kind: 'head_reset' });
    appendRequests(log2, clock, 2, 5);
    const v = log2.verify();
    expect(v.ok).toBe(false);
    expect(v.head.status).toBe('ok');
    expect(v.problems.map((p) => p.kind)).toEqual(['head_reset']);
    expect(v.reason).toMatch(/cannot be ruled out/);
  });

  it('a daemon started with another key does not accept the stored head', () => {
    const { file, db, clock } = fresh(3);
    db.close();
    const db2 = openDb(file);
    const log2 = new AuditLog(db2, clock, 25, OTHER_KEY);
    expect(log2.opening).toMatchObject({ kind: 'head_reset' });
    expect(log2.verify().ok).toBe(false);
  });
});

describe('re-anchoring a chain written before the HMAC chain', () => {
  /** A database at schema version 5 with `n` rows written the way the pre-0006 code wrote them. */
  function legacyDatabase(n: number, clock: FakeClock): string {
    const file = tempFile();
    const db = openDb(
      file,
      loadMigrations().filter((m) => m.version < 6),
    );
    const insert = db.prepare(
      `INSERT INTO audit_log (ts, event, client, host, port, method, path, verdict, rule_id, credential, status, bytes, duration_ms, detail, prev_hash, hash)
       VALUES (@ts, @event, @client, @host, @port, @method, @path, @verdict, @rule_id, @credential, @status, @bytes, @duration_ms, @detail, @prev_hash, @hash)`,
    );
    let prev = '0'.repeat(64);
    for (let i = 0; i < n; i++) {
      const row = {
        ts: clock.iso(),
        event: 'request',
        client: '127.0.0.1',
        host: 'api.openai.com',
        port: 443,
        method: 'GET',
        path: `/old/${i}`,
        verdict: 'allow',
        rule_id: null,
        credential: 'old',
        status: 200,
        bytes: 10,
        duration_ms: 1.5,
        detail: null,
      };
      const hash = oldFormula(prev, row);
      insert.run({ ...row, prev_hash: prev, hash });
      prev = hash;
      clock.advance(1000);
    }
    expect(db.pragma('user_version', { simple: true })).toBe(5);
    db.close();
    return file;
  }

  it('checks the old rows with the old rule, anchors them once, continues under the HMAC and says so', () => {
    const clock = new FakeClock();
    const file = legacyDatabase(5, clock);
    const db = openDb(file);
    const anchoredAt = clock.iso();
    const log = new AuditLog(db, clock, 25, KEY);
    expect(log.opening).toEqual({ kind: 'anchored', legacy_rows: 5, legacy_last_seq: 5, legacy_ok: true, legacy_first_bad: null });
    appendRequests(log, clock, 3);
    const v = log.verify();
    expect(v).toMatchObject({ ok: true, rows: 9 }); // 5 legacy + the audit_anchored row + 3
    expect(v.segments).toEqual([
      { kind: 'legacy_sha256', from: 1, to: 5, rows: 5, ok: true, anchored_at: anchoredAt },
      { kind: 'hmac', from: 6, to: 9, rows: 4, ok: true, anchored_at: null },
    ]);
    const rows = allRows(db);
    expect(rows[5]).toMatchObject({ id: 6, event: 'audit_anchored', prev_hash: rows[4]!.hash });
    expect(rows[5]!.detail).toMatch(/rows 1–5: legacy SHA-256 chain/);

    // Only once: a restart does not anchor again.
    db.close();
    const db2 = openDb(file);
    const log2 = new AuditLog(db2, clock, 25, KEY);
    expect(log2.opening).toBeNull();
    expect(log2.verify()).toMatchObject({ ok: true, rows: 9 });
  });

  it('after the anchor, an edited legacy row and legacy rows recomputed with the old (public) rule are both found', () => {
    const clock = new FakeClock();
    const file = legacyDatabase(6, clock);
    const db = openDb(file);
    const log = new AuditLog(db, clock, 25, KEY);
    appendRequests(log, clock, 2);

    db.prepare("UPDATE audit_log SET path = '/edited' WHERE id = 2").run();
    let v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.problems[0]).toMatchObject({ kind: 'row_edited', seq: 2 });
    expect(v.segments[0]).toMatchObject({ kind: 'legacy_sha256', ok: false });

    // Recompute the legacy range with the public rule: its rows verify again, but the anchored hash and
    // the first HMAC row's link no longer fit.
    rechain(db, 2, (seq, prev, row) => (seq <= 6 ? oldFormula(prev, row) : row.hash));
    v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.problems.find((p) => p.kind === 'legacy_rewritten')).toMatchObject({ seq: 6, to: 6 });
  });

  it('an empty pre-0006 database just starts a keyed chain (nothing to anchor)', () => {
    const clock = new FakeClock();
    const file = legacyDatabase(0, clock);
    const db = openDb(file);
    const log = new AuditLog(db, clock, 25, KEY);
    expect(log.opening).toBeNull();
    appendRequests(log, clock, 2);
    expect(log.verify()).toMatchObject({ ok: true, rows: 2, segments: [{ kind: 'hmac', from: 1, to: 2 }] });
  });
});
