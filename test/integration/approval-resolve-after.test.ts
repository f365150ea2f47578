/**
 * Issue 22 #8: credentials are resolved after the approval wait, not before. The member a pool phantom
 * stands for can change during a prompt that lasts up to 120 s (a rotation, a cooldown), and an expired
 * OAuth token must not be refreshed at the identity provider before a human said yes.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeOAuth, type FakeOAuth } from '../fakes/fake-oauth.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { fakeSecret, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';
const API = 'api.openai.com';
const AUTH = 'auth.openai.com';

let up: FakeUpstream;
let oa: FakeOAuth;
let d: TestDaemon;

beforeAll(async () => {
  up = await startFakeUpstream();
  oa = await startFakeOAuth();
  // Default verdict is ask: every request to ANT and API waits for a human. The token URL is allowed.
  d = await startDaemon({
    upstreamPort: up.port,
    env: { SLUICE_RESOLVE: `${ANT}:443:127.0.0.1:${up.port},${API}:443:127.0.0.1:${up.port},${AUTH}:443:127.0.0.1:${oa.port}` },
  });
  await d.client.call('rule.add', { verdict: 'allow', host: AUTH });
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
  await oa?.close();
});

async function pendingFor(host: string) {
  return waitFor(async () => (await d.client.call('approval.list')).approvals.find((a) => a.host === host), `an approval prompt for ${host}`);
}

describe('resolve after approval', () => {
  test('a pool rotated while the request waits for approval: the member active at approval time serves it', async () => {
    const secretA = fakeSecret();
    const secretB = fakeSecret();
    await d.client.call('cred.add', { name: 'wait-a', hosts: [ANT], header: 'x-api-key', secret: secretA });
    await d.client.call('cred.add', { name: 'wait-b', hosts: [ANT], header: 'x-api-key', secret: secretB });
    const pool = await d.client.call('pool.create', { name: 'wait', members: ['wait-a', 'wait-b'] });
    const from = up.seen.length;
    const pending = d.fetch(`https://${ANT}/v1/after-approval`, { headers: { 'x-api-key': pool.phantom } });
    const prompt = await pendingFor(ANT);
    // While the human looks at the prompt, the pool moves on (a rotation; a cooldown does the same).
    await d.client.call('pool.rotate', { name: 'wait' });
    expect((await d.client.call('pool.status', { name: 'wait' })).pools[0]!.active).toBe('wait-b');
    await d.client.call('approval.resolve', { id: prompt.id, decision: 'allow_once' });
    const r = await pending;
    expect(r.status).toBe(200);
    const seen = up.seen.slice(from).filter((s) => s.path === '/v1/after-approval');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-api-key']).toBe(secretB);
    const row = await waitFor(
      async () => (await d.client.call('audit.tail', { n: 50 })).rows.find((x) => x.event === 'request' && x.path === '/v1/after-approval'),
      'the request row',
    );
    expect(row.credential).toBe('wait-b');
  });

  test('an expired OAuth token is refreshed only after the approval, never while the prompt is open', async () => {
    const acct = oa.addAccount('approve-later');
    const cred = await d.client.call('cred.add', {
      name: 'approve-later',
      kind: 'oauth',
      hosts: [API],
      token_url: `https://${AUTH}/oauth/token`,
      secret: JSON.stringify({ access_token: acct.access_token, refresh_token: acct.refresh_token, id_token: acct.id_token, expires_at: Date.now() - 60_000 }),
    });
    const oldAccess = acct.access_token;
    const grantsBefore = oa.seen.length;
    const from = up.seen.length;
    const pending = d.fetch(`https://${API}/v1/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${cred.phantom}`, 'content-type': 'application/json' },
      body: '{"input":"hi"}',
    });
    const prompt = await pendingFor(API);
    // The prompt is open: nothing may have gone to the identity provider on this request's behalf.
    expect(oa.seen.slice(grantsBefore).filter((s) => s.refresh_token?.startsWith('rt_approve-later_'))).toHaveLength(0);
    await d.client.call('approval.resolve', { id: prompt.id, decision: 'allow_once' });
    const r = await pending;
    expect(r.status).toBe(200);
    expect(oa.seen.slice(grantsBefore).filter((s) => s.refresh_token?.startsWith('rt_approve-later_'))).toHaveLength(1);
    const seen = up.seen.slice(from).filter((s) => s.path === '/v1/responses');
    expect(seen).toHaveLength(1);
    const sent = String(seen[0]!.headers.authorization).replace(/^Bearer /, '');
    expect(sent).not.toBe(oldAccess);
    expect(sent).toBe(oa.accounts.get('approve-later')!.access_token);
  });
});
