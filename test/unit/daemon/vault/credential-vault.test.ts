/** The credential vault over a real SQLite database: CRUD, phantom lookup, host binding, secrets at rest. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CredentialVault, type NewCredential } from '../../../../src/daemon/vault/credential-vault.js';
import { phantomCore } from '../../../../src/daemon/vault/phantom.js';
import { SluiceError } from '../../../../src/shared/protocol/error-codes.js';
import { memoryVault, type MemoryVault } from '../memory-vault.js';

const made: MemoryVault[] = [];
const dirs: string[] = [];

afterEach(() => {
  for (const m of made.splice(0)) if (m.db.open) m.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function setup(file?: string): MemoryVault {
  const m = memoryVault(file);
  made.push(m);
  return m;
}

function cred(name: string, extra: Partial<NewCredential> = {}): NewCredential {
  return { name, kind: 'api-key', hosts: ['api.anthropic.com'], header: 'x-api-key', secret: `sk-ant-api03-${name}-SECRET-0123456789`, ...extra };
}

function sluiceCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof SluiceError ? err.code : `not a SluiceError: ${String(err)}`;
  }
  return undefined;
}

describe('CredentialVault', () => {
  it('adds a credential with a provider-shaped phantom and default limits, and returns its secret', () => {
    const { vault, clock } = setup();
    const row = vault.add(cred('work'));
    expect(row).toMatchObject({
      name: 'work',
      kind: 'api-key',
      hosts: ['api.anthropic.com'],
      header: 'x-api-key',
      format: null,
      max_concurrent: 8,
      queue_timeout_ms: 0,
      created_at: clock.iso(),
    });
    expect(row.phantom).toMatch(/^sk-ant-api03-SLUICE[A-Za-z0-9]{40}$/);
    expect(vault.get('work')?.phantom).toBe(row.phantom);
    expect(vault.secret('work')).toBe('sk-ant-api03-work-SECRET-0123456789');
  });

  it('gives each credential a different phantom', () => {
    const { vault } = setup();
    const a = vault.add(cred('a'));
    const b = vault.add(cred('b'));
    expect(a.phantom).not.toBe(b.phantom);
  });

  it('finds a credential by its phantom core and nothing for an unknown core', () => {
    const { vault } = setup();
    const row = vault.add(cred('work'));
    expect(vault.byCore(phantomCore(row.phantom))).toMatchObject({ row: { name: 'work' }, slot: 'secret' });
    expect(vault.byCore('SLUICE' + 'x'.repeat(40))).toBeUndefined();
  });

  it('binds a credential to the hosts its globs match, case-insensitively, and to no other', () => {
    const { vault } = setup();
    const row = vault.add(cred('work', { hosts: ['*.anthropic.com', 'api.example.com'] }));
    expect(vault.isBoundTo(row, 'api.anthropic.com')).toBe(true);
    expect(vault.isBoundTo(row, 'API.EXAMPLE.COM')).toBe(true);
    expect(vault.isBoundTo(row, 'api.openai.com')).toBe(false);
    expect(vault.isBoundTo(row, 'anthropic.com.evil.example')).toBe(false);
    expect(vault.boundTo('api.anthropic.com').map((c) => c.name)).toEqual(['work']);
  });

  it('refuses a duplicate name with already_exists and keeps the original', () => {
    const { vault } = setup();
    const first = vault.add(cred('work'));
    expect(sluiceCode(() => vault.add(cred('work', { secret: 'sk-other' })))).toBe('already_exists');
    expect(vault.get('work')?.phantom).toBe(first.phantom);
    expect(vault.secret('work')).toBe('sk-ant-api03-work-SECRET-0123456789');
  });

  it('refuses a name another namespace (a pool) already holds', () => {
    const { repo, key, clock } = setup();
    const vault = new CredentialVault(repo, key, clock, (n) => n === 'team-pool');
    expect(sluiceCode(() => vault.add(cred('team-pool')))).toBe('already_exists');
    expect(vault.list()).toEqual([]);
  });

  it('keeps the ciphertext bytes identical when an update carries no secret', () => {
    const { vault, clock } = setup();
    const before = vault.add(cred('work'));
    clock.advance(5_000);
    const after = vault.update('work', { hosts: ['api.anthropic.com', 'console.anthropic.com'], max_concurrent: 3 });
    expect(after.hosts).toEqual(['api.anthropic.com', 'console.anthropic.com']);
    expect(after.max_concurrent).toBe(3);
    expect(after.updated_at).toBe(clock.iso());
    expect(after.sealed.iv.equals(before.sealed.iv)).toBe(true);
    expect(after.sealed.ct.equals(before.sealed.ct)).toBe(true);
    expect(after.sealed.tag.equals(before.sealed.tag)).toBe(true);
    expect(after.phantom).toBe(before.phantom);
  });

  it('re-seals and serves the new secret when an update carries one, keeping the phantom', () => {
    const { vault } = setup();
    const before = vault.add(cred('work'));
    expect(vault.secret('work')).toBe('sk-ant-api03-work-SECRET-0123456789');
    const after = vault.update('work', { secret: 'sk-ant-api03-ROTATED-secret' });
    expect(after.sealed.ct.equals(before.sealed.ct)).toBe(false);
    expect(after.phantom).toBe(before.phantom);
    expect(vault.secret('work')).toBe('sk-ant-api03-ROTATED-secret');
  });

  it('answers not_found when updating or removing a credential that does not exist', () => {
    const { vault } = setup();
    expect(sluiceCode(() => vault.update('ghost', { max_concurrent: 2 }))).toBe('not_found');
    expect(sluiceCode(() => vault.remove('ghost'))).toBe('not_found');
  });

  it('removes a credential, its phantom lookup and its secret', () => {
    const { vault } = setup();
    const row = vault.add(cred('work'));
    vault.secret('work');
    vault.remove('work');
    expect(vault.get('work')).toBeUndefined();
    expect(vault.byCore(phantomCore(row.phantom))).toBeUndefined();
    expect(sluiceCode(() => vault.secret('work'))).toBe('not_found');
    expect(vault.list()).toEqual([]);
  });

  it('reloads credentials a new vault instance finds in the database', () => {
    const { repo, key, clock, vault } = setup();
    const row = vault.add(cred('work'));
    const reopened = new CredentialVault(repo, key, clock);
    expect(reopened.byCore(phantomCore(row.phantom))?.row.name).toBe('work');
    expect(reopened.secret('work')).toBe('sk-ant-api03-work-SECRET-0123456789');
  });

  it('fails verifyKey when the vault is opened with a different master key', () => {
    const { repo, clock, vault } = setup();
    vault.add(cred('work'));
    const wrong = new CredentialVault(repo, crypto.randomBytes(32), clock);
    expect(() => wrong.verifyKey()).toThrow(SluiceError);
    expect(() => wrong.verifyKey()).not.toThrow(/SECRET/);
  });

  it('never writes the secret to the database file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-vault-'));
    dirs.push(dir);
    const file = path.join(dir, 'sluice.db');
    const { db, vault } = setup(file);
    const secret = 'sk-ant-api03-ZZtopSecretMarker4242424242XYZ';
    const row = vault.add(cred('work', { secret }));
    vault.update('work', { header: 'authorization', format: 'Bearer {}' });
    db.pragma('wal_checkpoint(TRUNCATE)');
    const bytes = fs.readFileSync(file);
    // The checkpoint really moved the row into the file: its phantom is there.
    expect(bytes.includes(Buffer.from(row.phantom))).toBe(true);
    expect(bytes.includes(Buffer.from(secret))).toBe(false);
    expect(bytes.includes(Buffer.from('ZZtopSecretMarker4242424242XYZ'))).toBe(false);
    for (const side of ['-wal', '-shm']) {
      if (fs.existsSync(file + side)) expect(fs.readFileSync(file + side).includes(Buffer.from('ZZtopSecretMarker'))).toBe(false);
    }
  });
});
