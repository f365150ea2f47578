/**
 * A pooled refresh grant that fails on member X and is replayed on member Y goes through Y's refresh
 * single-flight, exactly as the first send went through X's: rotating refresh tokens are single-use, so a
 * replay that ran beside another refresh of Y would spend Y's refresh token twice (and `invalid_grant` can
 * revoke the whole token family). X's flight ends with X's own outcome when the replay starts.
 *
 * Driven through the built daemon against the fake token endpoint (rotating, single-use refresh tokens),
 * which holds chosen requests unanswered so the refreshes really overlap.
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
  if (oa) oa.hold = null;
  await d?.stop();
  await up?.close();
  await oa?.close();
});

let seq = 0;
const authJson = (a: FakeAccount) =>
  JSON.stringify({ OPENAI_API_KEY: null, tokens: { id_token: a.id_token, access_token: a.access_token, refresh_token: a.refresh_token, account_id: a.id } });
/** How many times `token` reached the token endpoint. */
const presented = (token: string) => oa.seen.filter((s) => s.refresh_token === token).length;

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

/** A pool [X, Y] of OAuth members whose X refresh token was already spent elsewhere (X's refresh answers invalid_grant). */
async function poolWithDeadFirstMember(label: string) {
  const n = ++seq;
  const x = oa.addAccount(`${label}x-${n}`);
  const y = oa.addAccount(`${label}y-${n}`);
  const cx = await d.client.call('cred.add', { name: `${label}x${n}`, kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret: authJson(x) });
  const cy = await d.client.call('cred.add', { name: `${label}y${n}`, kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret: authJson(y) });
  const pool = await d.client.call('pool.create', { name: `${label}p${n}`, members: [cx.name, cy.name] });
  const xSpent = oa.spendRefresh(x.id);
  return { x, y, cx, cy, pool, xSpent, yFirst: y.refresh_token };
}

/** Holds every request carrying `token` at the token endpoint until the returned release is called. */
function holdToken(token: string): () => void {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  oa.hold = (t) => (t === token ? gate : null);
  return () => {
    oa.hold = null;
    release();
  };
}

describe("a pooled refresh grant replayed on the next member takes that member's refresh flight", () => {
  test("while Y's own refresh is in flight, the replay waits for it and never presents Y's refresh token a second time", async () => {
    const { cx, cy, pool, xSpent, yFirst } = await poolWithDeadFirstMember('rf');
    const release = holdToken(yFirst);
    try {
      // Y's refresh is under way (another agent using Y's own refresh phantom), held at the token endpoint.
      const yRefresh = refresh(cy.phantom_refresh!);
      await waitFor(() => presented(yFirst) === 1, "Y's own refresh at the token endpoint");
      // The pool's refresh grant goes to X, is refused (invalid_grant), cools X and is replayed on Y.
      const logMark = d.logs().length;
      const poolRefresh = refresh(pool.phantom_refresh!);
      await waitFor(() => presented(xSpent) === 1, "the pool's refresh at X");
      await waitFor(() => d.logs().slice(logMark).includes('replaying a failed pooled request on the next member'), 'the replay onto Y');
      // Without Y's flight the replay is at the endpoint now with the same refresh token; give it the chance to
      // show, then let Y's own refresh finish.
      await waitFor(async () => (await d.client.call('pool.status', { name: pool.name })).pools[0]!.active === cy.name, 'Y active');
      release();
      const [ry, rp] = await Promise.all([yRefresh, poolRefresh]);
      expect(presented(yFirst)).toBe(1);
      expect(ry.status).toBe(200);
      expect(rp.status).toBe(200);
      // The agent got the pool's phantoms (from what Y's flight saved), no real token.
      const body = JSON.parse(rp.text) as Record<string, string>;
      expect(body.access_token).toBe(pool.phantom);
      expect(body.refresh_token).toBe(pool.phantom_refresh);
      expect(realTokensIn(rp.text)).toEqual([]);
      expect(realTokensIn(ry.text)).toEqual([]);
      // Y stays healthy: nothing refused its token.
      const st = (await d.client.call('pool.status', { name: pool.name })).pools[0]!;
      expect(st.members.find((m) => m.name === cy.name)!.healthy).toBe(true);
      expect(st.members.find((m) => m.name === cx.name)!.healthy).toBe(false);
    } finally {
      release();
    }
  });

  test("X's flight ends with X's failure when the replay starts, not when the replay on Y ends", async () => {
    const { cx, pool, xSpent, yFirst } = await poolWithDeadFirstMember('xe');
    const release = holdToken(yFirst);
    try {
      const poolRefresh = refresh(pool.phantom_refresh!);
      // The replay on Y is held at the endpoint: it is Y's flight now, X's is over.
      await waitFor(() => presented(yFirst) === 1, 'the replay on Y at the token endpoint');
      expect(presented(xSpent)).toBe(1);
      // An agent refreshing X itself is not held behind the replay on Y.
      const xRefresh = refresh(cx.phantom_refresh!);
      await waitFor(() => presented(xSpent) === 2, "X's own refresh reaches the endpoint while the replay on Y is held");
      expect((await xRefresh).status).toBe(400);
      release();
      const rp = await poolRefresh;
      expect(rp.status).toBe(200);
      expect(presented(yFirst)).toBe(1);
      expect(JSON.parse(rp.text)).toMatchObject({ access_token: pool.phantom, refresh_token: pool.phantom_refresh });
      expect(realTokensIn(rp.text)).toEqual([]);
    } finally {
      release();
    }
  });

  test('with no refresh of Y under way, the replay is sent once and its tokens are saved to Y', async () => {
    const { y, cy, pool, yFirst } = await poolWithDeadFirstMember('ok');
    const rp = await refresh(pool.phantom_refresh!);
    expect(rp.status).toBe(200);
    expect(presented(yFirst)).toBe(1);
    expect(JSON.parse(rp.text)).toMatchObject({ access_token: pool.phantom, refresh_token: pool.phantom_refresh });
    expect(realTokensIn(rp.text)).toEqual([]);
    // Y's flight ended (a refresh of Y now sends Y's new token at once) and the new tokens are Y's.
    const ry = await refresh(cy.phantom_refresh!);
    expect(ry.status).toBe(200);
    expect(oa.seen.at(-1)!.refresh_token).not.toBe(yFirst);
    expect(y.refreshes).toBe(2);
  });
});
