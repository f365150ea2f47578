/**
 * The WAL checkpoint worker (src/daemon/store/wal-checkpointer.ts), run from the build like the daemon runs
 * it (the worker is a compiled file of its own): it starts only once the WAL grows, checkpoints while the
 * daemon's connection keeps writing (which no longer checkpoints by itself), hands checkpoints back to
 * SQLite's default when it stops or fails.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import type { Db } from '../../src/daemon/store/database.js';
import type { WalCheckpointer } from '../../src/daemon/store/wal-checkpointer.js';
import { ROOT } from '../fakes/daemon-harness.js';
import { waitFor } from './helpers.js';

const built = (p: string) => import(pathToFileURL(path.join(ROOT, 'dist', p)).href);
const { openDatabase } = (await built('daemon/store/database.js')) as typeof import('../../src/daemon/store/database.js');
const { WalCheckpointer: Checkpointer } = (await built('daemon/store/wal-checkpointer.js')) as typeof import('../../src/daemon/store/wal-checkpointer.js');

const warnings: unknown[] = [];
const log = { debug() {}, info() {}, warn: (_m: string, f?: unknown) => void warnings.push(f), error() {} };
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  warnings.length = 0;
});

function freshDb(): { db: Db; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-wal-'));
  const file = path.join(dir, 'sluice.db');
  const db = openDatabase(file);
  cleanups.push(() => {
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { db, file };
}

/** Writes `rows` settings rows of ~1 KB in transactions of 50 (like audit flushes). */
function write(db: Db, rows: number, tag: string): void {
  const ins = db.prepare('INSERT OR REPLACE INTO settings (key, value) VALUES (?, ?)');
  const pad = 'x'.repeat(1000);
  for (let i = 0; i < rows; i += 50)
    db.transaction(() => {
      for (let j = i; j < Math.min(rows, i + 50); j++) ins.run(`${tag}-${j}`, pad);
    })();
}

const autocheckpoint = (db: Db) => db.pragma('wal_autocheckpoint', { simple: true }) as number;

describe('WalCheckpointer', () => {
  test('starts only once the WAL grows; then the worker checkpoints and the writer does not', async () => {
    const { db, file } = freshDb();
    const cp: WalCheckpointer = new Checkpointer(db, file, log, { startAboveBytes: 256 * 1024, pollMs: 60_000, intervalMs: 50 });
    cleanups.push(() => cp.stop());
    write(db, 20, 'small');
    cp.check();
    expect(cp.running).toBe(false);
    expect(autocheckpoint(db)).toBe(1000);
    write(db, 600, 'grow'); // ~600 KB of WAL
    cp.check();
    expect(cp.running).toBe(true);
    expect(autocheckpoint(db)).toBe(10_000);
    // The database file only grows through checkpoints; with the writer's threshold at 10,000 pages, this
    // much writing leaves it to the worker.
    const before = fs.statSync(file).size;
    write(db, 2000, 'more');
    await waitFor(() => fs.statSync(file).size > before + 1024 * 1024, 'the worker copied the WAL into the database file', 10_000);
    await cp.stop();
    expect(cp.running).toBe(false);
    expect(autocheckpoint(db)).toBe(1000);
    expect(warnings).toEqual([]);
  });

  test('a worker that cannot open the database hands checkpoints back to SQLite and says so', async () => {
    const { db, file } = freshDb();
    // A WAL that looks big next to a database that does not exist: the worker's open fails.
    const dir = path.dirname(file);
    const missing = path.join(dir, 'missing.db');
    fs.writeFileSync(`${missing}-wal`, Buffer.alloc(2048));
    const cp: WalCheckpointer = new Checkpointer(db, missing, log, { startAboveBytes: 1024, pollMs: 60_000 });
    cleanups.push(() => cp.stop());
    cp.check();
    await waitFor(() => !cp.running, 'the failed worker was noticed', 10_000);
    expect(autocheckpoint(db)).toBe(1000);
    expect(warnings.length).toBe(1);
  });
});
