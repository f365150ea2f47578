/**
 * The 32-byte master key that encrypts every secret at rest. Created once (0600) on first start; a missing
 * or wrong key on a database that already holds secrets stops the daemon instead of silently starting over.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { SluiceError } from '../../shared/protocol/error-codes.js';

/** Length of the master key in bytes. */
export const MASTER_KEY_BYTES = 32;

/**
 * Loads the key from `file`, creating it when absent and `mayCreate` is true. Throws a clear error when the
 * file is missing (and may not be created), has the wrong length, or is readable by group/others.
 */
export function loadOrCreateMasterKey(file: string, mayCreate: boolean): { key: Buffer; created: boolean } {
  if (!fs.existsSync(file)) {
    if (!mayCreate) {
      throw new SluiceError(
        'internal',
        `master key ${file} is missing but the database already holds secrets; restore the key file (or move the database away to start empty)`,
      );
    }
    const key = crypto.randomBytes(MASTER_KEY_BYTES);
    fs.writeFileSync(file, key, { mode: 0o600, flag: 'wx' });
    return { key, created: true };
  }
  const st = fs.statSync(file);
  if ((st.mode & 0o077) !== 0) {
    throw new SluiceError('internal', `master key ${file} is readable by other users (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`);
  }
  const key = fs.readFileSync(file);
  if (key.length !== MASTER_KEY_BYTES) {
    throw new SluiceError('internal', `master key ${file} must be exactly ${MASTER_KEY_BYTES} bytes (found ${key.length})`);
  }
  return { key, created: false };
}

/** A value derived from the key that proves, without revealing it, that the same key is in use. */
export function keyCheckValue(key: Buffer): string {
  return crypto.createHmac('sha256', key).update('sluice master key check v1').digest('hex');
}

/**
 * A 32-byte key for another purpose (e.g. the audit chain), derived from the master key with HKDF-SHA256
 * under `info`: different labels give independent keys, and none of them reveals the master key.
 */
export function deriveSubkey(key: Buffer, info: string): Buffer {
  return Buffer.from(crypto.hkdfSync('sha256', key, Buffer.alloc(0), info, 32));
}
