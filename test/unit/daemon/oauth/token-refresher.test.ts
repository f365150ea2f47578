/**
 * Proactive OAuth refresh (issue 7): the daemon refreshes a credential itself before `expires_at` and
 * before a pool switches to an expired member. Refreshes of one credential are single-flight — rotating
 * refresh tokens are single-use, so two concurrent refreshes would spend the token twice and kill the
 * account. Runs against the fake HTTPS token endpoint, reached through a SLUICE_RESOLVE-style override
 * with certificate verification on (SNI and Host stay auth.openai.com).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { REFRESH_AHEAD_MS, TokenRefresher } from '../../../../src/daemon/oauth/token-refresher.js';
import { createUpstreamAgents, type UpstreamAgents } from '../../../../src/daemon/proxy/upstream-agents.js';
import { startFakeOAuth, type FakeAccount, type FakeOAuth } from '../../../fakes/fake-oauth.js';
import { UPSTREAM_CA } from '../../../fakes/fake-upstream.js';
import { leaked, oauthWorld, TOKEN_HOST, type OAuthWorld } from './oauth-setup.js';

let oa: FakeOAuth;
let agents: UpstreamAgents;
let w: OAuthWorld;
let refresher: TokenRefresher;
let seq = 0;

beforeAll(async () => {
  oa = await startFakeOAuth();
  agents = createUpstreamAgents(UPSTREAM_CA);
});
afterAll(async () => {
  agents.destroy();
  await oa.close();
});
beforeEach(() => {
  w = oauthWorld();
  oa.delayMs = 0;
  refresher = new TokenRefresher({
    vault: w.vault,
    exchange: w.exchange,
    pools: w.pools,
    audit: w.audit,
    agents,
    // Port 9 of the token host leads to a closed local port (an unreachable token endpoint).
    overrides: [
      { host: TOKEN_HOST, port: 443, addr: '127.0.0.1', addrPort: oa.port },
      { host: TOKEN_HOST, port: 9, addr: '127.0.0.1', addrPort: 1 },
    ],
    clock: w.clock,
    log: w.log,
  });
});
afterEach(() => {
  refresher.stop();
  w.close();
});

/** A fake account plus a vault credential holding its current tokens. */
function account(name: string, extra: { expires_at?: number | null; client_id?: string } = {}): FakeAccount {
  const acct = oa.addAccount(`${name}-${++seq}`);
  w.addOAuth(name, { access_token: acct.access_token, refresh_token: acct.refresh_token, id_token: acct.id_token }, extra);
  return acct;
}

/** Requests the fake saw carrying one of this account's refresh tokens (or its id prefix). */
const refreshesOf = (acct: FakeAccount) => oa.seen.filter((s) => s.refresh_token?.startsWith(`rt_${acct.id}_`));

