/** The keyed, hash-chained audit log on a real SQLite database: append, tail, verify, tamper detection, reopen. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog, keyedHash, legacyHash } from '../../../../src/daemon/audit/audit-log.js';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { openDatabase, type Db } from '../../../../src/daemon/store/database.js';

const KEY = Buffer.alloc(32, 7);
const open: Db[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function memoryLog() {
  const db = openDatabase(':memory:');
  open.push(db);
  const clock = new FakeClock();
  return { db, clock, log: new AuditLog(db, clock, 25, KEY) };
}

function appendRequests(log: AuditLog, clock: FakeClock, n: number): void {
  for (let i = 0; i < n; i++) {
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
}

describe('AuditLog', () => {
  it('verifies a freshly appended chain', () => {
    const { log, clock } = memoryLog();
    appendRequests(log, clock, 5);
    log.append({ event: 'phantom_leak', host: 'evil.example.com', detail: 'phantom of work sent to evil.example.com' });
    expect(log.verify()).toMatchObject({ ok: true, rows: 6, first_bad_id: null, reason: null });
    expect(log.count()).toBe(6);
  });

  it('verifies an empty log', () => {
    const { log } = memoryLog();
    expect(log.verify()).toMatchObject({ ok: true, rows: 0, first_bad_id: null, reason: null });
  });

  it('chains each row to the previous row hash, starting from the genesis hash', () => {
    const { log, clock } = memoryLog();
    appendRequests(log, clock, 3);
    const rows = log.tail(10);
    expect(rows[0]!.prev_hash).toBe('0'.repeat(64));
    expect(rows[1]!.prev_hash).toBe(rows[0]!.hash);
    expect(rows[2]!.prev_hash).toBe(rows[1]!.hash);
    expect(rows[2]!.hash).toBe(keyedHash(KEY, rows[2]!.id, rows[1]!.hash, rows[2]!));
  });

  it('stores the clock time and the supplied fields, with absent fields as null', () => {
    const { log, clock } = memoryLog();
    log.append({ event: 'cred_failover', detail: 'pool:a->b:rate_limited' });
    const [row] = log.tail(1);
    expect(row).toMatchObject({
      ts: clock.iso(),
      event: 'cred_failover',
      detail: 'pool:a->b:rate_limited',
      host: null,
      port: null,
      status: null,
      credential: null,
    });
  });

  it('reports the edited row as first_bad_id when a column is changed with SQL', () => {
    const { db, log, clock } = memoryLog();
    appendRequests(log, clock, 5);
    log.flush();
    const target = log.tail(5)[2]!;
    db.prepare('UPDATE audit_log SET status = 500 WHERE id = ?').run(target.id);
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(target.id);
  });

  it("detects an edit whose forger recomputed that row's hash without the key: that row is named", () => {
    const { db, log, clock } = memoryLog();
    appendRequests(log, clock, 4);
    const rows = log.tail(4);
    // Rewrites row 2's host and its own hash; the next row still links to the old hash.
    const edited = { ...rows[1]!, host: 'exfil.example.com' };
    db.prepare('UPDATE audit_log SET host = ?, hash = ? WHERE id = ?').run(edited.host, legacyHash(edited.prev_hash, edited), edited.id);
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(rows[1]!.id);
    expect(v.reason).toMatch(/plain SHA-256/);
  });

  it('fails verification when a middle row is deleted, naming the missing row', () => {
    const { db, log, clock } = memoryLog();
    appendRequests(log, clock, 5);
    const rows = log.tail(5);
    db.prepare('DELETE FROM audit_log WHERE id = ?').run(rows[2]!.id);
    const v = log.verify();
    expect(v.ok).toBe(false);
    expect(v.first_bad_id).toBe(rows[2]!.id);
  });

  it('returns the last N rows oldest first', () => {
    const { log, clock } = memoryLog();
    appendRequests(log, clock, 6);
    const tail = log.tail(3);
    expect(tail.map((r) => r.path)).toEqual(['/v1/messages/3', '/v1/messages/4', '/v1/messages/5']);
    expect(tail[0]!.id).toBeLessThan(tail[1]!.id);
    expect(log.tail(100)).toHaveLength(6);
  });

  it('writes queued rows when 256 accumulate, without waiting for the flush timer', () => {
    const { db, log, clock } = memoryLog();
    appendRequests(log, clock, 256);
    expect((db.prepare('SELECT count(*) AS n FROM audit_log').get() as { n: number }).n).toBe(256);
  });

  it('keeps rows across reopening the file and continues the chain from the last hash', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-audit-'));
    dirs.push(dir);
    const file = path.join(dir, 'sluice.db');
    const clock = new FakeClock();

    const db1 = openDatabase(file);
    open.push(db1);
    const log1 = new AuditLog(db1, clock, 25, KEY);
    appendRequests(log1, clock, 3);
    log1.flush();
    const lastHash = log1.tail(1)[0]!.hash;
    db1.close();

    const db2 = openDatabase(file);
    open.push(db2);
    const log2 = new AuditLog(db2, clock, 25, KEY);
    expect(log2.count()).toBe(3);
    log2.append({ event: 'daemon_started' });
    const rows = log2.tail(10);
    expect(rows).toHaveLength(4);
    expect(rows[3]!.prev_hash).toBe(lastHash);
    expect(log2.verify()).toMatchObject({ ok: true, rows: 4, first_bad_id: null, reason: null });
  });

  it('a batch that could not be written (database locked) is retried with the same hashes; rows appended meanwhile chain after it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-audit-'));
    dirs.push(dir);
    const file = path.join(dir, 'sluice.db');
    const clock = new FakeClock();
    const db = openDatabase(file);
    open.push(db);
    const log = new AuditLog(db, clock, 25, KEY);
    const troubles: unknown[] = [];
    log.onTrouble = (err) => troubles.push(err);
    appendRequests(log, clock, 3);
    const locker = openDatabase(file);
    open.push(locker);
    locker.exec('BEGIN EXCLUSIVE');
    log.flush();
    expect(troubles).toHaveLength(1);
    expect(log.unwritten).toBe(3);
    appendRequests(log, clock, 2);
    locker.exec('COMMIT');
    log.flush();
    expect(troubles.at(-1)).toBeNull();
    expect(log.unwritten).toBe(0);
    const rows = log.tail(10);
    expect(rows).toHaveLength(5);
    expect(rows.map((r) => r.path)).toEqual(['/v1/messages/0', '/v1/messages/1', '/v1/messages/2', '/v1/messages/0', '/v1/messages/1']);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
    expect(log.verify()).toMatchObject({ ok: true, rows: 5, first_bad_id: null, reason: null });
  });
});
