/** Schema migrations (forward-only, one transaction each) and the constraints the schema enforces. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { loadMigrations, migrate, openDatabase, type Db } from '../../../../src/daemon/store/database.js';

const open: Db[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const db of open.splice(0)) if (db.open) db.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function emptyDb(): Db {
  const db = new Database(':memory:');
  open.push(db);
  return db;
}

function tempDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-db-'));
  dirs.push(d);
  return d;
}

const version = (db: Db) => db.pragma('user_version', { simple: true }) as number;
const columns = (db: Db, table: string) => (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
const tables = (db: Db) => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[]).map((t) => t.name);

function insertCredential(db: Db, name: string, maxConcurrent?: number): void {
  const cols = ['name', 'kind', 'hosts', 'phantom', 'secret_iv', 'secret_ct', 'secret_tag', 'created_at', 'updated_at'];
  const vals: unknown[] = [name, 'api-key', '["api.example.com"]', `sk-SLUICE-${name}`, Buffer.alloc(12), Buffer.alloc(4), Buffer.alloc(16), 'now', 'now'];
  if (maxConcurrent !== undefined) {
    cols.push('max_concurrent');
    vals.push(maxConcurrent);
  }
  db.prepare(`INSERT INTO credentials (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`).run(...vals);
}

describe('loadMigrations', () => {
  it('loads the shipped migrations numbered 1..N in order', () => {
    const ms = loadMigrations();
    expect(ms.length).toBeGreaterThanOrEqual(2);
    expect(ms.map((m) => m.version)).toEqual(ms.map((_, i) => i + 1));
  });

  it('refuses a directory with a gap in the numbering', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, '0001_first.sql'), 'CREATE TABLE a (x);');
    fs.writeFileSync(path.join(dir, '0003_third.sql'), 'CREATE TABLE c (x);');
    expect(() => loadMigrations(dir)).toThrow(/without gaps/);
  });
});

describe('migrate', () => {
  it('applies every migration to an empty database and sets user_version to their count', () => {
    const all = loadMigrations();
    const db = emptyDb();
    expect(migrate(db, all)).toBe(all.length);
    expect(version(db)).toBe(all.length);
    expect(tables(db)).toEqual(expect.arrayContaining(['audit_log', 'credentials', 'rules', 'settings']));
    expect(columns(db, 'credentials')).toEqual(expect.arrayContaining(['max_concurrent', 'queue_timeout_ms']));
  });

  it('does nothing the second time', () => {
    const all = loadMigrations();
    const db = emptyDb();
    migrate(db, all);
    insertCredential(db, 'kept');
    const schema = db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all();
    expect(migrate(db, all)).toBe(all.length);
    expect(db.prepare('SELECT sql FROM sqlite_master ORDER BY name').all()).toEqual(schema);
    expect((db.prepare('SELECT count(*) AS n FROM credentials').get() as { n: number }).n).toBe(1);
  });

  it('brings a database at every earlier version up to the latest', () => {
    const all = loadMigrations();
    const fresh = emptyDb();
    migrate(fresh, all);
    const expected = db2schema(fresh);
    for (let k = 0; k <= all.length; k++) {
      const db = emptyDb();
      expect(migrate(db, all.slice(0, k))).toBe(k);
      expect(migrate(db, all)).toBe(all.length);
      expect(db2schema(db)).toEqual(expected);
    }
  });

  it('keeps existing credential rows and gives them the default cap when 0002 adds it', () => {
    const all = loadMigrations();
    const db = emptyDb();
    migrate(db, all.slice(0, 1));
    insertCredential(db, 'old');
    migrate(db, all);
    expect(db.prepare('SELECT name, max_concurrent, queue_timeout_ms FROM credentials').all()).toEqual([
      { name: 'old', max_concurrent: 8, queue_timeout_ms: 0 },
    ]);
  });

  it('refuses a database whose version is newer than the migrations it knows', () => {
    const all = loadMigrations();
    const db = emptyDb();
    db.pragma(`user_version = ${all.length + 1}`);
    expect(() => migrate(db, all)).toThrow(/newer than this sluice/);
    expect(version(db)).toBe(all.length + 1);
  });

  it('rolls a failing migration back whole and leaves the version at the last good one', () => {
    const all = loadMigrations();
    const bad = { version: all.length + 1, name: 'broken', sql: 'CREATE TABLE half_done (x); INSERT INTO no_such_table VALUES (1);' };
    const db = emptyDb();
    expect(() => migrate(db, [...all, bad])).toThrow();
    expect(version(db)).toBe(all.length);
    expect(tables(db)).not.toContain('half_done');
  });
});

describe('schema constraints', () => {
  it('rejects max_concurrent 0 and 257 at the SQL level and accepts 1 and 256', () => {
    const db = emptyDb();
    migrate(db);
    expect(() => insertCredential(db, 'zero', 0)).toThrow(/CHECK constraint failed/);
    expect(() => insertCredential(db, 'too-many', 257)).toThrow(/CHECK constraint failed/);
    insertCredential(db, 'one', 1);
    insertCredential(db, 'max', 256);
    expect(() => db.prepare("UPDATE credentials SET max_concurrent = 0 WHERE name = 'one'").run()).toThrow(/CHECK constraint failed/);
    expect(() => db.prepare("UPDATE credentials SET max_concurrent = 257 WHERE name = 'one'").run()).toThrow(/CHECK constraint failed/);
    expect(db.prepare('SELECT name, max_concurrent FROM credentials ORDER BY max_concurrent').all()).toEqual([
      { name: 'one', max_concurrent: 1 },
      { name: 'max', max_concurrent: 256 },
    ]);
  });
});

describe('openDatabase', () => {
  it('works on :memory: and migrates it', () => {
    const db = openDatabase(':memory:');
    open.push(db);
    expect(version(db)).toBe(loadMigrations().length);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
  });

  it('creates an owner-only WAL database file', () => {
    const file = path.join(tempDir(), 'sluice.db');
    const db = openDatabase(file);
    open.push(db);
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  });
});

function db2schema(db: Db): unknown {
  return db.prepare("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name").all();
}
