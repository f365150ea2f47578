/** AES-256-GCM sealing bound to the credential name. */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { open, seal } from '../../../../src/daemon/vault/secret-box.js';

const key = crypto.randomBytes(32);
const SECRET = 'sk-ant-api03-real-secret-value-ÄÖÜ-✓';

describe('secret-box', () => {
  it('opens what it sealed, including non-ASCII text', () => {
    expect(open(key, 'work', seal(key, 'work', SECRET))).toBe(SECRET);
  });

  it('does not carry the plaintext in the ciphertext', () => {
    const s = seal(key, 'work', SECRET);
    expect(s.ct.includes(Buffer.from(SECRET))).toBe(false);
    expect(s.iv).toHaveLength(12);
    expect(s.tag).toHaveLength(16);
  });

  it('uses a fresh IV each time, so sealing the same secret twice gives different ciphertexts', () => {
    const a = seal(key, 'work', SECRET);
    const b = seal(key, 'work', SECRET);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.ct.equals(b.ct)).toBe(false);
  });

  it('refuses to open with a different key', () => {
    const sealed = seal(key, 'work', SECRET);
    expect(() => open(crypto.randomBytes(32), 'work', sealed)).toThrow();
  });

  it('refuses to open under a different credential name (a ciphertext cannot move rows)', () => {
    const sealed = seal(key, 'work', SECRET);
    expect(() => open(key, 'personal', sealed)).toThrow();
  });

  it('refuses a ciphertext with one flipped bit', () => {
    const sealed = seal(key, 'work', SECRET);
    const ct = Buffer.from(sealed.ct);
    ct[0] = ct[0]! ^ 1;
    expect(() => open(key, 'work', { ...sealed, ct })).toThrow();
  });
});
