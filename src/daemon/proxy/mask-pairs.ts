/**
 * Which real secrets are masked in responses, and with what: every secret the vault holds (API keys; OAuth
 * access, refresh and id tokens), each mapped to the phantom the agent holds for it — a pool member's to
 * the pool's phantom. The masker is built once and rebuilt only when the vault's or the pools' version
 * moves, never per request. Secrets that leave the vault (an OAuth refresh replaces tokens that stay valid
 * upstream until they expire) stay masked for the life of the process, up to a bound.
 */
import { PHANTOM_ID_SIGNATURE } from '../oauth/token-exchange.js';
import type { PoolService } from '../pool/pool-service.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import { SecretMasker, type MaskPair } from './secret-masker.js';

/** How many secrets that left the vault stay masked (refreshed access tokens stay valid until they expire). */
const MAX_RETIRED = 64;

/** Hands out the current {@link SecretMasker}. */
export class MaskPairSource {
  private masker: SecretMasker = new SecretMasker([]);
  private vaultVersion = -1;
  private poolsVersion = -1;
  /** The pairs of the last build, to find secrets that left the vault. */
  private last: MaskPair[] = [];
  /**
   * Secrets that are no longer stored (a refreshed OAuth token, a replaced or removed key) but may still be
   * valid upstream until they expire: still masked, newest kept, at most {@link MAX_RETIRED}.
   */
  private retired = new Map<string, MaskPair>();

  constructor(
    private readonly vault: CredentialVault,
    private readonly pools: PoolService | null = null,
  ) {}

  /** The masker for the credentials as they are now (cached until they change). */
  current(): SecretMasker {
    const v = this.vault.version;
    const p = this.pools?.version ?? 0;
    if (v !== this.vaultVersion || p !== this.poolsVersion) {
      const now = this.pairs();
      const current = new Set(now.map((x) => x.secret));
      for (const old of this.last) {
        if (current.has(old.secret)) continue;
        this.retired.delete(old.secret);
        this.retired.set(old.secret, old);
      }
      for (const s of current) this.retired.delete(s);
      while (this.retired.size > MAX_RETIRED) this.retired.delete(this.retired.keys().next().value!);
      this.last = now;
      // Current pairs first: a secret listed twice is masked with its current phantom.
      this.masker = new SecretMasker([...now, ...this.retired.values()]);
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
