/**
 * Which real secrets are masked in responses, and with what: every secret the vault holds (API keys; OAuth
 * access, refresh and id tokens), each mapped to the phantom the agent holds for it — a pool member's to
 * the pool's phantom. The masker is built once and rebuilt only when the vault's or the pools' version
 * moves, never per request.
 */
import { PHANTOM_ID_SIGNATURE } from '../oauth/token-exchange.js';
import type { PoolService } from '../pool/pool-service.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import { SecretMasker, type MaskPair } from './secret-masker.js';

/** Hands out the current {@link SecretMasker}. */
export class MaskPairSource {
  private masker: SecretMasker = new SecretMasker([]);
  private vaultVersion = -1;
  private poolsVersion = -1;

  constructor(
    private readonly vault: CredentialVault,
    private readonly pools: PoolService | null = null,
  ) {}

  /** The masker for the credentials as they are now (cached until they change). */
  current(): SecretMasker {
    const v = this.vault.version;
    const p = this.pools?.version ?? 0;
    if (v !== this.vaultVersion || p !== this.poolsVersion) {
      this.masker = new SecretMasker(this.pairs());
      this.vaultVersion = v;
      this.poolsVersion = p;
    }
    return this.masker;
  }

  /** The secret→phantom pairs of every credential. */
  pairs(): MaskPair[] {
    const out: MaskPair[] = [];
    for (const cred of this.vault.list()) {
      const poolName = this.pools?.poolOf(cred.name) ?? null;
      const pool = poolName ? this.pools!.get(poolName) : null;
      try {
        if (cred.kind !== 'oauth') {
          out.push({ credential: cred.name, secret: this.vault.secret(cred.name), phantom: pool?.phantom ?? cred.phantom });
          continue;
        }
        const t = this.vault.oauthTokens(cred.name);
        out.push({ credential: cred.name, secret: t.access_token, phantom: pool?.phantom ?? cred.phantom });
        const refreshPhantom = pool?.phantom_refresh ?? cred.phantom_refresh;
        if (refreshPhantom) out.push({ credential: cred.name, secret: t.refresh_token, phantom: refreshPhantom });
        // An id_token's header and claims are what the agent already sees; its signature is the secret part.
        // Masking the signature turns a whole id_token into exactly the re-signed one the agent was given.
        const sig = t.id_token?.split('.')[2];
        if (sig) out.push({ credential: cred.name, secret: sig, phantom: PHANTOM_ID_SIGNATURE });
      } catch {
        // A secret the master key cannot open is never injected either, so it cannot come back.
      }
    }
    return out;
  }
}
