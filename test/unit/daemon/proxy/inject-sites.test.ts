/**
 * Injection sites (issue 19): a bound phantom becomes the secret only at its credential's sites (header by
 * default); elsewhere it stays the phantom and is reported. Pools use the serving member's sites; a refresh
 * grant's body at the token URL always gets the refresh token. Hidden (escaped, percent-encoded) forms are
 * classified, never swapped.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStage } from '../../../../src/daemon/proxy/credential-stage.js';
import { parseInjectList } from '../../../../src/shared/protocol/inject-sites.js';
import { PARAMS } from '../../../../src/shared/protocol/params.js';
import { oauthWorld, realTokens, TOKEN_HOST, type OAuthWorld } from '../oauth/oauth-setup.js';

const ANT = 'api.anthropic.com';
const SECRET_A = 'sk-ant-api03-REAL-member-a-secret';
const SECRET_B = 'sk-ant-api03-REAL-member-b-secret';

let w: OAuthWorld;
let stage: CredentialStage;

beforeEach(() => {
  w = oauthWorld();
  stage = new CredentialStage(w.vault, w.pools);
});
afterEach(() => w.close());

const json = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('injection sites', () => {
  it('default (header): swapped in a header, left as the phantom in query, path and body, each reported once', () => {
    const c = w.vault.add({ name: 'ant', kind: 'api-key', hosts: [ANT], header: 'x-api-key', secret: SECRET_A });
    expect(c.inject).toEqual(['header']);
    const r = stage.apply(ANT, { 'x-api-key': c.phantom }, `/bot${c.phantom}/x?key=${c.phantom}&again=${c.phantom}`, json({ key: c.phantom }));
    expect(r.headers['x-api-key']).toBe(SECRET_A);
    expect(r.path).toBe(`/bot${c.phantom}/x?key=${c.phantom}&again=${c.phantom}`);
    expect(r.body!.toString()).toBe(JSON.stringify({ key: c.phantom }));
    expect(r.report.notInjected.map((n) => n.site).sort()).toEqual(['body', 'path', 'query']);
    expect(r.report.leaked).toEqual([]);
    expect(r.report.unknown).toBe(0);
  });

  it('query only: the header phantom stays, the query phantom is swapped, and no header is injected', () => {
    const c = w.vault.add({ name: 'q', kind: 'api-key', hosts: [ANT], header: 'x-api-key', secret: SECRET_A, inject: ['query'] });
    const r = stage.apply(ANT, { authorization: `Bearer ${c.phantom}` }, `/v1?key=${c.phantom}`, null);
    expect(r.path).toBe(`/v1?key=${SECRET_A}`);
    expect(r.headers.authorization).toBe(`Bearer ${c.phantom}`);
    expect(r.headers['x-api-key']).toBeUndefined();
    const bare = stage.apply(ANT, {}, '/v1', null);
    expect(bare.headers['x-api-key']).toBeUndefined();
  });

  it("a pool phantom uses the serving member's sites", () => {
    w.vault.add({ name: 'pa', kind: 'api-key', hosts: [ANT], header: 'x-api-key', secret: SECRET_A, inject: ['header', 'body'] });
    w.vault.add({ name: 'pb', kind: 'api-key', hosts: [ANT], header: 'x-api-key', secret: SECRET_B });
    const pool = w.pools.create('p', ['pa', 'pb']);
    const a = stage.apply(ANT, {}, '/', json({ key: pool.phantom }));
    expect(JSON.parse(a.body!.toString()).key).toBe(SECRET_A);
    w.pools.rotate('p');
    const b = stage.apply(ANT, {}, '/', json({ key: pool.phantom }));
    expect(JSON.parse(b.body!.toString()).key).toBe(pool.phantom);
    expect(b.report.notInjected).toMatchObject([{ credential: 'pb', site: 'body', label: 'p/pb' }]);
  });

  it('a refresh grant body at the token URL gets the refresh token whatever the sites (header only by default)', () => {
    const t = realTokens('sites-oauth');
    const c = w.addOAuth('o', t);
    expect(c.inject).toEqual(['header']);
    const r = stage.apply(
      TOKEN_HOST,
      { 'content-type': 'application/json' },
      '/oauth/token',
      json({ grant_type: 'refresh_token', refresh_token: c.phantom_refresh }),
      true,
    );
    expect(JSON.parse(r.body!.toString()).refresh_token).toBe(t.refresh_token);
    expect(r.report.notInjected).toEqual([]);
  });

  it('a gzip-decoded body is rewritten decoded and loses its content-encoding; an unrewritten one is forwarded as it came', () => {
    const c = w.vault.add({ name: 'b', kind: 'api-key', hosts: [ANT], header: 'x-api-key', secret: SECRET_A, inject: ['body'] });
    const raw = Buffer.from('compressed-bytes');
    const r = stage.applyHead(ANT, { 'content-encoding': 'gzip' }, '/');
    stage.applyBody(ANT, r, raw, json({ key: c.phantom }));
    expect(JSON.parse(r.body!.toString()).key).toBe(SECRET_A);
    expect(r.headers['content-encoding']).toBeUndefined();
    const r2 = stage.applyHead(ANT, { 'content-encoding': 'gzip' }, '/');
    stage.applyBody(ANT, r2, raw, json({ text: 'no phantom' }));
    expect(r2.body).toBe(raw);
    expect(r2.headers['content-encoding']).toBe('gzip');
  });

  it('escaped and percent-encoded phantoms are classified (leak, unknown) but never swapped', () => {
    const mine = w.vault.add({ name: 'mine', kind: 'api-key', hosts: [ANT], header: 'x-api-key', secret: SECRET_A, inject: ['header', 'body', 'query'] });
    const other = w.vault.add({ name: 'other', kind: 'api-key', hosts: ['api.openai.com'], header: 'authorization', secret: SECRET_B });
    const esc = (p: string) => p.replace('SLUICE', '\\u0053LUICE');
    const leak = stage.apply(ANT, {}, '/', Buffer.from(`{"k":"${esc(other.phantom)}"}`));
    expect(leak.report.leaked.map((l) => l.credential)).toEqual(['other']);
    const pct = stage.apply(ANT, {}, `/x?k=${other.phantom.replace('SLUICE', '%53LUICE')}`, null);
    expect(pct.report.leaked.map((l) => l.credential)).toEqual(['other']);
    const own = stage.apply(ANT, {}, '/', Buffer.from(`{"k":"${esc(mine.phantom)}"}`));
    expect(own.body!.toString()).toBe(`{"k":"${esc(mine.phantom)}"}`);
    expect(own.report.leaked).toEqual([]);
    const stale = stage.apply(ANT, {}, '/', Buffer.from(`{"k":"${esc('sk-ant-api03-SLUICE' + 'a'.repeat(40))}"}`));
    expect(stale.report.unknown).toBeGreaterThan(0);
    expect([...stale.report.unknownAt]).toEqual(['hidden']);
  });
});

describe('migration 0005', () => {
  it('the inject column refuses anything but an ordered, non-empty site list', () => {
    w.vault.add({ name: 'db', kind: 'api-key', hosts: [ANT], secret: SECRET_A });
    const set = (v: string) => w.db.prepare('UPDATE credentials SET inject = ? WHERE name = ?').run(v, 'db');
    for (const bad of ['', 'cookie', 'query,header', 'header,header', 'header, query']) expect(() => set(bad), bad).toThrow(/CHECK/);
    expect(() => set('header,query,body,path')).not.toThrow();
  });
});

describe('--inject values', () => {
  it('parse to canonical order; a bad site names itself', () => {
    expect(parseInjectList('path, HEADER,query,header')).toEqual(['header', 'query', 'path']);
    expect(parseInjectList('header,cookie')).toEqual({ problem: expect.stringContaining('"cookie"') });
    expect(parseInjectList(' , ')).toEqual({ problem: expect.stringContaining('at least one') });
  });

  it('RPC params: validated and put in canonical order', () => {
    expect(PARAMS['cred.update'].parse({ name: 'x', inject: ['body', 'header'] }).inject).toEqual(['header', 'body']);
    expect(PARAMS['cred.update'].safeParse({ name: 'x', inject: ['cookie'] }).success).toBe(false);
    expect(PARAMS['cred.add'].safeParse({ name: 'x', hosts: ['h'], secret: 's', inject: [] }).success).toBe(false);
  });
});
