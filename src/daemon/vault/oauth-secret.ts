/**
 * The secret of an OAuth credential: a JSON document with the real tokens. Parsing accepts the user's
 * own JSON and the shapes of the files agents keep (Codex `auth.json`: `{tokens: {access_token,
 * refresh_token, id_token, account_id}}`; Claude Code credentials: `{claudeAiOauth: {accessToken,
 * refreshToken, expiresAt}}`). Errors name the missing field, never a value.
 */
import { SluiceError } from '../../shared/protocol/error-codes.js';

/** The real tokens of one OAuth account. */
export interface OAuthTokens {
  access_token: string;
  refresh_token: string;
  /** Epoch ms when the access token expires, if known. */
  expires_at: number | null;
  id_token: string | null;
  client_id: string | null;
  account_id: string | null;
}

const str = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);

function expiry(v: unknown): number | null {
  if (typeof v === 'number' && Number.isFinite(v)) return v < 1e12 ? v * 1000 : v;
  if (typeof v === 'string' && v) {
    const n = Number(v);
    if (Number.isFinite(n)) return n < 1e12 ? n * 1000 : n;
    const t = Date.parse(v);
    return Number.isFinite(t) ? t : null;
  }
  return null;
}

/** Parses the JSON a user supplies (or an agent's credentials file). Throws `invalid_params` when unusable. */
export function parseOAuthSecret(text: string): OAuthTokens {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new SluiceError('invalid_params', 'an oauth secret must be JSON with access_token and refresh_token');
  }
  if (!doc || typeof doc !== 'object') throw new SluiceError('invalid_params', 'an oauth secret must be a JSON object');
  const root = doc as Record<string, unknown>;
  const inner = (root.tokens ?? root.claudeAiOauth ?? root) as Record<string, unknown>;
  const access = str(inner.access_token) ?? str(inner.accessToken);
  const refresh = str(inner.refresh_token) ?? str(inner.refreshToken);
  if (!access) throw new SluiceError('invalid_params', 'the oauth secret has no access_token');
  if (!refresh) throw new SluiceError('invalid_params', 'the oauth secret has no refresh_token');
  const idToken = str(inner.id_token) ?? str(inner.idToken);
  const idClaims = idToken ? jwtClaims(idToken) : null;
  const aud = idClaims?.aud;
  return {
    access_token: access,
    refresh_token: refresh,
    expires_at: expiry(inner.expires_at ?? inner.expiresAt) ?? expiry(jwtClaims(access)?.exp),
    id_token: idToken,
    // Codex's auth.json has no client_id, but its id_token's audience is the client the refresh needs.
    client_id: str(inner.client_id) ?? str(root.client_id) ?? str(Array.isArray(aud) ? aud[0] : aud),
    account_id: str(inner.account_id) ?? str(inner.accountId) ?? accountIdOf(idClaims) ?? accountIdOf(jwtClaims(access)),
  };
}

/** Serialises tokens for sealing. */
export function serializeOAuthSecret(t: OAuthTokens): string {
  return JSON.stringify(t);
}

/** Decodes a JWT's payload claims without verifying it; null when `token` is not a JWT. */
export function jwtClaims(token: string): Record<string, unknown> | null {
  const parts = token.split('.');
  if (parts.length !== 3) return null;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as unknown;
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? (claims as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The ChatGPT account id in a token's claims (where Codex reads it), if any. */
export function accountIdOf(claims: Record<string, unknown> | null): string | null {
  const auth = claims?.['https://api.openai.com/auth'];
  if (!auth || typeof auth !== 'object') return null;
  const id = (auth as Record<string, unknown>).chatgpt_account_id;
  return typeof id === 'string' && id.length > 0 ? id : null;
}
