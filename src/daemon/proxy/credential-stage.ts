/**
 * Step 3 of the pipeline: find phantoms in a request's headers, URL and body and swap them for real
 * secrets where the credential is bound to the destination host and allows injection at that site
 * (header by default; query, body, path by opt-in). A bound phantom outside its credential's sites stays
 * a phantom (the upstream sees a worthless token) and is reported as not injected. Phantoms bound
 * elsewhere are reported as leaks, and phantom-shaped tokens that match no credential as unknown (the
 * caller refuses both). Escaped, percent-encoded and compressed forms are searched too (see
 * body-decoding.ts); they are never swapped, only classified. A credential bound to the host may inject
 * its header when the request carries no phantom and no such header, but only when it is the single
 * credential bound to that host (never guess between accounts).
 */
import { connectionNamed, isHopByHop } from './hop-by-hop.js';
import type { CredentialRow } from '../store/credentials-repo.js';
import type { PoolService } from '../pool/pool-service.js';
import type { CredentialVault, SecretSlot } from '../vault/credential-vault.js';
import { PHANTOM_CORE_RE, PHANTOM_MARKER } from '../vault/phantom.js';
import { hiddenForms, mayHideForms } from './body-decoding.js';
import { MaskPairSource } from './mask-pairs.js';
import type { SecretMasker } from './secret-masker.js';
import { newReport, rewritePhantoms, scanPhantoms, type InjectSite, type PhantomLookup, type PhantomTarget, type RewriteReport } from './phantom-rewriter.js';

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

const MARKER_BYTES = Buffer.from(PHANTOM_MARKER);

/** Headers never scanned or forwarded as-is besides the hop-by-hop ones: Node sets them for the upstream leg. */
const SKIP_HEADERS = new Set(['host', 'content-length']);

/** Resolves phantoms for one destination host. */
export class CredentialStage {
  private masks: MaskPairSource | null = null;

  constructor(
    private readonly vault: CredentialVault,
    private readonly pools: PoolService | null = null,
  ) {}

