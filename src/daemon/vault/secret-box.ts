/** AES-256-GCM sealing of secrets, bound to the credential name so a ciphertext cannot be moved to another row. */
import crypto from 'node:crypto';
import type { SealedSecret } from '../store/credentials-repo.js';

const aad = (name: string) => Buffer.from(`sluice:credential:${name}`, 'utf8');

/** Encrypts `plaintext` for credential `name` with a fresh random 96-bit IV. */
export function seal(key: Buffer, name: string, plaintext: string): SealedSecret {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(name));
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return { iv, ct, tag: cipher.getAuthTag() };
}

/** Decrypts a sealed secret; throws when the key, name or ciphertext do not match (GCM auth failure). */
export function open(key: Buffer, name: string, sealed: SealedSecret): string {
  const decipher = crypto.createDecipheriv('aes-256-gcm', key, sealed.iv);
  decipher.setAAD(aad(name));
  decipher.setAuthTag(sealed.tag);
  return Buffer.concat([decipher.update(sealed.ct), decipher.final()]).toString('utf8');
}
