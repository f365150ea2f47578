/** Key/value settings that must survive restarts (global cap, master-key check value). */
import type { Db } from './database.js';

/** Reads and writes rows of the `settings` table. */
export class SettingsRepo {
  constructor(private readonly db: Db) {}

  /** The stored value, or undefined. */
  get(key: string): string | undefined {
    const r = this.db.prepare('SELECT value FROM settings WHERE key = ?').get(key) as { value: string } | undefined;
    return r?.value;
  }

  /** Stores `value` under `key`, replacing any previous value. */
  set(key: string, value: string): void {
    this.db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Every row whose key starts with `prefix`. */
  withPrefix(prefix: string): { key: string; value: string }[] {
    return this.db.prepare('SELECT key, value FROM settings WHERE substr(key, 1, ?) = ? ORDER BY key').all(prefix.length, prefix) as {
      key: string;
      value: string;
    }[];
  }

  /** Removes `key`. */
  delete(key: string): void {
    this.db.prepare('DELETE FROM settings WHERE key = ?').run(key);
  }
}
