/**
 * Opens the vault at startup. The master key may only be created when the database holds no secrets yet;
 * a key that does not match the one the secrets were sealed with stops the daemon (a new key would make
 * every stored secret unreadable).
 */
import type { Clock } from '../clock.js';
import type { DaemonConfig } from '../config.js';
import type { CredentialsRepo } from '../store/credentials-repo.js';
import type { SettingsRepo } from '../store/settings-repo.js';
import { CredentialVault } from './credential-vault.js';
import { keyCheckValue, loadOrCreateMasterKey } from './master-key.js';

const CHECK_KEY = 'master_key_check';

/** Loads (or creates) the master key, verifies it against the DB, and returns the vault. */
export function unlockVault(
  cfg: Pick<DaemonConfig, 'masterKeyPath'>,
  repo: CredentialsRepo,
  settings: SettingsRepo,
  clock: Clock,
  isNameTaken: (name: string) => boolean = () => false,
): CredentialVault {
  const stored = settings.get(CHECK_KEY);
  const empty = repo.count() === 0 && stored === undefined;
  const { key } = loadOrCreateMasterKey(cfg.masterKeyPath, empty);
  const check = keyCheckValue(key);
  if (stored !== undefined && stored !== check) {
    throw new Error(`master key ${cfg.masterKeyPath} is not the key this database was sealed with; restore the right key file`);
  }
  if (stored === undefined) settings.set(CHECK_KEY, check);
  const vault = new CredentialVault(repo, key, clock, isNameTaken);
  vault.verifyKey();
  return vault;
}
