/**
 * Which secrets the response masker knows: every secret in the vault (API keys; OAuth access, refresh and
 * id-token signatures), each mapped to the phantom the agent holds (the pool's for a pool member); built
 * once and rebuilt only when credentials or pools change; refreshed-away tokens stay masked.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MaskPairSource } from '../../../../src/daemon/proxy/mask-pairs.js';
import { resign } from '../../../../src/daemon/oauth/token-exchange.js';
import { oauthWorld, realTokens, type OAuthWorld } from '../oauth/oauth-setup.js';

let w: OAuthWorld;
beforeEach(() => {
  w = oauthWorld();
});
afterEach(() => w.close());

const mask = (src: MaskPairSource, text: string) => src.current().maskBuffer(Buffer.from(text)).toString();

describe('MaskPairSource', () => {
  it('maps an API key, an OAuth access and refresh token and an id token to the phantoms the agent holds', () => {
    const key = 'sk-ant-api03-REAL-key-0123456789abcdef';
    const k = w.vault.add({ name: 'k', kind: 'api-key', hosts: ['api.anthropic.com'], secret: key });
    const t = realTokens('acct-a');
    const o = w.addOAuth('o', t);
    const src = new MaskPairSource(w.vault, w.pools);
    expect(mask(src, `${key} ${t.access_token} ${t.refresh_token} ${t.id_token}`)).toBe(`${k.phantom} ${o.phantom} ${o.phantom_refresh} ${resign(t.id_token)}`);
  });

  it('a pool member is masked with the POOL phantoms', () => {
    const ta = realTokens('acct-a');
    const tb = realTokens('acct-b');
    w.addOAuth('a', ta);
    w.addOAuth('b', tb);
    const src = new MaskPairSource(w.vault, w.pools);
    const p = w.pools.create('team', ['a', 'b']);
    expect(mask(src, `${tb.access_token} ${ta.refresh_token}`)).toBe(`${p.phantom} ${p.phantom_refresh}`);
  });

  it('is cached until the vault or the pools change; a refreshed-away token stays masked', () => {
    const t = realTokens('acct-a');
    const row = w.addOAuth('a', t);
    const src = new MaskPairSource(w.vault, w.pools);
    const first = src.current();
    expect(src.current()).toBe(first);
    const fresh = realTokens('acct-a', 2);
    w.exchange.save('a', { access_token: fresh.access_token, refresh_token: fresh.refresh_token });
    const second = src.current();
    expect(second).not.toBe(first);
    expect(mask(src, `${fresh.access_token} ${t.access_token} ${fresh.refresh_token}`)).toBe(`${row.phantom} ${row.phantom} ${row.phantom_refresh}`);
  });
});
