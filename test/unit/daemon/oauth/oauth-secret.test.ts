/**
 * Parsing the secret of an OAuth credential (issue 7): the user's own JSON, a Codex `auth.json`
 * (`{tokens: {…}}`) and a Claude Code credentials file (`{claudeAiOauth: {accessToken, …}}`), and errors
 * that name the missing field but never echo a value.
 */
import { describe, expect, it } from 'vitest';
import { jwtClaims, parseOAuthSecret, serializeOAuthSecret } from '../../../../src/daemon/vault/oauth-secret.js';
import { SluiceError } from '../../../../src/shared/protocol/error-codes.js';
import { CODEX_CLAIM, realTokens } from './oauth-setup.js';

const ACCESS = 'at-REAL-ACCESS-7f3a9c0d1e2b4a5968778695a4b3c2d1';
const REFRESH = 'rt-REAL-REFRESH-0a1b2c3d4e5f60718293a4b5c6d7e8f9';
const ID = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.REAL-ID-SIGNATURE-abcdef0123456789';

/** The SluiceError `fn` throws (fails the test when it throws nothing or something else). */
function errorOf(fn: () => unknown): SluiceError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SluiceError) return err;
    throw new Error(`not a SluiceError: ${String(err)}`);
  }
  throw new Error('did not throw');
}

describe('parseOAuthSecret: accepted shapes', () => {
  it('reads the plain {access_token, refresh_token, expires_at, id_token} JSON', () => {
    const t = parseOAuthSecret(
      JSON.stringify({ access_token: ACCESS, refresh_token: REFRESH, expires_at: 1_900_000_000_000, id_token: ID, client_id: 'app_1' }),
    );
    expect(t).toEqual({ access_token: ACCESS, refresh_token: REFRESH, expires_at: 1_900_000_000_000, id_token: ID, client_id: 'app_1', account_id: null });
  });

  it('leaves optional fields null when absent', () => {
    expect(parseOAuthSecret(JSON.stringify({ access_token: ACCESS, refresh_token: REFRESH }))).toEqual({
      access_token: ACCESS,
      refresh_token: REFRESH,
      expires_at: null,
      id_token: null,
      client_id: null,
      account_id: null,
    });
  });

  it('reads a Codex auth.json ({OPENAI_API_KEY, tokens: {id_token, access_token, refresh_token, account_id}, last_refresh})', () => {
    const real = realTokens('codex-acct');
    const authJson = {
      OPENAI_API_KEY: null,
      tokens: { id_token: real.id_token, access_token: real.access_token, refresh_token: real.refresh_token, account_id: 'codex-acct' },
      last_refresh: '2026-01-01T00:00:00Z',
    };
    const t = parseOAuthSecret(JSON.stringify(authJson, null, 2));
    expect(t.access_token).toBe(real.access_token);
    expect(t.refresh_token).toBe(real.refresh_token);
    expect(t.id_token).toBe(real.id_token);
    expect(t.account_id).toBe('codex-acct');
    // auth.json has no expiry field: it comes from the access token's own `exp` claim (seconds → ms).
    expect(t.expires_at).toBe((jwtClaims(real.access_token)!.exp as number) * 1000);
    // The access token is a JWT whose Codex claim survives parsing untouched.
    expect((jwtClaims(t.access_token)?.[CODEX_CLAIM] as { chatgpt_account_id: string }).chatgpt_account_id).toBe('codex-acct');
  });

  it('takes client_id from the id_token audience and the account id from its Codex claim when the file has neither', () => {
    const real = realTokens('aud-acct');
    const t = parseOAuthSecret(JSON.stringify({ tokens: { access_token: real.access_token, refresh_token: real.refresh_token, id_token: real.id_token } }));
    expect(t.account_id).toBe('aud-acct');
    expect(t.client_id).toBe('app_test_client');
  });

  it('reads a Claude Code credentials file ({claudeAiOauth: {accessToken, refreshToken, expiresAt}}) with expiresAt in ms', () => {
    const file = {
      claudeAiOauth: {
        accessToken: 'sk-ant-oat01-REALaccess',
        refreshToken: 'sk-ant-ort01-REALrefresh',
        expiresAt: 1_767_225_600_000,
        scopes: ['user:inference'],
        subscriptionType: 'max',
      },
    };
    expect(parseOAuthSecret(JSON.stringify(file))).toEqual({
      access_token: 'sk-ant-oat01-REALaccess',
      refresh_token: 'sk-ant-ort01-REALrefresh',
      expires_at: 1_767_225_600_000,
      id_token: null,
      client_id: null,
      account_id: null,
    });
  });

  it('normalises expires_at given in seconds, as a numeric string, or as an ISO date to epoch ms', () => {
    const base = { access_token: ACCESS, refresh_token: REFRESH };
    expect(parseOAuthSecret(JSON.stringify({ ...base, expires_at: 1_767_225_600 })).expires_at).toBe(1_767_225_600_000);
    expect(parseOAuthSecret(JSON.stringify({ ...base, expires_at: '1767225600' })).expires_at).toBe(1_767_225_600_000);
    expect(parseOAuthSecret(JSON.stringify({ ...base, expires_at: '1767225600000' })).expires_at).toBe(1_767_225_600_000);
    expect(parseOAuthSecret(JSON.stringify({ ...base, expires_at: '2026-01-01T00:00:00Z' })).expires_at).toBe(Date.UTC(2026, 0, 1));
    expect(parseOAuthSecret(JSON.stringify({ ...base, expires_at: 'not a date' })).expires_at).toBeNull();
  });

  it('takes client_id from the top level of a wrapped file', () => {
    const t = parseOAuthSecret(JSON.stringify({ client_id: 'app_top', tokens: { access_token: ACCESS, refresh_token: REFRESH } }));
    expect(t.client_id).toBe('app_top');
  });

  it('round-trips through serializeOAuthSecret', () => {
    const t = parseOAuthSecret(
      JSON.stringify({ access_token: ACCESS, refresh_token: REFRESH, expires_at: 1_900_000_000_000, id_token: ID, client_id: 'c', account_id: 'a' }),
    );
    expect(parseOAuthSecret(serializeOAuthSecret(t))).toEqual(t);
  });
});

