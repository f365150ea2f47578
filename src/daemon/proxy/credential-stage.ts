/**
 * Step 3 of the pipeline: find phantoms in a request's headers, URL and body and swap them for real
 * secrets where the credential is bound to the destination host. Phantoms bound elsewhere are reported as
 * leaks (the caller blocks the request); unknown phantom-shaped tokens are stripped. A credential bound to
 * the host may inject its header when the request carries no phantom and no such header, but only when it
 * is the single credential bound to that host (never guess between accounts).
 */
import type { CredentialRow } from '../store/credentials-repo.js';
import type { PoolService } from '../pool/pool-service.js';
import type { CredentialVault, SecretSlot } from '../vault/credential-vault.js';
import { PHANTOM_CORE_RE, PHANTOM_MARKER } from '../vault/phantom.js';
import { MaskPairSource } from './mask-pairs.js';
import type { SecretMasker } from './secret-masker.js';
import { newReport, rewritePhantoms, type PhantomLookup, type PhantomTarget, type RewriteReport } from './phantom-rewriter.js';

/** The rewritten request parts and what was found. */
export interface CredentialResult {
  headers: Record<string, string | string[]>;
  path: string;
  body: Buffer | null;
  report: RewriteReport;
  /** The credential whose permits apply (first used), or null. */
  credential: string | null;
  /** The pool that credential was chosen from, or null. */
  pool: string | null;
}

/** Headers never scanned or forwarded as-is: they describe the hop, not the request. */
const SKIP_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection']);

/** Resolves phantoms for one destination host. */
export class CredentialStage {
  private masks: MaskPairSource | null = null;

  constructor(
    private readonly vault: CredentialVault,
    private readonly pools: PoolService | null = null,
  ) {}

  /**
   * A lookup for requests to `host`. Access phantoms and API keys are bound to the credential's hosts;
   * a refresh-token phantom is bound only to its token URL's host and only inside a refresh grant.
   */
  lookupFor(host: string, refreshGrant = false): PhantomLookup {
    return (core: string): PhantomTarget | undefined => {
      const m = this.vault.byCore(core);
      if (m) {
        const phantom = m.slot === 'refresh' ? m.row.phantom_refresh! : m.row.phantom;
        return { credential: m.row.name, phantom, bound: this.bound(m.row, m.slot, host, refreshGrant), label: m.row.name, slot: m.slot };
      }
      const p = this.pools?.byCore(core);
      if (!p || p.pool.members.length === 0) return undefined;
      const member = this.vault.get(this.pools!.activeMember(p.pool));
      if (!member) return undefined;
      const slot: SecretSlot = p.slot === 'refresh' ? 'refresh' : member.kind === 'oauth' ? 'access' : 'secret';
      const phantom = p.slot === 'refresh' ? p.pool.phantom_refresh! : p.pool.phantom;
      return { credential: member.name, phantom, bound: this.bound(member, slot, host, refreshGrant), label: `${p.pool.name}/${member.name}`, pool: p.pool.name, slot };
    };
  }

  private bound(row: CredentialRow, slot: SecretSlot, host: string, refreshGrant: boolean): boolean {
    if (slot !== 'refresh') return this.vault.isBoundTo(row, host);
    if (!refreshGrant || !row.token_url) return false;
    try {
      return new URL(row.token_url).hostname.toLowerCase() === host.toLowerCase();
    } catch {
      return false;
    }
  }

