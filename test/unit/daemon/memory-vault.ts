/** A credential vault over a migrated in-memory SQLite database, for daemon unit tests. */
import crypto from 'node:crypto';
import { FakeClock } from '../../../src/daemon/clock.js';
import { CredentialsRepo } from '../../../src/daemon/store/credentials-repo.js';
import { openDatabase, type Db } from '../../../src/daemon/store/database.js';
import { CredentialVault } from '../../../src/daemon/vault/credential-vault.js';

/** A vault and everything it was built from; call `close` when done. */
export interface MemoryVault {
  db: Db;
  repo: CredentialsRepo;
  vault: CredentialVault;
  key: Buffer;
  clock: FakeClock;
  close: () => void;
}

/** Opens a fresh in-memory database, migrates it and wraps it in a vault with a random master key. */
export function memoryVault(file = ':memory:'): MemoryVault {
  const db = openDatabase(file);
  const repo = new CredentialsRepo(db);
  const key = crypto.randomBytes(32);
  const clock = new FakeClock();
  const vault = new CredentialVault(repo, key, clock);
  return { db, repo, vault, key, clock, close: () => db.close() };
}
