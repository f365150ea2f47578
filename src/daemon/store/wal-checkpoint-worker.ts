/**
 * Worker thread of wal-checkpointer.ts: its own connection to the daemon's database, running a PASSIVE WAL
 * checkpoint every `intervalMs` (copying committed pages into the database file and syncing it), so the
 * proxy's thread never waits for that copy and its fsyncs. PASSIVE never blocks a writer or a reader; a
 * checkpoint that cannot finish (a busy lock) is simply tried again next time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { file, intervalMs } = workerData as { file: string; intervalMs: number };
const db = new Database(file, { timeout: 1000, fileMustExist: true });
const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // A locked or busy database: the next round tries again (and the daemon's own fallback threshold holds).
  }
}, intervalMs);

parentPort!.on('message', (m: unknown) => {
  if (m !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort!.close();
});