  /**
   * Rewrites headers, path and body for a request to `host`. `refreshGrant` is true only for a
   * `grant_type=refresh_token` request to a known token URL: the one place refresh phantoms resolve.
   */
  apply(host: string, headers: Record<string, string | string[] | undefined>, path: string, body: Buffer | null, refreshGrant = false): CredentialResult {
    const report = newReport();
    const lookup = this.lookupFor(host, refreshGrant);
    const secretOf = (t: PhantomTarget) => this.vault.secretFor(t.credential, t.slot ?? 'secret');
    const out: Record<string, string | string[]> = {};
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      // proxy-* headers (the proxy access token above all) describe the hop to sluice and never go upstream.
      if (name.startsWith('proxy-')) continue;
      if (SKIP_HEADERS.has(name)) {
        if (name === 'host') out[name] = value;
        continue;
      }
      out[name] = Array.isArray(value) ? value.map((v) => rewritePhantoms(v, lookup, secretOf, report)) : rewritePhantoms(value, lookup, secretOf, report);
    }
    const newPath = rewritePhantoms(path, lookup, secretOf, report);
    let newBody = body;
    if (body && body.includes('SLUICE')) {
      newBody = Buffer.from(rewritePhantoms(body.toString('latin1'), lookup, (t) => Buffer.from(secretOf(t), 'utf8').toString('latin1'), report), 'latin1');
    }
    if (report.used.size === 0 && report.leaked.length === 0) this.maybeInject(host, out, report);
    const first = report.used.values().next();
    if (!first.done && first.value.pool && first.value.slot === 'access' && typeof out['chatgpt-account-id'] === 'string') {
      // Codex names its account in a header too; behind a pool it must name the member actually serving.
      const account = this.vault.oauthTokens(first.value.credential).account_id;
      if (account) out['chatgpt-account-id'] = account;
    }
    return { headers: out, path: newPath, body: newBody, report, credential: first.done ? null : first.value.credential, pool: first.done ? null : (first.value.pool ?? null) };
  }

  /** True when any OAuth credential exists (lets callers skip OAuth-only work). */
  hasOAuth(): boolean {
    return this.vault.hasOAuth();
  }

  /**
   * The OAuth credentials whose access token the phantoms in `texts` would inject now (pool phantoms
   * resolved to their active member). Admission refreshes any that expired before rewriting, so an expired
   * token is never sent.
   */
  oauthCredentialsIn(texts: readonly (string | Buffer | null | undefined)[]): string[] {
    const out = new Set<string>();
    for (const t of texts) {
      if (!t || !t.includes(PHANTOM_MARKER)) continue;
      const text = typeof t === 'string' ? t : t.toString('latin1');
      for (const m of text.matchAll(PHANTOM_CORE_RE)) {
        const hit = this.vault.byCore(m[0]);
        if (hit) {
          if (hit.row.kind === 'oauth' && hit.slot === 'access') out.add(hit.row.name);
          continue;
        }
        const p = this.pools?.byCore(m[0]);
        if (p && p.slot === 'access' && p.pool.members.length > 0) {
          const member = this.vault.get(this.pools!.activeMember(p.pool));
          if (member?.kind === 'oauth') out.add(member.name);
        }
      }
    }
    return [...out];
  }

  /**
   * The masker that replaces every real secret the vault holds with the phantom the agent holds for it (a
   * pool member's with the pool's phantom), for everything flowing back to the agent. Cached; rebuilt only
   * when credentials or pools change.
   */
  masker(): SecretMasker {
    return (this.masks ??= new MaskPairSource(this.vault, this.pools)).current();
  }

  /** `text` with every real secret replaced by its phantom (see {@link masker}). */
  maskSecrets(text: string): string {
    return this.masker().maskBuffer(Buffer.from(text, 'utf8')).toString('utf8');
  }

  private maybeInject(host: string, headers: Record<string, string | string[]>, report: RewriteReport): void {
    const bound = this.vault.boundTo(host);
    if (bound.length !== 1) return;
    const cred: CredentialRow = bound[0]!;
    if (!cred.header) return;
    const h = cred.header.toLowerCase();
    if (headers[h] !== undefined) return;
    const slot: SecretSlot = cred.kind === 'oauth' ? 'access' : 'secret';
    const secret = this.vault.secretFor(cred.name, slot);
    // A function replacement: `$&`, `$'` and friends in a secret must not be read as patterns.
    headers[h] = (cred.format ?? '{}').replace('{}', () => secret);
    report.used.set(`${cred.name}:${slot}`, { credential: cred.name, phantom: cred.phantom, bound: true, label: cred.name, slot });
  }
}

/** The credential whose refresh token a rewrite injected, when exactly one did; else null (unattributable). */
export function refreshOwnerOf(result: CredentialResult): string | null {
  let owner: string | null = null;
  for (const t of result.report.used.values()) {
    if (t.slot !== 'refresh') continue;
    if (owner !== null && owner !== t.credential) return null;
    owner = t.credential;
  }
  return owner;
}
