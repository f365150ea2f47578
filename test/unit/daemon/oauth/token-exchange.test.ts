/**
 * Token-endpoint interception (issue 7): `grantTypeOf` reads a request's grant from JSON or form bodies,
 * and `TokenExchange.rewriteSuccess` turns a 2xx token response into one that holds only phantoms, saving
 * the real tokens to the owner when it is known and saving nothing when it is not (fail closed).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { grantTypeOf, resign, UNATTRIBUTED_TOKEN } from '../../../../src/daemon/oauth/token-exchange.js';
import type { CredentialRow } from '../../../../src/daemon/store/credentials-repo.js';
import { CODEX_CLAIM, decodeJwt, leaked, oauthWorld, realTokens, type OAuthWorld, type RealTokens } from './oauth-setup.js';

const JSON_CT = 'application/json';
const FORM_CT = 'application/x-www-form-urlencoded';

describe('grantTypeOf', () => {
  const b = (s: string) => Buffer.from(s);

  it('reads grant_type from a JSON body (with or without a JSON content type)', () => {
    expect(grantTypeOf(b('{"grant_type":"refresh_token","refresh_token":"x"}'), JSON_CT)).toBe('refresh_token');
    expect(grantTypeOf(b('{"grant_type":"refresh_token"}'), 'application/json; charset=utf-8')).toBe('refresh_token');
    expect(grantTypeOf(b('  {"grant_type":"authorization_code","code":"c"}'), undefined)).toBe('authorization_code');
    expect(grantTypeOf(b('{"grant_type":"urn:ietf:params:oauth:grant-type:device_code"}'), 'text/plain')).toBe('urn:ietf:params:oauth:grant-type:device_code');
  });

  it('reads grant_type from a form body (and from a body with no content type)', () => {
    expect(grantTypeOf(b('grant_type=refresh_token&refresh_token=abc&client_id=app'), FORM_CT)).toBe('refresh_token');
    expect(grantTypeOf(b('client_id=app&grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code'), `${FORM_CT}; charset=utf-8`)).toBe(
      'urn:ietf:params:oauth:grant-type:device_code',
    );
    expect(grantTypeOf(b('grant_type=client_credentials'), undefined)).toBe('client_credentials');
  });

  it('returns null when there is no grant_type, no body, an unreadable JSON body, or a non-string grant', () => {
    expect(grantTypeOf(null, JSON_CT)).toBeNull();
    expect(grantTypeOf(b(''), FORM_CT)).toBeNull();
    expect(grantTypeOf(b('{"refresh_token":"x"}'), JSON_CT)).toBeNull();
    expect(grantTypeOf(b('{"grant_type":'), JSON_CT)).toBeNull();
    expect(grantTypeOf(b('{"grant_type":["refresh_token"]}'), JSON_CT)).toBeNull();
    expect(grantTypeOf(b('refresh_token=x&scope=a'), FORM_CT)).toBeNull();
    expect(grantTypeOf(b('<xml grant_type="refresh_token"/>'), 'application/xml')).toBeNull();
  });

  it('does not parse bodies larger than 64 KiB (a token request is small)', () => {
    const big = b(`grant_type=refresh_token&pad=${'x'.repeat(64 * 1024)}`);
    expect(grantTypeOf(big, FORM_CT)).toBeNull();
  });
});

describe('resign', () => {
  it('keeps header and claims of an id_token and replaces its signature', () => {
    const real = realTokens('resign-acct');
    const out = resign(real.id_token);
    expect(out.split('.').slice(0, 2)).toEqual(real.id_token.split('.').slice(0, 2));
    expect(out.split('.')[2]).not.toBe(real.id_token.split('.')[2]);
    expect(out).not.toContain(real.id_token.split('.')[2]!);
  });

  it('turns a non-JWT id_token into the placeholder', () => {
    expect(resign('opaque-REAL-id-token')).toBe(UNATTRIBUTED_TOKEN);
  });
});

describe('TokenExchange.rewriteSuccess', () => {
  let w: OAuthWorld;
  let a: CredentialRow;
  let b: CredentialRow;
  let aOld: RealTokens;
  let bOld: RealTokens;
  /** Every real token of this test, old and new. */
  let reals: string[];

  beforeEach(() => {
    w = oauthWorld();
    aOld = realTokens('acct-a');
    bOld = realTokens('acct-b');
    a = w.addOAuth('a', aOld, { client_id: 'app_a' });
    b = w.addOAuth('b', bOld);
    reals = [...Object.values(aOld), ...Object.values(bOld)];
  });
  afterEach(() => w.close());

  /** A token-endpoint answer with fresh real tokens for `id`. */
  function answer(id: string, n = 1, extra: Record<string, unknown> = {}) {
    const t = realTokens(id, n);
    reals.push(...Object.values(t), t.id_token.split('.')[2]!, t.access_token.split('.')[2]!);
    return { t, body: { ...t, expires_in: 3600, token_type: 'Bearer', scope: 'openid offline_access', ...extra } };
  }

  /** Asserts `text` carries none of the real tokens seen in this test (signature segments included). */
  function expectNoReal(text: string) {
    expect(leaked(text, reals)).toEqual([]);
  }

  it('JSON response, owner known: the agent gets the credential phantoms; the real tokens are saved to the owner', () => {
    const { t, body } = answer('acct-a');
    const out = w.exchange.rewriteSuccess(Buffer.from(JSON.stringify(body)), 'application/json; charset=utf-8', { credential: 'a', pool: null });
    const got = JSON.parse(out.toString('utf8')) as Record<string, unknown>;
    expect(got.access_token).toBe(a.phantom);
    expect(got.refresh_token).toBe(a.phantom_refresh);
    // Other fields pass through as they were.
    expect(got).toMatchObject({ expires_in: 3600, token_type: 'Bearer', scope: 'openid offline_access' });
    expectNoReal(out.toString('utf8'));
    const saved = w.vault.oauthTokens('a');
    expect(saved).toMatchObject({ access_token: t.access_token, refresh_token: t.refresh_token, id_token: t.id_token });
    // expires_at = now + expires_in; client_id and account_id survive the refresh.
    expect(saved.expires_at).toBe(w.clock.now() + 3600_000);
    expect(saved.client_id).toBe('app_a');
    expect(saved.account_id).toBe('acct-a');
    // The other credential is untouched.
    expect(w.vault.oauthTokens('b')).toMatchObject({ access_token: bOld.access_token, refresh_token: bOld.refresh_token });
    // Phantoms never change on a refresh.
    expect(w.vault.get('a')!.phantom).toBe(a.phantom);
    expect(w.vault.get('a')!.phantom_refresh).toBe(a.phantom_refresh);
  });

  it('id_token is re-signed: header and claims intact (account id readable), the real signature gone', () => {
    const { t, body } = answer('acct-a');
    const out = JSON.parse(w.exchange.rewriteSuccess(Buffer.from(JSON.stringify(body)), 'application/json', { credential: 'a', pool: null }).toString()) as {
      id_token: string;
    };
    const real = decodeJwt(t.id_token);
    const got = decodeJwt(out.id_token);
    expect(got.header).toEqual(real.header);
    expect(got.claims).toEqual(real.claims);
    expect((got.claims[CODEX_CLAIM] as { chatgpt_account_id: string }).chatgpt_account_id).toBe('acct-a');
    expect(got.signature).not.toBe(real.signature);
    expect(out.id_token).not.toBe(t.id_token);
  });

  it('form response, owner known: rewritten as a form with phantoms; saved to the owner', () => {
    const { t, body } = answer('acct-b');
    const form = new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString();
    const out = w.exchange.rewriteSuccess(Buffer.from(form), `${FORM_CT}; charset=utf-8`, { credential: 'b', pool: null }).toString('utf8');
    const got = new URLSearchParams(out);
    expect(got.get('access_token')).toBe(b.phantom);
    expect(got.get('refresh_token')).toBe(b.phantom_refresh);
    expect(got.get('token_type')).toBe('Bearer');
    expect(got.get('expires_in')).toBe('3600');
    expect(decodeJwt(got.get('id_token')!).claims).toEqual(decodeJwt(t.id_token).claims);
    expect(() => JSON.parse(out)).toThrow();
    expectNoReal(out);
    expect(w.vault.oauthTokens('b')).toMatchObject({
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      id_token: t.id_token,
      expires_at: w.clock.now() + 3600_000,
    });
    expect(w.vault.oauthTokens('a')).toMatchObject({ access_token: aOld.access_token, refresh_token: aOld.refresh_token });
  });

  it('owner unknown: the response is still rewritten (placeholders, no real token) and NOTHING is saved', () => {
    const before = w.sealedSnapshot();
    const { body } = answer('acct-a');
    for (const [ct, text] of [
      [JSON_CT, JSON.stringify(body)],
      [FORM_CT, new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString()],
    ] as const) {
      const out = w.exchange.rewriteSuccess(Buffer.from(text), ct, { credential: null, pool: null }).toString('utf8');
      expectNoReal(out);
      const got = ct === JSON_CT ? (JSON.parse(out) as Record<string, string>) : Object.fromEntries(new URLSearchParams(out));
      expect(got.access_token).toBe(UNATTRIBUTED_TOKEN);
      expect(got.refresh_token).toBe(UNATTRIBUTED_TOKEN);
      // Not any credential's phantom either: the agent must not be told a refresh succeeded for some account.
      for (const row of [a, b]) expect([row.phantom, row.phantom_refresh]).not.toContain(got.access_token);
      expect(decodeJwt(got.id_token!).claims).toMatchObject({ sub: 'acct-a' });
    }
    expect(w.sealedSnapshot()).toEqual(before);
    expect(w.vault.oauthTokens('a')).toMatchObject({ access_token: aOld.access_token, refresh_token: aOld.refresh_token });
    expect(w.vault.oauthTokens('b')).toMatchObject({ access_token: bOld.access_token, refresh_token: bOld.refresh_token });
    expect(w.log.lines.some((l) => l.level === 'warn' && /could not be attributed/.test(l.msg))).toBe(true);
  });

  it('a pooled refresh: the agent gets the POOL phantoms (stable across members); the tokens go to the member', () => {
    const pool = w.pools.create('team', ['a', 'b']);
    const { t, body } = answer('acct-b');
    const out = JSON.parse(w.exchange.rewriteSuccess(Buffer.from(JSON.stringify(body)), JSON_CT, { credential: 'b', pool: 'team' }).toString()) as Record<
      string,
      string
    >;
    expect(out.access_token).toBe(pool.phantom);
    expect(out.refresh_token).toBe(pool.phantom_refresh);
    expectNoReal(JSON.stringify(out));
    expect(w.vault.oauthTokens('b')).toMatchObject({ access_token: t.access_token, refresh_token: t.refresh_token });
    expect(w.vault.oauthTokens('a')).toMatchObject({ access_token: aOld.access_token, refresh_token: aOld.refresh_token });
    expect(w.pools.get('team').phantom).toBe(pool.phantom);
  });

  it('a pooled refresh whose member is unknown: pool phantoms to the agent, nothing saved to any member', () => {
    const pool = w.pools.create('team', ['a', 'b']);
    const before = w.sealedSnapshot();
    const { body } = answer('acct-a');
    const out = JSON.parse(w.exchange.rewriteSuccess(Buffer.from(JSON.stringify(body)), JSON_CT, { credential: null, pool: 'team' }).toString()) as Record<
      string,
      string
    >;
    expect(out.access_token).toBe(pool.phantom);
    expect(out.refresh_token).toBe(pool.phantom_refresh);
    expectNoReal(JSON.stringify(out));
    expect(w.sealedSnapshot()).toEqual(before);
  });

  it('a response renewing only the access token keeps the stored refresh token and id_token', () => {
    const t = realTokens('acct-a', 5);
    reals.push(t.access_token);
    const out = w.exchange
      .rewriteSuccess(Buffer.from(JSON.stringify({ access_token: t.access_token, expires_in: 60 })), JSON_CT, { credential: 'a', pool: null })
      .toString();
    expect(JSON.parse(out)).toEqual({ access_token: a.phantom, expires_in: 60 });
    expectNoReal(out);
    expect(w.vault.oauthTokens('a')).toMatchObject({
      access_token: t.access_token,
      refresh_token: aOld.refresh_token,
      id_token: aOld.id_token,
      expires_at: w.clock.now() + 60_000,
    });
  });

  it('bodies that are not token responses come back byte-identical and change nothing', () => {
    const before = w.sealedSnapshot();
    for (const [ct, text] of [
      [JSON_CT, '{"device_code":"dev-123","user_code":"ABCD-EFGH","verification_uri":"https://auth.openai.com/device"}'],
      [JSON_CT, '{"error":"authorization_pending"}'],
      ['text/html', '<html>not json</html>'],
      [FORM_CT, 'device_code=dev-123&user_code=ABCD'],
    ] as const) {
      const body = Buffer.from(text);
      const out = w.exchange.rewriteSuccess(body, ct, { credential: 'a', pool: null });
      expect(out.toString('utf8')).toBe(text);
    }
    expect(w.sealedSnapshot()).toEqual(before);
  });

  // Fail closed: a 2xx token answer that carries tokens must never reach the agent with real ones, even
  // when the endpoint labels a form-encoded body with another content type (or none at all).
  it('a form-encoded token answer labelled text/plain (or unlabelled) still reaches the agent without real tokens', () => {
    for (const ct of ['text/plain; charset=utf-8', undefined]) {
      const { body } = answer('acct-a', ct ? 7 : 8);
      const form = new URLSearchParams(Object.entries(body).map(([k, v]) => [k, String(v)])).toString();
      const out = w.exchange.rewriteSuccess(Buffer.from(form), ct, { credential: 'a', pool: null }).toString('utf8');
      expectNoReal(out);
    }
  });

  it('never writes a real token to the log', () => {
    w.exchange.rewriteSuccess(Buffer.from(JSON.stringify(answer('acct-a').body)), JSON_CT, { credential: 'a', pool: null });
    w.exchange.rewriteSuccess(Buffer.from(JSON.stringify(answer('acct-b', 2).body)), JSON_CT, { credential: null, pool: null });
    expect(w.log.lines.length).toBeGreaterThan(0);
    expectNoReal(w.log.text());
  });
});
