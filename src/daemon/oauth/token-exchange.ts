/**
 * Token-endpoint interception for OAuth credentials. A refresh request (`grant_type=refresh_token`, JSON or
 * form) carries the agent's refresh phantom, which the credential stage swaps for the real refresh token
 * of exactly one credential: that credential is the response's owner. A 2xx response is rewritten before
 * the agent sees it (every real token becomes the phantom the agent already holds) and the new real tokens
 * are saved to the owner. When the owner cannot be determined the response is still rewritten but nothing
 * is saved: rotating refresh tokens are single-use, and saving to the wrong account would lose both.
 */
import type { Clock } from '../clock.js';
import type { Logger } from '../log.js';
import type { PoolService } from '../pool/pool-service.js';
import type { CredentialVault } from '../vault/credential-vault.js';
import type { OAuthTokens } from '../vault/oauth-secret.js';

/** Placeholder for a token that could not be attributed to any credential (never a real value). */
export const UNATTRIBUTED_TOKEN = 'sluice-unattributed-token';

/** The `grant_type` of a token request body, or null. */
export function grantTypeOf(body: Buffer | null, contentType: string | undefined): string | null {
  if (!body || body.length === 0 || body.length > 64 * 1024) return null;
  const text = body.toString('utf8');
  const ct = (contentType ?? '').toLowerCase();
  if (ct.includes('json') || text.trimStart().startsWith('{')) {
    try {
      const v = (JSON.parse(text) as { grant_type?: unknown }).grant_type;
      return typeof v === 'string' ? v : null;
    } catch {
      return null;
    }
  }
  return new URLSearchParams(text).get('grant_type');
}

interface TokenFields {
  access_token?: string;
  refresh_token?: string;
  id_token?: string;
  expires_in?: number;
}

/** Whose tokens a response carries, and which phantoms the agent holds for them. */
export interface TokenOwner {
  /** The credential whose real refresh token was injected, or null when unknown. */
  credential: string | null;
  /** The pool the agent addressed, when it used a pool phantom. */
  pool: string | null;
}

/** Rewrites token responses and saves the real tokens to their owner. */
export class TokenExchange {
  constructor(
    private readonly vault: CredentialVault,
    private readonly pools: PoolService,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /**
   * Handles a 2xx token response body: saves real tokens to `owner.credential` (if known) and returns the
   * body the agent may see. Bodies that are not token responses come back unchanged. See
   * {@link rewriteAnswer}, which also says when the body must not reach the agent at all.
   */
  rewriteSuccess(body: Buffer, contentType: string | undefined, owner: TokenOwner): Buffer {
    return this.rewriteAnswer(body, contentType, owner).body;
  }

  /**
   * Like {@link rewriteSuccess}, and says when the answer carries tokens sluice cannot read with
   * certainty (a form body labelled JSON, tokens nested or named where sluice does not look): `unreadable`
   * is then the reason, and the caller must fail closed (drop the body). Tokens that could be read are
   * saved to the owner either way, so a rotated refresh token is never lost.
   */
  rewriteAnswer(body: Buffer, contentType: string | undefined, owner: TokenOwner): { body: Buffer; unreadable: string | null } {
    const ct = (contentType ?? '').toLowerCase();
    const isForm = ct.includes('application/x-www-form-urlencoded');
    let fields: TokenFields;
    let json: Record<string, unknown> | null = null;
    let form: URLSearchParams | null = null;
    let unreadable: string | null = null;
    const text = body.toString('utf8');
    const asForm = (): TokenFields => {
      form = new URLSearchParams(text);
      return {
        access_token: form.get('access_token') ?? undefined,
        refresh_token: form.get('refresh_token') ?? undefined,
        id_token: form.get('id_token') ?? undefined,
        expires_in: Number(form.get('expires_in')) || undefined,
      };
    };
    if (isForm) fields = asForm();
    else {
      try {
        const parsed = JSON.parse(text) as unknown;
        if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
          return { body, unreadable: hiddenTokenKey(parsed, 0) ? 'tokens nested where sluice does not look' : null };
        }
        json = parsed as Record<string, unknown>;
        fields = json as TokenFields;
        if (hiddenTokenKey(json, 0)) unreadable = 'tokens nested where sluice does not look';
      } catch {
        // Mislabelled (text/plain, none) form answers still carry real tokens: fail closed and parse them.
        fields = asForm();
        if (ct.includes('json') && (fields.access_token !== undefined || fields.refresh_token !== undefined)) unreadable = 'a form body labelled JSON';
      }
    }
    if (typeof fields.access_token !== 'string' && typeof fields.refresh_token !== 'string') return { body, unreadable };
    const phantoms = this.phantomsFor(owner);
    if (owner.credential) this.save(owner.credential, fields);
    else this.log.warn('token response could not be attributed to a credential; rewritten, nothing saved', { pool: owner.pool });
    const replace: Record<string, string> = {};
    if (typeof fields.access_token === 'string') replace.access_token = phantoms.access;
    if (typeof fields.refresh_token === 'string') replace.refresh_token = phantoms.refresh;
    if (typeof fields.id_token === 'string') replace.id_token = resign(fields.id_token);
    if (json) return { body: Buffer.from(JSON.stringify({ ...json, ...replace })), unreadable };
    for (const [k, v] of Object.entries(replace)) form!.set(k, v);
    return { body: Buffer.from(form!.toString()), unreadable };
  }

