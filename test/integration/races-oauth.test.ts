/**
 * Issue 22 #10 and #11 through the built daemon with the fake token endpoint (rotating, single-use refresh
 * tokens): concurrent agent refreshes with the same phantom are single-flight, and a dead OAuth credential
 * shows as `needs login`.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeOAuth, type FakeAccount, type FakeOAuth } from '../fakes/fake-oauth.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { waitFor } from './helpers.js';

const API = 'api.openai.com';
const AUTH = 'auth.openai.com';
const TOKEN_URL = `https://${AUTH}/oauth/token`;

let up: FakeUpstream;
let oa: FakeOAuth;
let d: TestDaemon;

beforeAll(async () => {
  up = await startFakeUpstream();
  oa = await startFakeOAuth();
  d = await startDaemon({ upstreamPort: up.port, env: { SLUICE_RESOLVE: `${API}:443:127.0.0.1:${up.port},${AUTH}:443:127.0.0.1:${oa.port}` } });
  for (const host of [API, AUTH]) await d.client.call('rule.add', { verdict: 'allow', host });
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
  await oa?.close();
});

let seq = 0;
const account = (label: string): FakeAccount => oa.addAccount(`${label}-${++seq}`);
const authJson = (a: FakeAccount) =>
  JSON.stringify({ OPENAI_API_KEY: null, tokens: { id_token: a.id_token, access_token: a.access_token, refresh_token: a.refresh_token, account_id: a.id } });
const refreshesAt = (a: FakeAccount) => oa.seen.filter((s) => s.refresh_token?.startsWith(`rt_${a.id}_`));

function refresh(refreshPhantom: string) {
  return d.fetch(TOKEN_URL, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: refreshPhantom, client_id: 'app_test' }),
  });
}

function realTokensIn(text: string): string[] {
  return oa.issued.filter((t) => text.includes(t) || (t.split('.').length === 3 && text.includes(t.split('.')[2]!)));
}

describe('issue 22 #10: agent refreshes are single-flight', () => {
  test('two concurrent refresh grants with the same phantom send ONE refresh; both agents get phantoms', async () => {
    const a = account('sf');
    const c = await d.client.call('cred.add', { name: 'sf', kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret: authJson(a) });
    oa.delayMs = 300;
    try {
      const [r1, r2] = await Promise.all([refresh(c.phantom_refresh!), refresh(c.phantom_refresh!)]);
      expect([r1.status, r2.status]).toEqual([200, 200]);
      expect(refreshesAt(a)).toHaveLength(1);
      for (const r of [r1, r2]) {
        const body = JSON.parse(r.text) as Record<string, string>;
        expect(body.access_token).toBe(c.phantom);
        expect(body.refresh_token).toBe(c.phantom_refresh);
        expect(realTokensIn(r.text)).toEqual([]);
      }
      // The access token the saved refresh produced is the one injected next.
      const n = up.seen.length;
      expect((await d.fetch(`https://${API}/v1/responses`, { method: 'POST', headers: { authorization: `Bearer ${c.phantom}` }, body: '{}' })).status).toBe(
        200,
      );
      expect(String(up.seen[n]!.headers.authorization)).toBe(`Bearer ${a.access_token}`);
    } finally {
      oa.delayMs = 0;
    }
  });

  test("in a pool: concurrent refreshes never cool the healthy member nor spend the next member's token", async () => {
    const a = account('pa');
    const b = account('pb');
    await d.client.call('cred.add', { name: 'pa', kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret: authJson(a) });
    await d.client.call('cred.add', { name: 'pb', kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret: authJson(b) });
    const pool = await d.client.call('pool.create', { name: 'pab', members: ['pa', 'pb'] });
    oa.delayMs = 300;
    try {
      const rs = await Promise.all([refresh(pool.phantom_refresh!), refresh(pool.phantom_refresh!), refresh(pool.phantom_refresh!)]);
      expect(rs.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(refreshesAt(a)).toHaveLength(1);
      expect(refreshesAt(b)).toHaveLength(0);
      const st = (await d.client.call('pool.status', { name: 'pab' })).pools[0]!;
      expect(st.active).toBe('pa');
      expect(st.members.every((m) => m.healthy)).toBe(true);
      expect((await d.client.call('audit.tail', { n: 1000 })).rows.filter((r) => r.event === 'cred_failover' && (r.detail ?? '').startsWith('pab:'))).toEqual(
        [],
      );
    } finally {
      oa.delayMs = 0;
    }
  });
});

describe('issue 22 #10: invalid_grant for a refresh token that is no longer current', () => {
  test('an agent refresh refused after the member was updated mid-flight cools nothing and is not replayed', async () => {
    const a = account('sa');
    const b = account('sb');
    await d.client.call('cred.add', { name: 'sa', kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret: authJson(a) });
    await d.client.call('cred.add', { name: 'sb', kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret: authJson(b) });
    const pool = await d.client.call('pool.create', { name: 'stale', members: ['sa', 'sb'] });
    oa.spendRefresh(a.id);
    oa.delayMs = 600;
    try {
      const seenBefore = oa.seen.length;
      const pending = refresh(pool.phantom_refresh!);
      // The doomed refresh is at the identity provider (held there 600 ms) before the new login lands.
      await waitFor(() => oa.seen.slice(seenBefore).some((s) => s.grant_type === 'refresh_token'), 'the refresh at the token endpoint');
      const fresh = oa.addAccount(`${a.id}-relogin`);
      await d.client.call('cred.update', { name: 'sa', secret: authJson(fresh) });
      const r = await pending;
      expect(r.status).toBe(400);
      const st = (await d.client.call('pool.status', { name: 'stale' })).pools[0]!;
      expect(st.members.every((m) => m.healthy)).toBe(true);
      expect(st.active).toBe('sa');
      expect(refreshesAt(b)).toHaveLength(0);
    } finally {
      oa.delayMs = 0;
    }
  });
});

describe('issue 22 #11: a dead OAuth credential', () => {
  test('after invalid_grant on a proactive refresh, cred list shows needs_login until cred update with a new secret', async () => {
    const a = account('dead');
    const secret = JSON.stringify({ access_token: a.access_token, refresh_token: a.refresh_token, id_token: a.id_token, expires_at: Date.now() - 60_000 });
    await d.client.call('cred.add', { name: 'dead', kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret });
    oa.spendRefresh(a.id);
    // The expired token is refreshed before use (ensureFresh): the refresh is refused with invalid_grant.
    const c = (await d.client.call('cred.list')).credentials.find((x) => x.name === 'dead')!;
    await d.fetch(`https://${API}/v1/responses`, { method: 'POST', headers: { authorization: `Bearer ${c.phantom}` }, body: '{}' });
    expect(refreshesAt(a)).toHaveLength(1);
    expect((await d.client.call('cred.list')).credentials.find((x) => x.name === 'dead')!.needs_login).toBe(true);
    // Another use does not try again.
    await d.fetch(`https://${API}/v1/responses`, { method: 'POST', headers: { authorization: `Bearer ${c.phantom}` }, body: '{}' });
    expect(refreshesAt(a)).toHaveLength(1);
    // A new login: cred update with the account's current tokens.
    const fresh = JSON.stringify({ access_token: a.access_token, refresh_token: a.refresh_token, id_token: a.id_token, expires_at: Date.now() + 3_600_000 });
    const updated = await d.client.call('cred.update', { name: 'dead', secret: fresh });
    expect(updated.needs_login).toBe(false);
  });
});
