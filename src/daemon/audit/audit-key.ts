/**
 * The audit chain's key: derived from the master key with HKDF-SHA256 under its own label, so it differs
 * from the key that seals secrets, and it is never stored (it is derived again at every start).
 */
import { deriveSubkey } from '../vault/master-key.js';

/** The HKDF info label; changing it changes every row's HMAC. */
export const AUDIT_KEY_INFO = 'sluice audit chain v1';

/** Derives the 32-byte audit chain key from the 32-byte master key. */
export function deriveAuditKey(masterKey: Buffer): Buffer {
  return deriveSubkey(masterKey, AUDIT_KEY_INFO);
}