describe('parseOAuthSecret: errors name the problem, never a value', () => {
  const cases: [string, string, RegExp][] = [
    ['not JSON (a bare token pasted)', ACCESS, /must be JSON/],
    ['truncated JSON holding a token', `{"access_token":"${ACCESS}","refresh_token":"${REFRESH}"`, /must be JSON/],
    ['JSON null', 'null', /JSON object/],
    ['a JSON string holding a token', JSON.stringify(ACCESS), /JSON object/],
    ['no access token', JSON.stringify({ refresh_token: REFRESH, id_token: ID }), /no access_token/],
    ['an empty access token', JSON.stringify({ access_token: '', refresh_token: REFRESH }), /no access_token/],
    ['a non-string access token', JSON.stringify({ access_token: 42, refresh_token: REFRESH }), /no access_token/],
    ['no refresh token', JSON.stringify({ access_token: ACCESS, id_token: ID }), /no refresh_token/],
    ['Codex auth.json without a refresh token', JSON.stringify({ tokens: { access_token: ACCESS, id_token: ID } }), /no refresh_token/],
    ['Claude Code file without a refresh token', JSON.stringify({ claudeAiOauth: { accessToken: ACCESS, expiresAt: 1 } }), /no refresh_token/],
    ['an API key where an OAuth document belongs', JSON.stringify({ OPENAI_API_KEY: ACCESS, tokens: null }), /no access_token/],
  ];
  for (const [what, text, message] of cases) {
    it(`rejects ${what} with invalid_params and no secret in the message`, () => {
      const err = errorOf(() => parseOAuthSecret(text));
      expect(err.code).toBe('invalid_params');
      expect(err.message).toMatch(message);
      for (const secret of [ACCESS, REFRESH, ID, 'REAL-ACCESS', 'REAL-REFRESH', 'REAL-ID']) expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err.details ?? null)).not.toContain('REAL');
      expect(String(err.stack)).not.toContain('REAL-');
    });
  }
});

describe('jwtClaims', () => {
  it('decodes the payload of a JWT without verifying it', () => {
    const t = realTokens('claims-acct');
    expect(jwtClaims(t.access_token)).toMatchObject({ sub: 'claims-acct', [CODEX_CLAIM]: { chatgpt_account_id: 'claims-acct' } });
  });

  it('returns null for opaque tokens, bad base64/JSON payloads and non-object payloads', () => {
    expect(jwtClaims(REFRESH)).toBeNull();
    expect(jwtClaims('a.b')).toBeNull();
    expect(jwtClaims('a.!!!notjson.c')).toBeNull();
    expect(jwtClaims(`h.${Buffer.from('[1,2]').toString('base64url')}.s`)).toBeNull();
    expect(jwtClaims(`h.${Buffer.from('"x"').toString('base64url')}.s`)).toBeNull();
  });
});
