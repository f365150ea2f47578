/** The master key file: created 0600 with 32 random bytes, refused when missing, short or readable by others. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { keyCheckValue, loadOrCreateMasterKey, MASTER_KEY_BYTES } from '../../../../src/daemon/vault/master-key.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-key-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function writeKey(file: string, bytes: Buffer, mode: number): void {
  fs.writeFileSync(file, bytes);
  fs.chmodSync(file, mode);
}

describe('loadOrCreateMasterKey', () => {
  it('creates a 32-byte key file with mode 0600 when allowed', () => {
    const file = path.join(dir, 'master.key');
    const { key, created } = loadOrCreateMasterKey(file, true);
    expect(created).toBe(true);
    expect(key).toHaveLength(MASTER_KEY_BYTES);
    expect(MASTER_KEY_BYTES).toBe(32);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file).equals(key)).toBe(true);
  });

  it('loads the same key on the next start instead of making a new one', () => {
    const file = path.join(dir, 'master.key');
    const first = loadOrCreateMasterKey(file, true);
    const second = loadOrCreateMasterKey(file, true);
    expect(second.created).toBe(false);
    expect(second.key.equals(first.key)).toBe(true);
  });

  it('makes a different key each time one is created', () => {
    const a = loadOrCreateMasterKey(path.join(dir, 'a.key'), true).key;
    const b = loadOrCreateMasterKey(path.join(dir, 'b.key'), true).key;
    expect(a.equals(b)).toBe(false);
  });

  it('refuses a missing key when it may not create one, and creates nothing', () => {
    const file = path.join(dir, 'master.key');
    expect(() => loadOrCreateMasterKey(file, false)).toThrow(/missing/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('refuses a key file of the wrong length', () => {
    const file = path.join(dir, 'master.key');
    writeKey(file, Buffer.alloc(31, 1), 0o600);
    expect(() => loadOrCreateMasterKey(file, true)).toThrow(/exactly 32 bytes/);
    writeKey(file, Buffer.alloc(33, 1), 0o600);
    expect(() => loadOrCreateMasterKey(file, true)).toThrow(/exactly 32 bytes/);
  });

  it('refuses a key file readable by its group or by others', () => {
    const file = path.join(dir, 'master.key');
    writeKey(file, Buffer.alloc(32, 7), 0o640);
    expect(() => loadOrCreateMasterKey(file, true)).toThrow(/readable by other users/);
    fs.chmodSync(file, 0o604);
    expect(() => loadOrCreateMasterKey(file, true)).toThrow(/readable by other users/);
    fs.chmodSync(file, 0o600);
    expect(loadOrCreateMasterKey(file, true).key.equals(Buffer.alloc(32, 7))).toBe(true);
  });
});

describe('keyCheckValue', () => {
  it('is stable for one key, differs between keys and does not contain the key', () => {
    const k1 = Buffer.alloc(32, 1);
    const k2 = Buffer.alloc(32, 2);
    expect(keyCheckValue(k1)).toBe(keyCheckValue(Buffer.from(k1)));
    expect(keyCheckValue(k1)).not.toBe(keyCheckValue(k2));
    expect(keyCheckValue(k1)).not.toContain(k1.toString('hex'));
  });
});
