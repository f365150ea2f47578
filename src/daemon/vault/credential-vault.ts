/**
 * The credential service: stores secrets sealed with the master key, hands out phantoms, and resolves a
 * phantom back to its credential on the proxy path. Plaintext secrets exist only in this object's memory
 * cache and in the upstream request they are injected into; no method returns one to an RPC caller.
 */
import type { Clock } from '../clock.js';
import type { CredentialKind } from '../../shared/protocol/entities.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import { MAX_CONCURRENT_DEFAULT } from '../../shared/protocol/limits.js';
import { DEFAULT_INJECT, type InjectSite } from '../../shared/protocol/inject-sites.js';
import type { CredentialPatch, CredentialRow, CredentialsRepo } from '../store/credentials-repo.js';
import { hostMatches } from '../policy/host-glob.js';
import { deriveSubkey } from './master-key.js';
import { jwtClaims, parseOAuthSecret, serializeOAuthSecret, type OAuthTokens } from './oauth-secret.js';
import { newJwtPhantom, newPhantom, phantomCore, phantomPrefix } from './phantom.js';
import { open, seal } from './secret-box.js';

/** Which secret of a credential a phantom stands for: the API key, or an OAuth access/refresh token. */
export type SecretSlot = 'secret' | 'access' | 'refresh';

/** A phantom core resolved to its credential and slot. */
export interface CoreMatch {
  row: CredentialRow;
  slot: SecretSlot;
}

/** What `add` needs. */
export interface NewCredential {
  name: string;
  kind: CredentialKind;
  hosts: string[];
  header?: string | undefined;
  format?: string | undefined;
  max_concurrent?: number | undefined;
  queue_timeout_ms?: number | undefined;
  /** OAuth: where refreshes go; `secret` is then the OAuth JSON. */
  token_url?: string | undefined;
  /** Where the phantom is swapped for the secret; default: request headers only. */
  inject?: InjectSite[] | undefined;
  secret: string;
}

/** What `update` may change. `secret` replaces the stored secret; absent fields are kept. */
export interface CredentialUpdate {
  hosts?: string[] | undefined;
  header?: string | null | undefined;
  format?: string | null | undefined;
  max_concurrent?: number | undefined;
  queue_timeout_ms?: number | undefined;
  token_url?: string | undefined;
  inject?: InjectSite[] | undefined;
  secret?: string | undefined;
}

/** Stores credentials and resolves phantoms; keeps an in-memory index rebuilt on every change. */
export class CredentialVault {
  private rows = new Map<string, CredentialRow>();
  private byCoreIndex = new Map<string, CoreMatch>();
  private secrets = new Map<string, string>();
  private oauthCount = 0;
  private changes = 0;

  constructor(
    private readonly repo: CredentialsRepo,
    private readonly key: Buffer,
    private readonly clock: Clock,
    private readonly isNameTaken: (name: string) => boolean = () => false,
  ) {
    this.reload();
  }

  /** Grows on every change to credentials or their secrets (lets callers cache what they derive). */
  get version(): number {
    return this.changes;
  }

  private reload(): void {
    this.changes++;
    this.rows = new Map(this.repo.list().map((r) => [r.name, r]));
    this.oauthCount = [...this.rows.values()].filter((r) => r.kind === 'oauth').length;
    this.byCoreIndex = new Map();
    for (const r of this.rows.values()) {
      this.byCoreIndex.set(phantomCore(r.phantom), { row: r, slot: r.kind === 'oauth' ? 'access' : 'secret' });
      if (r.phantom_refresh) this.byCoreIndex.set(phantomCore(r.phantom_refresh), { row: r, slot: 'refresh' });
    }
    for (const name of [...this.secrets.keys()]) if (!this.rows.has(name)) this.secrets.delete(name);
  }

  /**
   * A key for another purpose derived from the master key under `info` (HKDF; see `deriveSubkey`), so the
   * master key itself never leaves the vault.
   */
  subkey(info: string): Buffer {
    return deriveSubkey(this.key, info);
  }

  /** Decrypts every stored secret once; throws when the master key does not open them. */
  verifyKey(): void {
    for (const r of this.rows.values()) this.secret(r.name);
  }

  /** True when at least one OAuth credential is stored. */
  hasOAuth(): boolean {
    return this.oauthCount > 0;
  }

  /** All credentials by name. */
  list(): CredentialRow[] {
    return [...this.rows.values()];
  }

  /** The credential called `name`, or undefined. */
  get(name: string): CredentialRow | undefined {
    return this.rows.get(name);
  }

  /** The credential (and which of its secrets) whose phantom has this core, or undefined. */
  byCore(core: string): CoreMatch | undefined {
    return this.byCoreIndex.get(core);
  }

  /** The real value a phantom of `slot` stands for. Only the proxy's forward stage may call this. */
  secretFor(name: string, slot: SecretSlot): string {
    if (slot === 'secret') return this.secret(name);
    const t = this.oauthTokens(name);
    return slot === 'access' ? t.access_token : t.refresh_token;
  }

  /** The real tokens of an OAuth credential. */
  oauthTokens(name: string): OAuthTokens {
    const row = this.rows.get(name);
    if (!row || row.kind !== 'oauth') throw new SluiceError('invalid_params', `${name} is not an oauth credential`);
    return parseOAuthSecret(this.secret(name));
  }