describe('TokenRefresher.refresh', () => {
  it('is single-flight: two concurrent refreshes of one credential make ONE request and both succeed', async () => {
    const acct = account('sf', { client_id: 'app_sf' });
    const firstRefresh = acct.refresh_token;
    oa.delayMs = 150;
    const p1 = refresher.refresh('sf');
    const p2 = refresher.refresh('sf');
    expect(p2).toBe(p1);
    expect(await Promise.all([p1, p2])).toEqual([true, true]);
    expect(refreshesOf(acct)).toHaveLength(1);
    expect(refreshesOf(acct)[0]!.refresh_token).toBe(firstRefresh);
    expect(acct.refreshes).toBe(1);
    // The rotated tokens were saved; the new refresh token is still unspent at the fake.
    const saved = w.vault.oauthTokens('sf');
    expect(saved).toMatchObject({ access_token: acct.access_token, refresh_token: acct.refresh_token, id_token: acct.id_token, client_id: 'app_sf' });
    expect(saved.expires_at).toBe(w.clock.now() + 3600_000);
    const audit = w.audit.tail(50);
    expect(audit.filter((r) => r.event === 'oauth_refreshed' && r.credential === 'sf')).toHaveLength(1);
    expect(audit.filter((r) => r.event === 'oauth_refresh_failed')).toEqual([]);
  });

  it('many concurrent callers (refresh, ensureFresh, refreshDue) still share one request', async () => {
    const acct = account('many', { expires_at: w.clock.now() - 1000 });
    oa.delayMs = 100;
    const results = await Promise.all([
      refresher.refresh('many'),
      refresher.ensureFresh('many').then(() => true),
      refresher.refreshDue().then(() => true),
      refresher.refresh('many'),
      refresher.refresh('many'),
    ]);
    expect(results.every(Boolean)).toBe(true);
    expect(refreshesOf(acct)).toHaveLength(1);
    expect(w.vault.oauthTokens('many').access_token).toBe(acct.access_token);
  });

  it('a later refresh (after the first settled) sends the NEW refresh token and rotates again', async () => {
    const acct = account('seq');
    expect(await refresher.refresh('seq')).toBe(true);
    const afterFirst = acct.refresh_token;
    expect(await refresher.refresh('seq')).toBe(true);
    expect(refreshesOf(acct).map((s) => s.refresh_token)).toEqual([expect.stringMatching(/_0_/), afterFirst]);
    expect(acct.refreshes).toBe(2);
    expect(w.vault.oauthTokens('seq').refresh_token).toBe(acct.refresh_token);
  });

  it('sends a JSON refresh grant (with client_id when known) to the token URL path, Host header intact', async () => {
    const acct = account('req', { client_id: 'app_req' });
    const rt = acct.refresh_token;
    await refresher.refresh('req');
    const s = refreshesOf(acct)[0]!;
    expect(s.contentType).toContain('application/json');
    expect(JSON.parse(s.body)).toEqual({ grant_type: 'refresh_token', refresh_token: rt, client_id: 'app_req' });
  });

  it('invalid_grant: returns false, saves nothing, audits the failure and cools THAT member in its pool', async () => {
    account('p-a');
    const b = account('p-b');
    w.pools.create('pp', ['p-a', 'p-b']);
    // Make p-b the active member, so "the first member with that token URL" (p-a) would be the wrong one.
    w.pools.rotate('pp');
    w.health.clear('p-a');
    expect(w.pools.list()[0]!.active).toBe('p-b');
    oa.spendRefresh(b.id);
    const before = w.sealedSnapshot();
    expect(await refresher.refresh('p-b')).toBe(false);
    expect(w.sealedSnapshot()).toEqual(before);
    const info = w.pools.list()[0]!;
    expect(info.members.find((m) => m.name === 'p-b')).toMatchObject({ healthy: false, reason: 'auth_failed' });
    expect(info.members.find((m) => m.name === 'p-a')).toMatchObject({ healthy: true });
    expect(info.active).toBe('p-a');
    const audit = w.audit.tail(50);
    expect(audit.some((r) => r.event === 'oauth_refresh_failed' && r.credential === 'p-b' && r.status === 400)).toBe(true);
    expect(audit.some((r) => r.event === 'cred_failover' && r.detail === 'pp:p-b->p-a:auth_failed')).toBe(true);
  });

  it('a failed request (token endpoint unreachable) resolves false without cooling anyone', async () => {
    account('down', {});
    w.vault.update('down', { token_url: 'https://auth.openai.com:9/oauth/token' });
    expect(await refresher.refresh('down')).toBe(false);
    expect(w.audit.tail(10).some((r) => r.event === 'oauth_refresh_failed' && r.credential === 'down')).toBe(true);
  });

  it('never logs or audits a real token', async () => {
    const acct = account('quiet');
    const b = account('quiet-b');
    await refresher.refresh('quiet');
    oa.spendRefresh(b.id);
    await refresher.refresh('quiet-b');
    const everything = w.log.text() + JSON.stringify(w.audit.tail(100));
    expect(leaked(everything, oa.issued)).toEqual([]);
    expect(acct.refreshes).toBe(1);
  });
});

describe('TokenRefresher.ensureFresh / refreshDue', () => {
  it('ensureFresh refreshes an expired credential and leaves a valid or undated one alone', async () => {
    const expired = account('exp', { expires_at: w.clock.now() - 1 });
    const valid = account('valid', { expires_at: w.clock.now() + 60_000 });
    const undated = account('undated');
    await refresher.ensureFresh('exp');
    await refresher.ensureFresh('valid');
    await refresher.ensureFresh('undated');
    await refresher.ensureFresh('no-such-credential');
    expect(refreshesOf(expired)).toHaveLength(1);
    expect(refreshesOf(valid)).toHaveLength(0);
    expect(refreshesOf(undated)).toHaveLength(0);
    expect(w.vault.oauthTokens('exp').access_token).toBe(expired.access_token);
    expect(w.vault.oauthTokens('exp').expires_at).toBeGreaterThan(w.clock.now());
  });

  it(`refreshDue refreshes exactly the credentials expiring within ${REFRESH_AHEAD_MS / 60_000} minutes`, async () => {
    const soon = account('soon', { expires_at: w.clock.now() + REFRESH_AHEAD_MS - 1000 });
    const past = account('past', { expires_at: w.clock.now() - 5000 });
    const later = account('later', { expires_at: w.clock.now() + REFRESH_AHEAD_MS + 60_000 });
    const never = account('never');
    w.vault.add({ name: 'apikey', kind: 'api-key', hosts: ['api.openai.com'], secret: 'sk-proj-REALapikey0123456789' });
    await refresher.refreshDue();
    expect(refreshesOf(soon)).toHaveLength(1);
    expect(refreshesOf(past)).toHaveLength(1);
    expect(refreshesOf(later)).toHaveLength(0);
    expect(refreshesOf(never)).toHaveLength(0);
    // Once refreshed, they are not due again.
    await refresher.refreshDue();
    expect(refreshesOf(soon)).toHaveLength(1);
    expect(refreshesOf(past)).toHaveLength(1);
  });
});