  /**
   * A token response built from `owner.credential`'s saved tokens, with every token replaced by the phantom
   * the agent holds (the id_token keeps its claims, never its signature). For an agent whose refresh was
   * answered by another one's (single-flight): it gets what that refresh saved, and no real token.
   */
  savedAsPhantoms(owner: TokenOwner): Buffer {
    const phantoms = this.phantomsFor(owner);
    const out: Record<string, unknown> = { access_token: phantoms.access, refresh_token: phantoms.refresh, token_type: 'Bearer' };
    const row = owner.credential ? this.vault.get(owner.credential) : undefined;
    if (row?.kind === 'oauth') {
      const t = this.vault.oauthTokens(row.name);
      if (t.id_token) out.id_token = resign(t.id_token);
      if (t.expires_at !== null) out.expires_in = Math.max(0, Math.round((t.expires_at - this.clock.now()) / 1000));
    }
    return Buffer.from(JSON.stringify(out));
  }

  private phantomsFor(owner: TokenOwner): { access: string; refresh: string } {
    if (owner.pool && this.pools.has(owner.pool)) {
      const p = this.pools.get(owner.pool);
      return { access: p.phantom, refresh: p.phantom_refresh ?? UNATTRIBUTED_TOKEN };
    }
    const row = owner.credential ? this.vault.get(owner.credential) : undefined;
    if (row) return { access: row.phantom, refresh: row.phantom_refresh ?? UNATTRIBUTED_TOKEN };
    return { access: UNATTRIBUTED_TOKEN, refresh: UNATTRIBUTED_TOKEN };
  }

  /** Stores a token response's real tokens on `name`, keeping fields the response did not renew. */
  save(name: string, f: TokenFields): void {
    const old = this.vault.oauthTokens(name);
    const next: OAuthTokens = {
      ...old,
      access_token: f.access_token ?? old.access_token,
      refresh_token: f.refresh_token ?? old.refresh_token,
      id_token: f.id_token ?? old.id_token,
      expires_at: typeof f.expires_in === 'number' && f.expires_in > 0 ? this.clock.now() + f.expires_in * 1000 : old.expires_at,
    };
    this.vault.saveOAuthTokens(name, next);
    this.log.info('saved refreshed oauth tokens', { credential: name, expires_at: next.expires_at ? new Date(next.expires_at).toISOString() : null });
  }
}

/** Token-like keys: access/refresh/id token in snake or camel case. */
const TOKEN_KEY = /^(access|refresh|id)_?token$/i;
/** The top-level keys {@link TokenExchange.rewriteAnswer} reads and rewrites. */
const READ_KEYS = new Set(['access_token', 'refresh_token', 'id_token']);

/** True when `v` holds a token-like string key sluice does not rewrite (nested, or camel case at the top). */
function hiddenTokenKey(v: unknown, depth: number): boolean {
  if (depth > 32 || !v || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some((x) => hiddenTokenKey(x, depth + 1));
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (typeof x === 'string' && TOKEN_KEY.test(k) && !(depth === 0 && READ_KEYS.has(k))) return true;
    if (typeof x === 'object' && hiddenTokenKey(x, depth + 1)) return true;
  }
  return false;
}

/**
 * An id_token handed to the agent keeps its header and claims (agents read claims such as the account id)
 * but never its real signature.
 */
export function resign(jwt: string): string {
  const parts = jwt.split('.');
  if (parts.length !== 3) return UNATTRIBUTED_TOKEN;
  return `${parts[0]}.${parts[1]}.${PHANTOM_ID_SIGNATURE}`;
}

/** The signature segment every id_token handed to the agent carries instead of the real one. */
export const PHANTOM_ID_SIGNATURE = Buffer.from('sluice-phantom-signature').toString('base64url');
