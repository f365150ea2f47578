/**
 * OAuth phantoms on the request path (issue 7): the vault indexes an OAuth credential's access AND refresh
 * phantoms (`byCore` → {row, slot}); the credential stage swaps an access phantom on the API hosts and a
 * refresh phantom ONLY inside a refresh grant to the credential's token-URL host; `refreshOwnerOf` names
 * the single credential whose refresh token was injected. OAuth pools get one stable JWT phantom plus one
 * refresh phantom that follow the active member.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStage, refreshOwnerOf } from '../../../../src/daemon/proxy/credential-stage.js';
import type { CredentialRow } from '../../../../src/daemon/store/credentials-repo.js';
import { phantomCore } from '../../../../src/daemon/vault/phantom.js';
import { API_HOST, CODEX_CLAIM, decodeJwt, oauthWorld, realTokens, TOKEN_HOST, type OAuthWorld, type RealTokens } from './oauth-setup.js';

let w: OAuthWorld;
let stage: CredentialStage;
let a: CredentialRow;
let b: CredentialRow;
let ta: RealTokens;
let tb: RealTokens;

beforeEach(() => {
  w = oauthWorld();
  ta = realTokens('stage-a');
  tb = realTokens('stage-b');
  a = w.addOAuth('a', ta);
  b = w.addOAuth('b', tb);
  stage = new CredentialStage(w.vault, w.pools);
});
afterEach(() => w.close());

const json = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('OAuth credential phantoms', () => {
  it('an OAuth credential gets a JWT access phantom with the real claims and a separate refresh phantom', () => {
    const { claims } = decodeJwt(a.phantom);
    expect((claims[CODEX_CLAIM] as { chatgpt_account_id: string }).chatgpt_account_id).toBe('stage-a');
    expect(phantomCore(a.phantom)).toMatch(/^SLUICE[A-Za-z0-9]{40}$/);
    expect(a.phantom_refresh).toMatch(/^rt_SLUICE[A-Za-z0-9]{40}$/);
    expect(a.token_url).toBe(`https://${TOKEN_HOST}/oauth/token`);
    expect(w.vault.byCore(phantomCore(a.phantom))).toMatchObject({ row: { name: 'a' }, slot: 'access' });
    expect(w.vault.byCore(phantomCore(a.phantom_refresh!))).toMatchObject({ row: { name: 'a' }, slot: 'refresh' });
    expect(w.vault.secretFor('a', 'access')).toBe(ta.access_token);
    expect(w.vault.secretFor('a', 'refresh')).toBe(ta.refresh_token);
  });

  it('byTokenUrl finds every credential sharing a token URL (host and path compared)', () => {
    expect(
      w.vault
        .byTokenUrl(TOKEN_HOST, '/oauth/token')
        .map((r) => r.name)
        .sort(),
    ).toEqual(['a', 'b']);
    expect(w.vault.byTokenUrl('AUTH.OPENAI.COM', '/oauth/token')).toHaveLength(2);
    expect(w.vault.byTokenUrl(TOKEN_HOST, '/oauth/other')).toEqual([]);
    expect(w.vault.byTokenUrl(API_HOST, '/oauth/token')).toEqual([]);
  });
});

describe('CredentialStage with OAuth phantoms', () => {
  it('swaps the access phantom on the API host', () => {
    const r = stage.apply(API_HOST, { authorization: `Bearer ${a.phantom}` }, '/v1/responses', null);
    expect(r.headers.authorization).toBe(`Bearer ${ta.access_token}`);
    expect(r.credential).toBe('a');
    expect(refreshOwnerOf(r)).toBeNull();
  });

  it('swaps the refresh phantom inside a refresh grant to the token host (JSON and form), naming the owner', () => {
    const j = stage.apply(
      TOKEN_HOST,
      { 'content-type': 'application/json' },
      '/oauth/token',
      json({ grant_type: 'refresh_token', refresh_token: b.phantom_refresh }),
      true,
    );
    expect(JSON.parse(j.body!.toString())).toEqual({ grant_type: 'refresh_token', refresh_token: tb.refresh_token });
    expect(j.report.leaked).toEqual([]);
    expect(refreshOwnerOf(j)).toBe('b');
    const f = stage.apply(TOKEN_HOST, {}, '/oauth/token', Buffer.from(`grant_type=refresh_token&refresh_token=${a.phantom_refresh}&client_id=app`), true);
    expect(f.body!.toString()).toBe(`grant_type=refresh_token&refresh_token=${ta.refresh_token}&client_id=app`);
    expect(refreshOwnerOf(f)).toBe('a');
  });

  it('does NOT swap a refresh phantom outside a refresh grant: it is reported as a leak and left as the phantom', () => {
    const body = json({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', refresh_token: a.phantom_refresh });
    const r = stage.apply(TOKEN_HOST, {}, '/oauth/token', body, false);
    expect(r.report.leaked.map((l) => l.credential)).toEqual(['a']);
    expect(r.body!.toString()).not.toContain(ta.refresh_token);
    expect(refreshOwnerOf(r)).toBeNull();
  });

  it('does NOT swap a refresh phantom sent to the API host, even inside a refresh grant', () => {
    for (const grant of [false, true]) {
      const r = stage.apply(
        API_HOST,
        { authorization: `Bearer ${a.phantom_refresh}` },
        '/v1/x',
        json({ grant_type: 'refresh_token', refresh_token: a.phantom_refresh }),
        grant,
      );
      expect(r.report.leaked.map((l) => l.credential)).toEqual(['a']);
      expect(JSON.stringify(r.headers) + r.body!.toString()).not.toContain(ta.refresh_token);
    }
  });

  it('does not swap an access phantom on the token host (it is bound to the API hosts only)', () => {
    const r = stage.apply(
      TOKEN_HOST,
      { authorization: `Bearer ${a.phantom}` },
      '/oauth/token',
      json({ grant_type: 'refresh_token', refresh_token: a.phantom_refresh }),
      true,
    );
    expect(r.report.leaked.map((l) => l.credential)).toEqual(['a']);
    expect(JSON.stringify(r.headers)).not.toContain(ta.access_token);
  });

  it('two different refresh phantoms in one request → no single owner (unattributable)', () => {
    const r = stage.apply(
      TOKEN_HOST,
      {},
      '/oauth/token',
      json({ grant_type: 'refresh_token', refresh_token: a.phantom_refresh, other: b.phantom_refresh }),
      true,
    );
    expect(r.report.leaked).toEqual([]);
    expect(refreshOwnerOf(r)).toBeNull();
  });

  it('a refresh request carrying no phantom has no owner, and no credential is injected into it', () => {
    const r = stage.apply(
      TOKEN_HOST,
      { 'content-type': 'application/json' },
      '/oauth/token',
      json({ grant_type: 'refresh_token', refresh_token: 'rt_pasted_by_hand' }),
      true,
    );
    expect(refreshOwnerOf(r)).toBeNull();
    expect(r.credential).toBeNull();
    expect(JSON.stringify(r.headers) + r.body!.toString()).not.toContain(ta.refresh_token);
  });
});

describe('OAuth pools', () => {
  it('get one JWT phantom (first member claims, far-future exp) and one refresh phantom', () => {
    const p = w.pools.create('team', ['a', 'b']);
    const { claims, header } = decodeJwt(p.phantom);
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect((claims[CODEX_CLAIM] as { chatgpt_account_id: string }).chatgpt_account_id).toBe('stage-a');
    expect(claims.exp as number).toBeGreaterThan(Date.now() / 1000 + 10 * 365 * 86400);
    expect(phantomCore(p.phantom)).toMatch(/^SLUICE[A-Za-z0-9]{40}$/);
    expect(p.phantom_refresh).toMatch(/^rt_SLUICE[A-Za-z0-9]{40}$/);
    expect([a.phantom, b.phantom]).not.toContain(p.phantom);
    expect([a.phantom_refresh, b.phantom_refresh]).not.toContain(p.phantom_refresh);
  });

  it('the pool phantoms resolve to the ACTIVE member; after a failover to the next one; the phantom text never changes', () => {
    const p = w.pools.create('team', ['a', 'b']);
    const api = () => stage.apply(API_HOST, { authorization: `Bearer ${p.phantom}` }, '/v1/x', null);
    const refresh = () => stage.apply(TOKEN_HOST, {}, '/oauth/token', json({ grant_type: 'refresh_token', refresh_token: p.phantom_refresh }), true);
    expect(api().headers.authorization).toBe(`Bearer ${ta.access_token}`);
    expect(JSON.parse(refresh().body!.toString()).refresh_token).toBe(ta.refresh_token);
    expect(refreshOwnerOf(refresh())).toBe('a');
    expect(refresh().pool).toBe('team');
    w.pools.failover('team', 'a', 'rate_limited', w.clock.now() + 60_000);
    expect(api().headers.authorization).toBe(`Bearer ${tb.access_token}`);
    expect(JSON.parse(refresh().body!.toString()).refresh_token).toBe(tb.refresh_token);
    expect(refreshOwnerOf(refresh())).toBe('b');
    expect(w.pools.get('team').phantom).toBe(p.phantom);
    expect(w.pools.get('team').phantom_refresh).toBe(p.phantom_refresh);
  });

  it('the pool refresh phantom is a leak outside a refresh grant', () => {
    const p = w.pools.create('team', ['a', 'b']);
    const r = stage.apply(TOKEN_HOST, {}, '/oauth/token', json({ grant_type: 'authorization_code', refresh_token: p.phantom_refresh }), false);
    expect(r.report.leaked).toHaveLength(1);
    expect(r.body!.toString()).not.toContain(ta.refresh_token);
  });

  it('refuses a pool mixing OAuth and API-key members', () => {
    w.vault.add({ name: 'key', kind: 'api-key', hosts: [API_HOST], secret: 'sk-proj-REALkey0123456789abcdef' });
    expect(() => w.pools.create('mixed', ['a', 'key'])).toThrow(/all be api-key credentials or all oauth/);
  });

  it('maskSecrets turns any real token of a member into the pool phantom the agent holds', () => {
    const p = w.pools.create('team', ['a', 'b']);
    const text = `x ${ta.access_token} y ${tb.refresh_token} z`;
    const out = stage.maskSecrets(text);
    expect(out).toBe(`x ${p.phantom} y ${p.phantom_refresh} z`);
  });
});
