/**
 * Issue 22 #11: a failing proactive refresh backs off exponentially (30 s, 60 s, … up to 1 h) instead of
 * retrying every check, and after `invalid_grant` stops until the credential's refresh token changes.
 * Fake clock; the fake token endpoint over real TLS.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenRefresher } from '../../../../src/daemon/oauth/token-refresher.js';
import { createUpstreamAgents, type UpstreamAgents } from '../../../../src/daemon/proxy/upstream-agents.js';
import { startFakeOAuth, type FakeAccount, type FakeOAuth } from '../../../fakes/fake-oauth.js';
import { UPSTREAM_CA } from '../../../fakes/fake-upstream.js';
import { oauthWorld, TOKEN_HOST, type OAuthWorld } from './oauth-setup.js';

let oa: FakeOAuth;
let agents: UpstreamAgents;
let w: OAuthWorld;
let refresher: TokenRefresher;
let changed: string[];
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
  changed = [];
  refresher = new TokenRefresher({
    vault: w.vault,
    exchange: w.exchange,
    pools: w.pools,
    audit: w.audit,
    agents,
    overrides: [
      { host: TOKEN_HOST, port: 443, addr: '127.0.0.1', addrPort: oa.port },
      { host: TOKEN_HOST, port: 9, addr: '127.0.0.1', addrPort: 1 },
    ],
    clock: w.clock,
    log: w.log,
    onNeedsLoginChanged: (n) => changed.push(n),
  });
});
afterEach(() => w.close());

function account(name: string): FakeAccount {
  const acct = oa.addAccount(`${name}-${++seq}`);
  w.addOAuth(name, { access_token: acct.access_token, refresh_token: acct.refresh_token, id_token: acct.id_token }, { expires_at: w.clock.now() - 1000 });
  return acct;
}
const failures = (name: string) => w.audit.tail(1000).filter((r) => r.event === 'oauth_refresh_failed' && r.credential === name).length;
const refreshesOf = (acct: FakeAccount) => oa.seen.filter((s) => s.refresh_token?.startsWith(`rt_${acct.id}_`)).length;

describe('issue 22 #11: backoff', () => {
  it('an unreachable token endpoint is retried after 30 s, 60 s, 120 s …, not at every check', async () => {
    account('down');
    w.vault.update('down', { token_url: 'https://auth.openai.com:9/oauth/token' });
    await refresher.refreshDue();
    expect(failures('down')).toBe(1);
    // Checks every 30 s for 29 s: nothing.
    w.clock.advance(29_000);
    await refresher.refreshDue();
    await refresher.ensureFresh('down');
    expect(failures('down')).toBe(1);
    w.clock.advance(1_000);
    await refresher.refreshDue();
    expect(failures('down')).toBe(2);
    w.clock.advance(59_000);
    await refresher.refreshDue();
    expect(failures('down')).toBe(2);
    w.clock.advance(1_000);
    await refresher.refreshDue();
    expect(failures('down')).toBe(3);
    w.clock.advance(119_000);
    await refresher.refreshDue();
    expect(failures('down')).toBe(3);
    w.clock.advance(1_000);
    await refresher.refreshDue();
    expect(failures('down')).toBe(4);
  });

  it('the delay stops growing at one hour', async () => {
    account('cap');
    w.vault.update('cap', { token_url: 'https://auth.openai.com:9/oauth/token' });
    for (let i = 0; i < 8; i++) {
      await refresher.refreshDue();
      w.clock.advance(3_600_000);
    }
    expect(failures('cap')).toBe(8);
    // 30 s · 2^8 would be over 2 h: the wait is one hour, no more and no less.
    await refresher.refreshDue();
    expect(failures('cap')).toBe(9);
    w.clock.advance(3_599_000);
    await refresher.refreshDue();
    expect(failures('cap')).toBe(9);
    w.clock.advance(1_000);
    await refresher.refreshDue();
    expect(failures('cap')).toBe(10);
  });
});

describe('issue 22 #11: invalid_grant stops retries until the credential is updated', () => {
  it('needs login after invalid_grant; no further POST however long; a new secret starts over', async () => {
    const acct = account('gone');
    oa.spendRefresh(acct.id);
    await refresher.refreshDue();
    expect(refreshesOf(acct)).toBe(1);
    expect(refresher.needsLogin('gone')).toBe(true);
    expect(changed).toEqual(['gone']);
    for (let i = 0; i < 5; i++) {
      w.clock.advance(3_600_000);
      await refresher.refreshDue();
      await refresher.ensureFresh('gone');
    }
    expect(refreshesOf(acct)).toBe(1);
    expect(failures('gone')).toBe(1);
    // `cred update` with a new login (the account's current tokens).
    const fresh = oa.addAccount(`${acct.id}-relogin`);
    w.vault.update('gone', {
      secret: JSON.stringify({ access_token: fresh.access_token, refresh_token: fresh.refresh_token, id_token: fresh.id_token, expires_at: w.clock.now() - 1 }),
    });
    expect(refresher.needsLogin('gone')).toBe(false);
    await refresher.refreshDue();
    expect(oa.seen.filter((s) => s.refresh_token?.startsWith(`rt_${fresh.id}_`))).toHaveLength(1);
    expect(w.vault.oauthTokens('gone').access_token).toBe(fresh.access_token);
    expect(changed).toEqual(['gone', 'gone']);
  });
});

describe('needs login survives a restart', () => {
  it('a restarted refresher (same store) still says needs login and sends the dead token nowhere; a new login clears the stored mark', async () => {
    const stored = new Map<string, string>();
    const store = {
      load: () => [...stored].map(([name, token_sha256]) => ({ name, token_sha256 })),
      save: (name: string, h: string | null) => void (h === null ? stored.delete(name) : stored.set(name, h)),
    };
    const make = () =>
      new TokenRefresher({
        vault: w.vault,
        exchange: w.exchange,
        pools: w.pools,
        audit: w.audit,
        agents,
        overrides: [{ host: TOKEN_HOST, port: 443, addr: '127.0.0.1', addrPort: oa.port }],
        clock: w.clock,
        log: w.log,
        needsLoginStore: store,
      });
    const acct = account('dead');
    oa.spendRefresh(acct.id);
    await make().refreshDue();
    expect(refreshesOf(acct)).toBe(1);
    expect([...stored.keys()]).toEqual(['dead']);
    // Only a hash of the refused token is kept, never the token.
    expect(stored.get('dead')).toMatch(/^[0-9a-f]{64}$/);
    expect(stored.get('dead')).not.toContain(w.vault.oauthTokens('dead').refresh_token);

    const restarted = make();
    expect(restarted.needsLogin('dead')).toBe(true);
    w.clock.advance(3_600_000);
    await restarted.refreshDue();
    await restarted.ensureFresh('dead');
    expect(refreshesOf(acct)).toBe(1);

    const fresh = oa.addAccount(`${acct.id}-again`);
    w.vault.update('dead', {
      secret: JSON.stringify({ access_token: fresh.access_token, refresh_token: fresh.refresh_token, id_token: fresh.id_token, expires_at: w.clock.now() - 1 }),
    });
    // A refresher started after the new login drops the stale mark at once.
    expect(make().needsLogin('dead')).toBe(false);
    expect(stored.size).toBe(0);
  });
});
