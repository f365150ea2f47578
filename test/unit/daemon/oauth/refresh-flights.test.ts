/**
 * Issue 22 #10: one refresh per credential at a time, shared by the daemon's refresher and agents' refresh
 * grants; a caller whose token was spent meanwhile gets the saved tokens as phantoms; an `invalid_grant` for
 * a refresh token that is no longer the current one cools nothing.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RefreshFlights } from '../../../../src/daemon/oauth/refresh-flights.js';
import { TokenRefresher } from '../../../../src/daemon/oauth/token-refresher.js';
import { createUpstreamAgents, type UpstreamAgents } from '../../../../src/daemon/proxy/upstream-agents.js';
import { startFakeOAuth, type FakeAccount, type FakeOAuth } from '../../../fakes/fake-oauth.js';
import { UPSTREAM_CA } from '../../../fakes/fake-upstream.js';
import { leaked, oauthWorld, TOKEN_HOST, type OAuthWorld } from './oauth-setup.js';
import { waitFor } from '../../../fakes/wait-for.js';

let oa: FakeOAuth;
let agents: UpstreamAgents;
let w: OAuthWorld;
let flights: RefreshFlights;
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
  flights = new RefreshFlights(w.vault, w.exchange);
  refresher = new TokenRefresher({
    vault: w.vault,
    exchange: w.exchange,
    pools: w.pools,
    audit: w.audit,
    agents,
    overrides: [{ host: TOKEN_HOST, port: 443, addr: '127.0.0.1', addrPort: oa.port }],
    clock: w.clock,
    log: w.log,
    flights,
  });
});
afterEach(() => {
  oa.delayMs = 0;
  w.close();
});

function account(name: string): FakeAccount {
  const acct = oa.addAccount(`${name}-${++seq}`);
  w.addOAuth(name, { access_token: acct.access_token, refresh_token: acct.refresh_token, id_token: acct.id_token }, { expires_at: w.clock.now() + 60_000 });
  return acct;
}

describe('RefreshFlights.gate', () => {
  it('a second agent refresh waits for the first and, its token spent, is answered with the saved tokens as phantoms', async () => {
    const acct = account('g');
    const row = w.vault.get('g')!;
    const outgoing = JSON.stringify({ grant_type: 'refresh_token', refresh_token: acct.refresh_token });
    const first = await flights.gate('g', null, [outgoing]);
    expect(first.send).toBe(true);
    let secondDone = false;
    const second = flights.gate('g', null, [outgoing]).then((g) => ((secondDone = true), g));
    await new Promise((r) => setImmediate(r));
    expect(secondDone).toBe(false);
    // The first refresh's response is saved (as the token-response stage does), then its flight ends.
    w.exchange.save('g', { access_token: 'new-access-REAL', refresh_token: 'new-refresh-REAL', id_token: acct.id_token, expires_in: 3600 });
    if (first.send) first.end(true);
    const g2 = await second;
    expect(g2.send).toBe(false);
    if (g2.send) return;
    const body = JSON.parse(g2.answer.toString()) as Record<string, unknown>;
    expect(body).toMatchObject({ access_token: row.phantom, refresh_token: row.phantom_refresh, token_type: 'Bearer', expires_in: 3600 });
    expect(leaked(g2.answer.toString(), ['new-access-REAL', 'new-refresh-REAL', acct.id_token.split('.')[2]!])).toEqual([]);
  });

  it('the daemon refresher joins an agent flight instead of sending its own refresh', async () => {
    const acct = account('j');
    const g = await flights.gate('j', null, [acct.refresh_token]);
    expect(g.send).toBe(true);
    const joined = refresher.refresh('j');
    if (g.send) g.end(true);
    expect(await joined).toBe(true);
    expect(oa.seen.filter((s) => s.refresh_token?.startsWith(`rt_${acct.id}_`))).toHaveLength(0);
  });

  it('an agent refresh arriving during a proactive refresh waits for it and is not sent', async () => {
    const acct = account('p');
    const spent = acct.refresh_token;
    oa.delayMs = 150;
    const proactive = refresher.refresh('p');
    const g = await flights.gate('p', null, [JSON.stringify({ refresh_token: spent })]);
    expect(await proactive).toBe(true);
    expect(g.send).toBe(false);
    expect(oa.seen.filter((s) => s.refresh_token === spent)).toHaveLength(1);
  });
});

describe('invalid_grant for a refresh token that is no longer current', () => {
  it('cools nothing and marks nothing when the credential was updated while the refresh was under way', async () => {
    const a = account('st-a');
    account('st-b');
    w.pools.create('st', ['st-a', 'st-b']);
    oa.spendRefresh(a.id);
    oa.delayMs = 200;
    const seenBefore = oa.seen.length;
    const p = refresher.refresh('st-a');
    // A new login lands while the doomed refresh is in flight (held 200 ms at the identity provider).
    await waitFor(() => oa.seen.slice(seenBefore).some((s) => s.grant_type === 'refresh_token'), {
      timeoutMs: 10_000,
      what: 'the refresh at the token endpoint',
    });
    const fresh = oa.addAccount(`${a.id}-new`);
    w.vault.update('st-a', { secret: JSON.stringify({ access_token: fresh.access_token, refresh_token: fresh.refresh_token, id_token: fresh.id_token }) });
    expect(await p).toBe(false);
    const info = w.pools.list()[0]!;
    expect(info.members.every((m) => m.healthy)).toBe(true);
    expect(info.active).toBe('st-a');
    expect(refresher.needsLogin('st-a')).toBe(false);
    expect(flights.isCurrent('st-a', fresh.refresh_token)).toBe(true);
  });
});
