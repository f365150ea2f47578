/**
 * Opens the daemon's SQLite database (WAL, foreign keys, busy timeout) and brings its schema up to date.
 * The daemon is the only writer; clients go through RPC and never open this file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';

/** The daemon's database handle. */
export type Db = Database.Database;

/** How long a write waits for a lock held by another process. */
export const BUSY_TIMEOUT_MS = 1000;

/** True when `err` is SQLite saying another connection holds the lock. */
export function isBusyError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** Default location of the numbered migration files shipped with the package. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../migrations/', import.meta.url));

/** A migration file: `NNNN_name.sql`, applied in number order. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Reads the migrations in `dir`, sorted by version. Throws on duplicate or malformed numbers. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const out: Migration[] = [];
  for (const file of fs.readdirSync(dir)) {
    const m = /^(\d{4})_([a-z0-9_]+)\.sql$/.exec(file);
    if (!m) continue;
    out.push({ version: Number(m[1]), name: m[2]!, sql: fs.readFileSync(path.join(dir, file), 'utf8') });
  }
  out.sort((a, b) => a.version - b.version);
  out.forEach((m, i) => {
    const prev = out[i - 1];
    if (prev && prev.version === m.version) throw new Error(`two migrations are numbered ${String(m.version).padStart(4, '0')}: ${prev.name} and ${m.name}`);
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 0001, 0002, … without gaps; found ${m.version} at position ${i + 1}`);
  });
  return out;
}

/**
 * Applies every migration newer than `PRAGMA user_version`, each in its own immediate transaction together
 * with the version bump, so a crash leaves the DB at a whole version. Returns the resulting version.
 */
export function migrate(db: Db, migrations: Migration[] = loadMigrations()): number {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = migrations.length;
  if (current > latest) {
    throw new Error(`database schema version ${current} is newer than this sluice (${latest}); upgrade sluice`);
  }
  for (const m of migrations) {
    if (m.version <= current) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return db.pragma('user_version', { simple: true }) as number;
}

/** Opens (creating if needed) the database at `file` with the daemon's pragmas and runs migrations. */
export function openDatabase(file: string, migrations?: Migration[]): Db {
  // A short busy timeout: better-sqlite3 is synchronous, so every wait on a lock held by another process
  // blocks the proxy; writes that fail are retried (audit) or reported (RPC) instead.
  const db = new Database(file, { timeout: BUSY_TIMEOUT_MS });
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    migrate(db, migrations);
    // Opening a WAL database only reads; prove we can write now rather than fail on the first request.
    db.exec('BEGIN IMMEDIATE; ROLLBACK');
  } catch (err) {
    db.close();
    throw err;
  }
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      fs.chmodSync(file + suffix, 0o600);
    } catch {
      // -wal/-shm may not exist yet; they inherit the 0700 directory's protection.
    }
  }
  return db;
}