  /** Stores new real tokens for an OAuth credential (after a refresh); phantoms stay the same. */
  saveOAuthTokens(name: string, tokens: OAuthTokens): void {
    this.update(name, { secret: serializeOAuthSecret(tokens) });
  }

  /** OAuth credentials whose token URL is `url` (scheme, host and path compared). */
  byTokenUrl(host: string, path: string): CredentialRow[] {
    // Only OAuth credentials have a token URL; asked for every POST, so skip the scan when there are none.
    if (this.oauthCount === 0) return [];
    return this.list().filter((r) => {
      if (!r.token_url) return false;
      try {
        const u = new URL(r.token_url);
        return u.hostname.toLowerCase() === host.toLowerCase() && (u.pathname || '/') === path;
      } catch {
        return false;
      }
    });
  }

  /** True when any host glob of `cred` matches `host`. */
  isBoundTo(cred: CredentialRow, host: string): boolean {
    return cred.hosts.some((g) => hostMatches(g, host));
  }

  /** Credentials bound to `host`. */
  boundTo(host: string): CredentialRow[] {
    return this.list().filter((c) => this.isBoundTo(c, host));
  }

  /** The plaintext secret of `name`. Only the proxy's forward stage may call this. */
  secret(name: string): string {
    let s = this.secrets.get(name);
    if (s === undefined) {
      const row = this.rows.get(name);
      if (!row) throw new SluiceError('not_found', `no credential named ${name}`);
      try {
        s = open(this.key, name, row.sealed);
      } catch (err) {
        throw new SluiceError('internal', `cannot decrypt credential ${name}: wrong master key or corrupted row`, { cause: err });
      }
      this.secrets.set(name, s);
    }
    return s;
  }

  /** Adds a credential with a fresh phantom. Refuses a duplicate name (including a pool's name). */
  add(c: NewCredential): CredentialRow {
    if (this.rows.has(c.name) || this.isNameTaken(c.name)) {
      throw new SluiceError('already_exists', `a credential or pool named ${c.name} already exists`);
    }
    let secret = c.secret;
    let phantom: string;
    let phantomRefresh: string | null = null;
    if (c.kind === 'oauth') {
      if (!c.token_url) throw new SluiceError('invalid_params', 'an oauth credential needs --token-url');
      const tokens = parseOAuthSecret(c.secret);
      secret = serializeOAuthSecret(tokens);
      phantom = newJwtPhantom(jwtClaims(tokens.access_token) ?? { sub: `sluice:${c.name}` });
      phantomRefresh = newPhantom(phantomPrefix(tokens.refresh_token, []).replace(/^sk-$/, 'rt_'));
    } else {
      phantom = newPhantom(phantomPrefix(c.secret, c.hosts));
    }
    const row = this.repo.insert(
      {
        name: c.name,
        kind: c.kind,
        hosts: c.hosts,
        header: c.header ?? null,
        format: c.format ?? null,
        phantom,
        phantom_refresh: phantomRefresh,
        token_url: c.kind === 'oauth' ? c.token_url! : null,
        inject: c.inject ?? [...DEFAULT_INJECT],
        sealed: seal(this.key, c.name, secret),
        max_concurrent: c.max_concurrent ?? MAX_CONCURRENT_DEFAULT,
        queue_timeout_ms: c.queue_timeout_ms ?? 0,
      },
      this.clock.iso(),
    );
    this.reload();
    return row;
  }

  /** Updates a credential; a patch without `secret` leaves the stored ciphertext untouched. */
  update(name: string, u: CredentialUpdate): CredentialRow {
    const patch: CredentialPatch = {
      hosts: u.hosts,
      header: u.header,
      format: u.format,
      max_concurrent: u.max_concurrent,
      queue_timeout_ms: u.queue_timeout_ms,
      token_url: u.token_url,
      inject: u.inject,
    };
    if (u.secret !== undefined) {
      const kind = this.rows.get(name)?.kind;
      const text = kind === 'oauth' ? serializeOAuthSecret(parseOAuthSecret(u.secret)) : u.secret;
      patch.sealed = seal(this.key, name, text);
    }
    const row = this.repo.update(name, patch, this.clock.iso());
    if (!row) throw new SluiceError('not_found', `no credential named ${name}`);
    if (u.secret !== undefined) this.secrets.delete(name);
    this.reload();
    return row;
  }

  /** Deletes a credential and its secret. */
  remove(name: string): void {
    if (!this.repo.remove(name)) throw new SluiceError('not_found', `no credential named ${name}`);
    this.secrets.delete(name);
    this.reload();
  }

  /** Every plaintext secret currently known (API keys and OAuth tokens), for redaction. */
  knownSecrets(): string[] {
    const out: string[] = [];
    for (const r of this.list()) {
      if (r.kind !== 'oauth') out.push(this.secret(r.name));
      else {
        const t = this.oauthTokens(r.name);
        out.push(t.access_token, t.refresh_token);
        if (t.id_token) out.push(t.id_token.slice(t.id_token.lastIndexOf('.') + 1));
      }
    }
    return out;
  }
}
