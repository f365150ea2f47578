/**
 * Moves the database's WAL checkpoints off the proxy's thread. SQLite checkpoints inside the commit that
 * pushes the WAL past `wal_autocheckpoint` pages: that commit (an audit flush, on the proxy's thread) then
 * copies ~4 MB into the database file and fsyncs twice. On a busy disk that froze the proxy for 50–100 ms
 * every few thousand requests (a measured audit flush of 75 rows: 1–2 ms normally, up to 106 ms with a
 * checkpoint in it). A worker thread with its own connection checkpoints instead; the daemon's connection
 * keeps a much higher threshold as a fallback, so the WAL stays bounded even if the worker falls behind or
 * dies (then the default threshold comes back).
 *
 * The worker starts only once the WAL has grown (an idle or lightly used daemon, and every test daemon,
 * never pays for a thread); checking the WAL's size every few seconds costs one stat().
 */
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log.js';
import type { Db } from './database.js';

/** SQLite's default threshold (pages), restored whenever the worker is not running. */
const DEFAULT_AUTOCHECKPOINT = 1000;
/** The fallback threshold while the worker runs (~40 MB of WAL with 4 KiB pages). */
const FALLBACK_AUTOCHECKPOINT = 10_000;

/** Options of {@link WalCheckpointer}. */
export interface WalCheckpointerOptions {
  /** The worker starts once the WAL file is larger than this (bytes). */
  startAboveBytes?: number;
  /** How often the WAL's size is looked at before the worker runs (ms). */
  pollMs?: number;
  /** How often the worker checkpoints (ms). */
  intervalMs?: number;
}

/** Owns the checkpoint worker of one database; see the module comment. */
export class WalCheckpointer {
  private worker: Worker | null = null;
  private poll: ReturnType<typeof setInterval> | null = null;
  private stopped = false;
  private readonly walPath: string;

  /** Watches `file` (the database `db` has open) and starts the worker when its WAL grows. */
  constructor(
    private readonly db: Db,
    private readonly file: string,
    private readonly log: Logger,
    private readonly o: WalCheckpointerOptions = {},
  ) {
    this.walPath = `${file}-wal`;
    this.poll = setInterval(() => this.check(), o.pollMs ?? 2000);
    this.poll.unref();
  }

  /** True while the worker checkpoints (for tests and status). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** Looks at the WAL's size now and starts the worker when it is over the threshold. */
  check(): void {
    if (this.stopped || this.worker) return;
    let size = 0;
    try {
      size = fs.statSync(this.walPath).size;
    } catch {
      return; // no WAL yet
    }
    if (size > (this.o.startAboveBytes ?? 1 << 20)) this.startWorker();
  }

  private startWorker(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    const worker = new Worker(new URL('./wal-checkpoint-worker.js', import.meta.url), {
      workerData: { file: this.file, intervalMs: this.o.intervalMs ?? 500 },
    });
    worker.unref();
    this.worker = worker;
    this.db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT}`);
    const gone = (err: unknown): void => {
      if (this.worker !== worker) return;
      this.worker = null;
      if (this.stopped) return;
      // Back to SQLite's own checkpoints on the daemon's connection; nothing is retried.
      this.db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT}`);
      this.log.warn('WAL checkpoint worker stopped; checkpointing on the main thread again', { err });
    };
    worker.once('error', gone);
    worker.once('exit', (code) => gone(code === 0 ? null : `exit code ${code}`));
  }

  /**
   * Stops the worker (its connection closed) and restores SQLite's default threshold, so the daemon's own
   * close runs the final checkpoint as before. Resolves once the worker is gone (at most ~2 s).
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
    const worker = this.worker;
    this.worker = null;
    if (worker) {
      const exited = new Promise<void>((r) => worker.once('exit', () => r()));
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(timer);
    }
    try {
      this.db.pragma(`wal_autocheckpoint = ${DEFAULT_AUTOCHECKPOINT}`);
    } catch {
      // The database may already be closed by a caller that stopped us late.
    }
  }
}
