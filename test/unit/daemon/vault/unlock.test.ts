/** Unlocking the vault at startup: a key is created only for an empty database, and a wrong key stops it. */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { CredentialsRepo } from '../../../../src/daemon/store/credentials-repo.js';
import { openDatabase, type Db } from '../../../../src/daemon/store/database.js';
import { SettingsRepo } from '../../../../src/daemon/store/settings-repo.js';
import { unlockVault } from '../../../../src/daemon/vault/unlock.js';

let dir: string;
let db: Db;
let repo: CredentialsRepo;
let settings: SettingsRepo;
const clock = new FakeClock();

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-unlock-'));
  db = openDatabase(':memory:');
  repo = new CredentialsRepo(db);
  settings = new SettingsRepo(db);
});
afterEach(() => {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const SECRET = 'sk-ant-api03-unlock-test-secret-value';

describe('unlockVault', () => {
  it('creates the key for an empty database and opens the same secrets with it on the next start', () => {
    const cfg = { masterKeyPath: path.join(dir, 'master.key') };
    const vault = unlockVault(cfg, repo, settings, clock);
    expect(fs.existsSync(cfg.masterKeyPath)).toBe(true);
    vault.add({ name: 'work', kind: 'api-key', hosts: ['api.anthropic.com'], secret: SECRET });
    const again = unlockVault(cfg, repo, settings, clock);
    expect(again.secret('work')).toBe(SECRET);
  });

  it('refuses a different key for a database that holds secrets', () => {
    const cfg = { masterKeyPath: path.join(dir, 'master.key') };
    unlockVault(cfg, repo, settings, clock).add({ name: 'work', kind: 'api-key', hosts: ['api.anthropic.com'], secret: SECRET });
    fs.writeFileSync(cfg.masterKeyPath, crypto.randomBytes(32), { mode: 0o600 });
    expect(() => unlockVault(cfg, repo, settings, clock)).toThrow(/not the key this database was sealed with/);
  });

  it('refuses a different key even when no credential remains, because the check value was stored', () => {
    const cfg = { masterKeyPath: path.join(dir, 'master.key') };
    unlockVault(cfg, repo, settings, clock);
    fs.writeFileSync(cfg.masterKeyPath, crypto.randomBytes(32), { mode: 0o600 });
    expect(() => unlockVault(cfg, repo, settings, clock)).toThrow(/not the key/);
  });

  it('refuses to create a new key when the key file is gone but the database holds secrets', () => {
    const cfg = { masterKeyPath: path.join(dir, 'master.key') };
    unlockVault(cfg, repo, settings, clock).add({ name: 'work', kind: 'api-key', hosts: ['api.anthropic.com'], secret: SECRET });
    fs.rmSync(cfg.masterKeyPath);
    expect(() => unlockVault(cfg, repo, settings, clock)).toThrow(/missing/);
    expect(fs.existsSync(cfg.masterKeyPath)).toBe(false);
  });

  it('does not name the secret in its error', () => {
    const cfg = { masterKeyPath: path.join(dir, 'master.key') };
    unlockVault(cfg, repo, settings, clock).add({ name: 'work', kind: 'api-key', hosts: ['api.anthropic.com'], secret: SECRET });
    fs.writeFileSync(cfg.masterKeyPath, crypto.randomBytes(32), { mode: 0o600 });
    expect(() => unlockVault(cfg, repo, settings, clock)).not.toThrow(/unlock-test-secret/);
  });
});