  /**
   * A lookup for requests to `host`. Access phantoms and API keys are bound to the credential's hosts;
   * a refresh-token phantom is bound only to its token URL's host and only inside a refresh grant, where
   * it is injected in the body whatever the credential's sites say (that is how refresh grants work).
   * A pool phantom resolves to the active member now, with that member's hosts and sites.
   */
  lookupFor(host: string, refreshGrant = false): PhantomLookup {
    return (core: string): PhantomTarget | undefined => {
      const m = this.vault.byCore(core);
      if (m) {
        const phantom = m.slot === 'refresh' ? m.row.phantom_refresh! : m.row.phantom;
        return {
          credential: m.row.name,
          phantom,
          bound: this.bound(m.row, m.slot, host, refreshGrant),
          label: m.row.name,
          slot: m.slot,
          sites: m.row.inject,
          ...alwaysAt(m.slot, refreshGrant),
        };
      }
      const p = this.pools?.byCore(core);
      if (!p || p.pool.members.length === 0) return undefined;
      const member = this.vault.get(this.pools!.activeMember(p.pool));
      if (!member) return undefined;
      const slot: SecretSlot = p.slot === 'refresh' ? 'refresh' : member.kind === 'oauth' ? 'access' : 'secret';
      const phantom = p.slot === 'refresh' ? p.pool.phantom_refresh! : p.pool.phantom;
      return {
        credential: member.name,
        phantom,
        bound: this.bound(member, slot, host, refreshGrant),
        label: `${p.pool.name}/${member.name}`,
        pool: p.pool.name,
        slot,
        sites: member.inject,
        ...alwaysAt(slot, refreshGrant),
      };
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
   * Rewrites headers, path and body for a request to `host` in one go ({@link applyHead} then
   * {@link applyBody} with an identity body). `refreshGrant` is true only for a `grant_type=refresh_token`
   * request to a known token URL: the one place refresh phantoms resolve.
   */
  apply(host: string, headers: Record<string, string | string[] | undefined>, path: string, body: Buffer | null, refreshGrant = false): CredentialResult {
    const r = this.applyHead(host, headers, path, refreshGrant);
    this.applyBody(host, r, body, null, refreshGrant);
    return r;
  }

  /**
   * Rewrites the request line and headers (what policy, approval and caps are decided on). The body is
   * left for {@link applyBody}, once the request is known to go upstream. May inject a bound
   * credential's header (see the module comment).
   */
  applyHead(host: string, headers: Record<string, string | string[] | undefined>, path: string, refreshGrant = false): CredentialResult {
    const report = newReport();
    const lookup = this.lookupFor(host, refreshGrant);
    const secretOf = (t: PhantomTarget) => this.vault.secretFor(t.credential, t.slot ?? 'secret');
    const out: Record<string, string | string[]> = {};
    const named = connectionNamed(headers.connection);
    for (const name in headers) {
      const value = headers[name];
      if (value === undefined) continue;
      // Hop-by-hop headers, proxy-* ones (the proxy access token above all) included, never go upstream.
      if (isHopByHop(name, named)) continue;
      if (SKIP_HEADERS.has(name)) {
        if (name === 'host') out[name] = value;
        continue;
      }
      if (typeof value === 'string') {
        out[name] = rewritePhantoms(value, lookup, secretOf, report, 'header');
        scanHidden(value, lookup, report);
      } else {
        out[name] = value.map((v) => rewritePhantoms(v, lookup, secretOf, report, 'header'));
        for (const v of value) scanHidden(v, lookup, report);
      }
    }
    const q = path.indexOf('?');
    const newPath =
      q === -1
        ? rewritePhantoms(path, lookup, secretOf, report, 'path')
        : rewritePhantoms(path.slice(0, q), lookup, secretOf, report, 'path') + rewritePhantoms(path.slice(q), lookup, secretOf, report, 'query');
    scanHidden(path, lookup, report);
    if (report.used.size === 0 && report.leaked.length === 0 && report.unknown === 0) this.maybeInject(host, out, report);
    const first = report.used.values().next();
    if (!first.done && first.value.pool && first.value.slot === 'access' && typeof out['chatgpt-account-id'] === 'string') {
      // Codex names its account in a header too; behind a pool it must name the member actually serving.
      const account = this.vault.oauthTokens(first.value.credential).account_id;
      if (account) out['chatgpt-account-id'] = account;
    }
    return {
      headers: out,
      path: newPath,
      body: null,
      report,
      credential: first.done ? null : first.value.credential,
      pool: first.done ? null : (first.value.pool ?? null),
    };
  }

  /**
   * Rewrites the body of a request whose head {@link applyHead} produced `r`, adding to its report.
   * `decoded` is the identity form of a body sent with a content-encoding (null for an identity body):
   * it is what gets searched, and when a phantom in it must become a secret the decoded, rewritten body is
   * forwarded and the `content-encoding` header dropped (re-compressing would buy nothing on the loopback
   * side and cost CPU). A body that needs no rewrite goes upstream exactly as it came.
   */
  applyBody(host: string, r: CredentialResult, body: Buffer | null, decoded: Buffer | null, refreshGrant = false): void {
    r.body = body;
    const plain = decoded ?? body;
    if (!plain || plain.length === 0) return;
    const hasMarker = plain.indexOf(MARKER_BYTES) !== -1;
    const hidden = mayHideForms(plain);
    if (!hasMarker && !hidden) return;
    const lookup = this.lookupFor(host, refreshGrant);
    const text = plain.toString('latin1');
    if (hasMarker) {
      const usedBefore = r.report.used.size;
      const secretOf = (t: PhantomTarget) => Buffer.from(this.vault.secretFor(t.credential, t.slot ?? 'secret'), 'utf8').toString('latin1');
      const rewritten = rewritePhantoms(text, lookup, secretOf, r.report, 'body');
      if (rewritten !== text) {
        r.body = Buffer.from(rewritten, 'latin1');
        if (decoded) delete r.headers['content-encoding'];
      }
      if (r.credential === null && r.report.used.size > usedBefore) {
        const first = r.report.used.values().next().value!;
        r.credential = first.credential;
        r.pool = first.pool ?? null;
      }
    }
    if (hidden) for (const form of hiddenForms(text)) scanPhantoms(form, lookup, r.report);
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
    if (!cred.header || !cred.inject.includes('header')) return;
    const h = cred.header.toLowerCase();
    if (headers[h] !== undefined) return;
    const slot: SecretSlot = cred.kind === 'oauth' ? 'access' : 'secret';
    const secret = this.vault.secretFor(cred.name, slot);
    // A function replacement: `$&`, `$'` and friends in a secret must not be read as patterns.
    headers[h] = (cred.format ?? '{}').replace('{}', () => secret);
    report.used.set(`${cred.name}:${slot}`, { credential: cred.name, phantom: cred.phantom, bound: true, label: cred.name, slot });
  }
}

/** A refresh phantom inside a refresh grant goes in the body whatever the credential's sites are. */
function alwaysAt(slot: SecretSlot, refreshGrant: boolean): { alwaysAt?: InjectSite } {
  return slot === 'refresh' && refreshGrant ? { alwaysAt: 'body' } : {};
}

/** Searches the decoded forms of a header value or URL (percent-encoding, JSON escapes) for leaks and stale phantoms. */
function scanHidden(text: string, lookup: PhantomLookup, report: RewriteReport): void {
  // Two includes per value; phantoms are plain alphanumerics, so only an escape can hide one.
  if (!text.includes('%') && !text.includes('\\u')) return;
  for (const form of hiddenForms(text)) scanPhantoms(form, lookup, report);
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
