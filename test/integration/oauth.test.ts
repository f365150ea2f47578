/**
 * OAuth credentials and OAuth pools end to end (issue 7, DESIGN §7 "OAuth members"), with real TLS:
 * agent → sluice proxy (MITM) → fake HTTPS upstreams. api.openai.com goes to the fake API (which records
 * the bearer token it got and can rate-limit one account by its real token); auth.openai.com goes to the
 * fake token endpoint (real HMAC-signed JWTs, rotating single-use refresh tokens, `invalid_grant` for a
 * spent one). Every account shares ONE token URL, as two ChatGPT/Codex accounts do.
 *
 * The agent may only ever see phantoms. Each test creates its own accounts, credentials and pools, so
 * cooldowns do not leak between tests; the proactive-refresh test runs first because the daemon's own
 * periodic refresh (every 30 s) would otherwise mask a missing refresh-before-switch; the leak sweep over
 * every response, log line, RPC result and database byte runs last.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { UNATTRIBUTED_TOKEN } from '../../src/daemon/oauth/token-exchange.js';
import type { CredentialInfo } from '../../src/shared/protocol/entities.js';
import type { PoolInfo } from '../../src/shared/protocol/events.js';
import { connectDaemon } from '../../src/shared/rpc/client.js';
import { BIN, shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeOAuth, type FakeAccount, type FakeOAuth } from '../fakes/fake-oauth.js';
import { startFakeUpstream, type FakeUpstream, type SeenRequest } from '../fakes/fake-upstream.js';
import { seenText, stateFiles, waitFor } from './helpers.js';

const API = 'api.openai.com';
const AUTH = 'auth.openai.com';
const TOKEN_URL = `https://${AUTH}/oauth/token`;
const CODEX_CLAIM = 'https://api.openai.com/auth';
const run = promisify(execFile);

let up: FakeUpstream;
let oa: FakeOAuth;
let d: TestDaemon;
let daemonStartedAt = 0;
let tmp: string;
/** Everything any response (or CLI output) handed to the agent/user contained, for the final leak sweep. */
const agentSaw: string[] = [];
/** Real tokens that did not come from the fake token endpoint (imported files), for the final sweep. */
const extraReals: string[] = [];

beforeAll(async () => {
  up = await startFakeUpstream();
  oa = await startFakeOAuth();
  tmp = shortTempDir('oat');
  d = await startDaemon({
    upstreamPort: up.port,
    env: { SLUICE_RESOLVE: `${API}:443:127.0.0.1:${up.port},${AUTH}:443:127.0.0.1:${oa.port},other.example:443:127.0.0.1:${up.port}` },
  });
  daemonStartedAt = Date.now();
  for (const host of [API, AUTH, 'other.example']) await d.client.call('rule.add', { verdict: 'allow', host });
});

afterAll(async () => {
  await d?.stop();
  await up?.close();
  await oa?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------- helpers

type Res = { status: number; headers: Record<string, string | string[] | undefined>; text: string };

/** A request through the proxy; its whole response is remembered for the leak sweep. */
async function agent(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Res> {
  const r = await d.fetch(url, init);
  agentSaw.push(`${url}\n${r.status}\n${JSON.stringify(r.headers)}\n${r.text}`);
  return r;
}

/** An API call with `bearer`; returns the response and the bearer token the fake API received (last one). */
async function api(bearer: string, p = '/v1/responses'): Promise<{ res: Res; got: string[] }> {
  const n = up.seen.length;
  const res = await agent(`https://${API}${p}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-5-codex', input: 'hi' }),
  });
  return { res, got: up.seen.slice(n).map(bearerOf) };
}

const bearerOf = (r: SeenRequest) => String(r.headers.authorization ?? '').replace(/^Bearer\s+/i, '');

/** A refresh-grant request to the token URL carrying `refreshToken` (JSON or form body; JSON or form answer). */
async function refresh(refreshToken: string, opts: { form?: boolean; formAnswer?: boolean; extra?: Record<string, string> } = {}): Promise<Res> {
  const fields = { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: 'app_EMoamEEZ73f0CkXaXp7hrann', ...opts.extra };
  const headers: Record<string, string> = {
    'content-type': opts.form ? 'application/x-www-form-urlencoded' : 'application/json',
    accept: opts.formAnswer ? 'application/x-www-form-urlencoded' : 'application/json',
  };
  const body = opts.form ? new URLSearchParams(fields).toString() : JSON.stringify(fields);
  return agent(TOKEN_URL, { method: 'POST', headers, body });
}

/** Fields of a token response (JSON or form). */
function fieldsOf(r: Res): Record<string, string> {
  const ct = String(r.headers['content-type'] ?? '');
  if (ct.includes('x-www-form-urlencoded')) return Object.fromEntries(new URLSearchParams(r.text));
  return JSON.parse(r.text) as Record<string, string>;
}

/** The claims of a JWT (no verification). */
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
const accountIdOf = (jwt: string) => (claimsOf(jwt)[CODEX_CLAIM] as { chatgpt_account_id?: string } | undefined)?.chatgpt_account_id;

/** Every token the fake ever issued, plus the signature segments of its JWTs. */
function allRealTokens(): string[] {
  const out = new Set<string>();
  for (const t of [...oa.issued, ...extraReals]) {
    out.add(t);
    const parts = t.split('.');
    if (parts.length === 3 && parts[2]!.length >= 16) out.add(parts[2]!);
  }
  return [...out];
}
/** The real tokens that occur in `text`. */
const realIn = (text: string) => allRealTokens().filter((t) => text.includes(t));

let accountSeq = 0;
/** A fresh account at the fake token endpoint. */
const account = (label: string): FakeAccount => oa.addAccount(`${label}-${++accountSeq}`);

/** A Codex `auth.json` for an account. */
function codexAuthJson(a: FakeAccount, extra: Record<string, unknown> = {}): string {
  return JSON.stringify(
    {
      OPENAI_API_KEY: null,
      tokens: { id_token: a.id_token, access_token: a.access_token, refresh_token: a.refresh_token, account_id: a.id, ...extra },
      last_refresh: new Date().toISOString(),
    },
    null,
    2,
  );
}

/** `sluicectl cred add NAME --kind oauth … --from-file <file>` with the built CLI. */
async function cliImport(name: string, fileText: string, host = API): Promise<CredentialInfo> {
  const file = path.join(tmp, `${name}.json`);
  fs.writeFileSync(file, fileText, { mode: 0o600 });
  const env: NodeJS.ProcessEnv = { ...process.env, SLUICE_HOME: d.home };
  delete env.SLUICE_SOCKET;
  const { stdout, stderr } = await run(
    process.execPath,
    [BIN.cli, 'cred', 'add', name, '--kind', 'oauth', '--host', host, '--token-url', TOKEN_URL, '--from-file', file, '--json'],
    { env, timeout: 15_000 },
  );
  agentSaw.push(stdout, stderr);
  return JSON.parse(stdout) as CredentialInfo;
}

/** `cred.add` over RPC with an OAuth JSON secret. */
async function addOAuth(name: string, secret: string): Promise<CredentialInfo> {
  const c = await d.client.call('cred.add', { name, kind: 'oauth', hosts: [API], token_url: TOKEN_URL, secret });
  agentSaw.push(JSON.stringify(c));
  return c;
}

async function poolStatus(name: string): Promise<PoolInfo> {
  const r = await d.client.call('pool.status', { name });
  return r.pools[0]!;
}
const member = (p: PoolInfo, name: string) => p.members.find((m) => m.name === name)!;

async function auditRows(event: string) {
  return (await d.client.call('audit.tail', { n: 10_000 })).rows.filter((r) => r.event === event);
}

/** The sealed secret bytes of every credential, read from the daemon's database file (read-only). */
function sealed(): Record<string, string> {
  const db = new Database(path.join(d.home, 'sluice.db'), { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT name, secret_iv, secret_ct, secret_tag FROM credentials ORDER BY name').all() as {
      name: string;
      secret_iv: Buffer;
      secret_ct: Buffer;
      secret_tag: Buffer;
    }[];
    return Object.fromEntries(rows.map((r) => [r.name, Buffer.concat([r.secret_iv, r.secret_ct, r.secret_tag]).toString('hex')]));
  } finally {
    db.close();
  }
}

/** Requests the fake token endpoint saw that carried one of `a`'s refresh tokens. */
const refreshesAt = (a: FakeAccount) => oa.seen.filter((s) => s.refresh_token?.startsWith(`rt_${a.id}_`));

// ------------------------------------------------------------------------------------------------ tests

describe('proactive refresh', () => {
  test('a member whose access token expired is refreshed BEFORE the pool switches to it; the replay uses the new token', async () => {
    // The daemon also refreshes due tokens every 30 s on its own; this test must finish before that could
    // happen, or a missing refresh-before-switch would go unnoticed.
    expect(Date.now() - daemonStartedAt).toBeLessThan(20_000);
    const A = account('pro-a');
    const B = account('pro-b');
    const bOld = { ...B };
    await addOAuth('pro-a', codexAuthJson(A));
    await addOAuth(
      'pro-b',
      JSON.stringify({ access_token: B.access_token, refresh_token: B.refresh_token, id_token: B.id_token, expires_at: Date.now() - 60_000 }),
    );
    const pool = await d.client.call('pool.create', { name: 'pro', members: ['pro-a', 'pro-b'] });
    // While A serves, the expired B is left alone (it is not in use).
    const first = await api(pool.phantom);
    expect(first.res.status).toBe(200);
    expect(first.got).toEqual([A.access_token]);
    expect(refreshesAt(B)).toHaveLength(0);

    up.keyStatus.set(A.access_token, { status: 429, headers: { 'retry-after': '120' } });
    const r = await api(pool.phantom);
    expect(r.res.status).toBe(200);
    // B was refreshed once with its original refresh token, and the replay carried B's NEW access token.
    expect(refreshesAt(B).map((s) => s.refresh_token)).toEqual([bOld.refresh_token]);
    expect(B.refreshes).toBe(1);
    expect(r.got).toEqual([A.access_token, B.access_token]);
    expect(B.access_token).not.toBe(bOld.access_token);
    expect(up.seen.some((s) => bearerOf(s) === bOld.access_token)).toBe(false);
    expect((await poolStatus('pro')).active).toBe('pro-b');
    await waitFor(async () => (await auditRows('oauth_refreshed')).some((x) => x.credential === 'pro-b'), 'oauth_refreshed audit row for pro-b');
    // The refreshed tokens are B's from now on (saved, not a one-off).
    expect((await api(pool.phantom)).got).toEqual([B.access_token]);
    expect(realIn(r.res.text + first.res.text)).toEqual([]);
  });

  test('a request that reaches the pool while the switch-time refresh is still running does not use the expired token', async () => {
    const A = account('race-a');
    const B = account('race-b');
    const bOld = { ...B };
    await addOAuth('race-a', codexAuthJson(A));
    await addOAuth(
      'race-b',
      JSON.stringify({ access_token: B.access_token, refresh_token: B.refresh_token, id_token: B.id_token, expires_at: Date.now() - 60_000 }),
    );
    const pool = await d.client.call('pool.create', { name: 'race', members: ['race-a', 'race-b'] });
    up.keyStatus.set(A.access_token, { status: 429, headers: { 'retry-after': '120' } });
    // The provider rejects B's expired token, as a real one would.
    up.keyStatus.set(bOld.access_token, { status: 401, body: JSON.stringify({ error: { code: 'token_expired' } }) });
    oa.delayMs = 800;
    try {
      const firstP = api(pool.phantom);
      // Wait until the switch-time refresh of B is under way at the token endpoint, then send another request.
      await waitFor(() => refreshesAt(B).length === 1, 'refresh of race-b under way');
      const second = await api(pool.phantom);
      const first = await firstP;
      // The pool must not hand out race-b's expired token while its refresh is under way (the request
      // should wait for the refresh, or stay on a usable member) …
      expect(second.got, 'a request admitted during the switch-time refresh carried the expired token').not.toContain(bOld.access_token);
      expect(up.seen.some((s) => bearerOf(s) === bOld.access_token)).toBe(false);
      // … so both requests succeed, race-b is refreshed once and is not parked as "auth failed".
      expect(second.res.status).toBe(200);
      expect(first.res.status).toBe(200);
      expect(refreshesAt(B)).toHaveLength(1);
      expect(member(await poolStatus('race'), 'race-b').healthy).toBe(true);
    } finally {
      oa.delayMs = 0;
    }
  });
});

describe('the seed case: two Codex accounts sharing one token URL behind one pool', () => {
  test('A until 429 → failover to B → refresh through the pool phantom rotates B (saved to B), A untouched, phantom byte-identical, cred_failover row', async () => {
    const A = account('seed-a');
    const B = account('seed-b');
    const a0 = { ...A };
    const b0 = { ...B };
    // Imported from Codex auth.json files with the CLI.
    const ca = await cliImport('seed-a', codexAuthJson(A));
    const cb = await cliImport('seed-b', codexAuthJson(B));
    expect(ca).toMatchObject({ name: 'seed-a', kind: 'oauth', hosts: [API], token_url: TOKEN_URL });
    expect(ca.phantom_refresh).toMatch(/SLUICE[A-Za-z0-9]{40}$/);
    expect(accountIdOf(ca.phantom)).toBe(A.id);
    expect(accountIdOf(cb.phantom)).toBe(B.id);

    const created = await d.client.call('pool.create', { name: 'seed', members: ['seed-a', 'seed-b'] });
    const P = created.phantom;
    const PR = created.phantom_refresh!;
    expect(PR).toMatch(/SLUICE[A-Za-z0-9]{40}$/);
    // The pool phantom is a JWT carrying the Codex account-id claim path, with a far-future exp.
    expect(accountIdOf(P)).toBe(A.id);
    expect(claimsOf(P).exp as number).toBeGreaterThan(Date.now() / 1000 + 5 * 365 * 86400);
    const listed = (await d.client.call('pool.list')).pools.find((p) => p.name === 'seed')!;
    expect(listed.phantom).toBe(P);
    expect(listed.phantom_refresh).toBe(PR);

    // 1. A serves while healthy.
    for (let i = 0; i < 2; i++) {
      const r = await api(P);
      expect(r.res.status).toBe(200);
      expect(r.got).toEqual([A.access_token]);
    }
    // 2. A is rate-limited → this very request is replayed on B; B serves from now on.
    up.keyStatus.set(A.access_token, { status: 429, headers: { 'retry-after': '120' } });
    const fo = await api(P);
    expect(fo.res.status).toBe(200);
    expect(fo.got).toEqual([A.access_token, B.access_token]);
    let st = await poolStatus('seed');
    expect(st.active).toBe('seed-b');
    expect(member(st, 'seed-a')).toMatchObject({ healthy: false, reason: 'rate_limited' });
    expect((await api(P)).got).toEqual([b0.access_token]);
    // Failing over to a healthy, unexpired member does not refresh it.
    expect(refreshesAt(B)).toHaveLength(0);
    const foRows = await waitFor(
      async () => (await auditRows('cred_failover')).filter((r) => r.detail === 'seed:seed-a->seed-b:rate_limited'),
      'cred_failover row',
    );
    expect(foRows).toHaveLength(1);
    expect(foRows[0]!.credential).toBe('seed-a');

    // 3. The agent refreshes with the pool's refresh phantom: B's real refresh token goes to the token URL.
    const r1 = await refresh(PR);
    expect(r1.status).toBe(200);
    expect(refreshesAt(B).map((s) => s.refresh_token)).toEqual([b0.refresh_token]);
    const f1 = fieldsOf(r1);
    expect(f1.access_token).toBe(P);
    expect(f1.refresh_token).toBe(PR);
    expect(accountIdOf(f1.id_token!)).toBe(B.id);
    expect(f1.id_token).not.toBe(B.id_token);
    expect(realIn(r1.text + JSON.stringify(r1.headers))).toEqual([]);
    // B's rotated tokens were saved to B: the next API call carries B's NEW access token …
    expect(B.refreshes).toBe(1);
    expect((await api(P)).got).toEqual([B.access_token]);
    expect(B.access_token).not.toBe(b0.access_token);
    // … and the next refresh sends B's NEW refresh token (the old one is spent at the fake).
    const b1Refresh = B.refresh_token;
    const r2 = await refresh(PR, { form: true });
    expect(r2.status).toBe(200);
    expect(refreshesAt(B).map((s) => s.refresh_token)).toEqual([b0.refresh_token, b1Refresh]);
    expect(fieldsOf(r2)).toMatchObject({ access_token: P, refresh_token: PR });
    expect((await api(P)).got).toEqual([B.access_token]);

    // 4. A is untouched: its refresh token was never sent, never spent, and its vault entry is still a0.
    expect(refreshesAt(A)).toEqual([]);
    expect(A.refreshes).toBe(0);
    expect(A.refresh_token).toBe(a0.refresh_token);

    // 5. The pool phantoms are byte-identical before and after failover and refreshes.
    const after = (await d.client.call('pool.list')).pools.find((p) => p.name === 'seed')!;
    expect(after.phantom).toBe(P);
    expect(after.phantom_refresh).toBe(PR);

    // 6. Back on A (reset the cooldowns, park B): A still has its original tokens, and its refresh token
    //    is still good at the token endpoint.
    up.keyStatus.delete(A.access_token);
    await d.client.call('pool.reset', { name: 'seed' });
    await d.client.call('pool.rotate', { name: 'seed' });
    st = await poolStatus('seed');
    expect(st.active).toBe('seed-a');
    expect((await api(P)).got).toEqual([a0.access_token]);
    const r3 = await refresh(PR);
    expect(r3.status).toBe(200);
    expect(refreshesAt(A).map((s) => s.refresh_token)).toEqual([a0.refresh_token]);
    expect(fieldsOf(r3)).toMatchObject({ access_token: P, refresh_token: PR });
    expect(accountIdOf(fieldsOf(r3).id_token!)).toBe(A.id);
    expect((await api(P)).got).toEqual([A.access_token]);
    expect(realIn(r2.text + r3.text)).toEqual([]);
  });
});

describe('single OAuth credential', () => {
  test('refresh (JSON and form requests; JSON and form answers) → the credential’s own phantoms; real tokens saved', async () => {
    const S = account('solo');
    const c = await addOAuth('solo', codexAuthJson(S));
    const seenRefreshes: string[] = [S.refresh_token];
    expect((await api(c.phantom)).got).toEqual([S.access_token]);
    for (const opts of [{}, { form: true, formAnswer: true }, { form: true }, { formAnswer: true }]) {
      const r = await refresh(c.phantom_refresh!, opts);
      expect(r.status, JSON.stringify(opts)).toBe(200);
      expect(String(r.headers['content-type'])).toContain(opts.formAnswer ? 'x-www-form-urlencoded' : 'json');
      const f = fieldsOf(r);
      expect(f.access_token).toBe(c.phantom);
      expect(f.refresh_token).toBe(c.phantom_refresh);
      expect(f.token_type).toBe('Bearer');
      expect(String(f.expires_in)).toBe('3600');
      expect(accountIdOf(f.id_token!)).toBe(S.id);
      expect(realIn(r.text + JSON.stringify(r.headers))).toEqual([]);
      // The fake got the request in the agent's encoding with the (current) real refresh token.
      const last = oa.seen[oa.seen.length - 1]!;
      expect(last.contentType).toContain(opts.form ? 'x-www-form-urlencoded' : 'json');
      expect(last.refresh_token).toBe(seenRefreshes[seenRefreshes.length - 1]);
      seenRefreshes.push(S.refresh_token);
      // Saved: the API now gets the newest access token.
      expect((await api(c.phantom)).got).toEqual([S.access_token]);
    }
    expect(S.refreshes).toBe(4);
    const listed = (await d.client.call('cred.list')).credentials.find((x) => x.name === 'solo')!;
    expect(listed.phantom).toBe(c.phantom);
    expect(listed.phantom_refresh).toBe(c.phantom_refresh);
  });

  test('a Claude Code credentials file imported with --from-file serves its access token', async () => {
    const cc = {
      claudeAiOauth: {
        accessToken: `sk-ant-oat01-REAL${'x'.repeat(20)}${++accountSeq}`,
        refreshToken: `sk-ant-ort01-REAL${'y'.repeat(20)}${accountSeq}`,
        expiresAt: Date.now() + 3_600_000,
        scopes: ['user:inference'],
      },
    };
    extraReals.push(cc.claudeAiOauth.accessToken, cc.claudeAiOauth.refreshToken);
    const c = await cliImport('claude-code', JSON.stringify(cc));
    expect(c.kind).toBe('oauth');
    expect(c.phantom_refresh).toMatch(/SLUICE[A-Za-z0-9]{40}$/);
    expect(JSON.stringify(c)).not.toContain('REAL');
    const r = await api(c.phantom);
    expect(r.got).toEqual([cc.claudeAiOauth.accessToken]);
    expect(r.res.text).not.toContain('REAL');
  });
});

describe('attribution unknown → response rewritten, nothing saved', () => {
  test('a refresh request carrying no phantom (the real refresh token itself): placeholders to the agent, no credential changes', async () => {
    const N = account('anon');
    const n0 = { ...N };
    const c = await addOAuth('anon', codexAuthJson(N));
    const before = sealed();
    const r = await refresh(n0.refresh_token);
    expect(r.status).toBe(200);
    // The token endpoint really rotated the account …
    expect(N.refreshes).toBe(1);
    // … but none of the new real tokens reached the agent, and no phantom pretends the refresh belonged to anyone.
    expect(realIn(r.text + JSON.stringify(r.headers)).filter((t) => t !== n0.refresh_token)).toEqual([]);
    const f = fieldsOf(r);
    expect(f.access_token).toBe(UNATTRIBUTED_TOKEN);
    expect(f.refresh_token).toBe(UNATTRIBUTED_TOKEN);
    expect(f.id_token).not.toBe(N.id_token);
    // Nothing saved, to this or any other credential.
    expect(sealed()).toEqual(before);
    expect((await api(c.phantom)).got).toEqual([n0.access_token]);
    // The vault still holds the (now spent) old refresh token: the agent's phantom refresh fails, visibly.
    const again = await refresh(c.phantom_refresh!);
    expect(again.status).toBe(400);
    expect(again.text).toContain('invalid_grant');
    expect(oa.seen[oa.seen.length - 1]!.refresh_token).toBe(n0.refresh_token);
    expect(sealed()).toEqual(before);
    await waitFor(() => fs.readFileSync(path.join(d.home, 'sluiced.log'), 'utf8').includes('could not be attributed'), 'the unattributed warning in the log');
  });

  test('two different refresh phantoms in one request: ambiguous → rewritten, nothing saved', async () => {
    const X = account('amb-x');
    const Y = account('amb-y');
    const cx = await addOAuth('amb-x', codexAuthJson(X));
    const cy = await addOAuth('amb-y', codexAuthJson(Y));
    const before = sealed();
    const r = await refresh(cx.phantom_refresh!, { extra: { note: cy.phantom_refresh! } });
    expect(r.status).toBe(200);
    expect(X.refreshes).toBe(1);
    expect(realIn(r.text)).toEqual([]);
    expect(fieldsOf(r).access_token).toBe(UNATTRIBUTED_TOKEN);
    expect(sealed()).toEqual(before);
  });

  test('an unknown refresh token: the endpoint’s invalid_grant passes through, nothing saved, nobody cooled', async () => {
    const before = sealed();
    const poolsBefore = (await d.client.call('pool.list')).pools.map((p) => p.members.map((m) => m.healthy));
    const r = await refresh('rt_never_issued_by_anyone_0123456789');
    expect(r.status).toBe(400);
    expect(JSON.parse(r.text)).toMatchObject({ error: 'invalid_grant' });
    expect(sealed()).toEqual(before);
    expect((await d.client.call('pool.list')).pools.map((p) => p.members.map((m) => m.healthy))).toEqual(poolsBefore);
  });
});

describe('other grant types pass through untouched', () => {
  const cases: { what: string; contentType: string; accept?: string; body: string }[] = [
    {
      what: 'device-code grant (JSON)',
      contentType: 'application/json',
      body: JSON.stringify({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'dev-123', client_id: 'app_EMoamEEZ73f0CkXaXp7hrann' }),
    },
    {
      what: 'device-code grant (form, form answer)',
      contentType: 'application/x-www-form-urlencoded',
      accept: 'application/x-www-form-urlencoded',
      body: 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=dev-123&client_id=app_x',
    },
    {
      what: 'authorization-code grant (form)',
      contentType: 'application/x-www-form-urlencoded',
      body: 'grant_type=authorization_code&code=ac_0123456789&redirect_uri=http%3A%2F%2Flocalhost%3A1455%2Fauth%2Fcallback&client_id=app_x&code_verifier=verifier-abc',
    },
  ];
  for (const c of cases) {
    test(`${c.what}: the body reaches the endpoint byte-identical and the answer comes back byte-identical`, async () => {
      const before = sealed();
      const n = oa.seen.length;
      const r = await agent(TOKEN_URL, { method: 'POST', headers: { 'content-type': c.contentType, ...(c.accept ? { accept: c.accept } : {}) }, body: c.body });
      expect(r.status).toBe(200);
      expect(oa.seen.slice(n)).toHaveLength(1);
      expect(oa.seen[n]!.body).toBe(c.body);
      expect(oa.seen[n]!.contentType).toBe(c.contentType);
      const grant = c.contentType.includes('json') ? (JSON.parse(c.body) as { grant_type: string }).grant_type : new URLSearchParams(c.body).get('grant_type')!;
      const expected = { device_code: 'dev-123', user_code: 'ABCD-EFGH', echo_grant: grant };
      expect(r.text).toBe(c.accept ? new URLSearchParams(expected).toString() : JSON.stringify(expected));
      expect(sealed()).toEqual(before);
    });
  }
});

describe('refresh phantoms resolve only inside a refresh grant to the token host', () => {
  test('sent to the API host, in other grants, to another path or by GET: never swapped; the real refresh token never leaves', async () => {
    const L = account('leak');
    const c = await addOAuth('leak', codexAuthJson(L));
    const PA = account('leakp-a');
    const PB = account('leakp-b');
    await addOAuth('leakp-a', codexAuthJson(PA));
    await addOAuth('leakp-b', codexAuthJson(PB));
    const pool = await d.client.call('pool.create', { name: 'leakp', members: ['leakp-a', 'leakp-b'] });
    const realRefresh = [L.refresh_token, PA.refresh_token, PB.refresh_token];
    const upN = up.seen.length;
    const oaN = oa.seen.length;
    const attempts = (rp: string): { url: string; method: string; headers: Record<string, string>; body?: string }[] => [
      { url: `https://${API}/v1/models`, method: 'GET', headers: { authorization: `Bearer ${rp}` } },
      { url: `https://${API}/v1/responses`, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: rp }) },
      {
        url: `https://${API}/oauth/token`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: rp }),
      },
      {
        url: TOKEN_URL,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code', device_code: 'd', refresh_token: rp }),
      },
      {
        url: TOKEN_URL,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: `grant_type=authorization_code&code=c&refresh_token=${rp}`,
      },
      {
        url: TOKEN_URL,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${rp}` },
        body: JSON.stringify({ grant_type: 'client_credentials' }),
      },
      {
        url: `https://${AUTH}/oauth/revoke`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: rp }),
      },
      { url: `${TOKEN_URL}?grant_type=refresh_token&refresh_token=${rp}`, method: 'GET', headers: {} },
      {
        url: `https://other.example/oauth/token`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: rp }),
      },
    ];
    for (const rp of [c.phantom_refresh!, pool.phantom_refresh!]) {
      for (const a of attempts(rp)) {
        const r = await agent(a.url, { method: a.method, headers: a.headers, ...(a.body ? { body: a.body } : {}) });
        // Blocked as a leak before anything goes upstream.
        expect(r.status, `${a.method} ${a.url} ${a.body ?? ''}`).toBe(403);
        expect(r.headers['x-sluice-reason']).toBe('phantom_leak');
        expect(JSON.parse(r.text)).toMatchObject({ sluice: { code: 'phantom_leak' } });
      }
    }
    const upstreamText =
      up.seen.slice(upN).map(seenText).join('\n') +
      oa.seen
        .slice(oaN)
        .map((s) => `${s.method} ${s.path}\n${s.body}`)
        .join('\n');
    expect(realRefresh.filter((t) => upstreamText.includes(t))).toEqual([]);
    const leaks = await auditRows('phantom_leak');
    expect(leaks.filter((r) => (r.credential ?? '').includes('leak')).length).toBeGreaterThanOrEqual(18);
    // The same phantoms do work in a refresh grant to the token URL (so the refusals above were specific).
    expect((await refresh(c.phantom_refresh!)).status).toBe(200);
    expect((await refresh(pool.phantom_refresh!)).status).toBe(200);
    expect(PA.refreshes + L.refreshes).toBe(2);
  });
});

describe('failover on token-endpoint errors cools the member that was actually used', () => {
  test('invalid_grant for the active member A: A cools, the refresh is replayed on B, the agent gets pool phantoms with B’s claims', async () => {
    const A = account('ig-a');
    const B = account('ig-b');
    const b0 = { ...B };
    await addOAuth('ig-a', codexAuthJson(A));
    await addOAuth('ig-b', codexAuthJson(B));
    const pool = await d.client.call('pool.create', { name: 'ig', members: ['ig-a', 'ig-b'] });
    const spentA = oa.spendRefresh(A.id);
    const sealedA = sealed()['ig-a'];
    const t0 = Date.now();
    const r = await refresh(pool.phantom_refresh!);
    expect(r.status).toBe(200);
    // The endpoint saw A's (spent) token, then B's.
    expect(refreshesAt(A).map((s) => s.refresh_token)).toEqual([spentA]);
    expect(refreshesAt(B).map((s) => s.refresh_token)).toEqual([b0.refresh_token]);
    const f = fieldsOf(r);
    expect(f.access_token).toBe(pool.phantom);
    expect(f.refresh_token).toBe(pool.phantom_refresh);
    expect(accountIdOf(f.id_token!)).toBe(B.id);
    expect(realIn(r.text)).toEqual([]);
    const st = await poolStatus('ig');
    expect(st.active).toBe('ig-b');
    expect(member(st, 'ig-a')).toMatchObject({ healthy: false, reason: 'auth_failed' });
    expect(Date.parse(member(st, 'ig-a').cooldown_until!)).toBeGreaterThanOrEqual(t0 + 290_000);
    expect(member(st, 'ig-b').healthy).toBe(true);
    // B's new tokens were saved to B; A's stored secret did not change.
    expect((await api(pool.phantom)).got).toEqual([B.access_token]);
    expect(sealed()['ig-a']).toBe(sealedA);
    await waitFor(async () => (await auditRows('cred_failover')).some((x) => x.detail === 'ig:ig-a->ig-b:auth_failed'), 'cred_failover ig-a->ig-b');
  });

  test('invalid_grant for B while B is active and A comes first: B cools (not the first member with that token URL), A serves', async () => {
    const A = account('ig2-a');
    const B = account('ig2-b');
    const a0 = { ...A };
    await addOAuth('ig2-a', codexAuthJson(A));
    await addOAuth('ig2-b', codexAuthJson(B));
    const pool = await d.client.call('pool.create', { name: 'ig2', members: ['ig2-a', 'ig2-b'] });
    await d.client.call('pool.rotate', { name: 'ig2' });
    await d.client.call('pool.reset', { name: 'ig2' });
    let st = await poolStatus('ig2');
    expect(st.active).toBe('ig2-b');
    expect(st.members.every((m) => m.healthy)).toBe(true);
    const spentB = oa.spendRefresh(B.id);
    const sealedB = sealed()['ig2-b'];
    const r = await refresh(pool.phantom_refresh!);
    expect(r.status).toBe(200);
    expect(refreshesAt(B).map((s) => s.refresh_token)).toEqual([spentB]);
    expect(refreshesAt(A).map((s) => s.refresh_token)).toEqual([a0.refresh_token]);
    st = await poolStatus('ig2');
    expect(member(st, 'ig2-b')).toMatchObject({ healthy: false, reason: 'auth_failed' });
    expect(member(st, 'ig2-a').healthy).toBe(true);
    expect(st.active).toBe('ig2-a');
    const f = fieldsOf(r);
    expect(f).toMatchObject({ access_token: pool.phantom, refresh_token: pool.phantom_refresh });
    expect(accountIdOf(f.id_token!)).toBe(A.id);
    expect((await api(pool.phantom)).got).toEqual([A.access_token]);
    expect(sealed()['ig2-b']).toBe(sealedB);
    // A second refresh goes on with A's rotated token: the replayed response was saved to A.
    const a1 = A.refresh_token;
    expect((await refresh(pool.phantom_refresh!)).status).toBe(200);
    expect(refreshesAt(A).map((s) => s.refresh_token)).toEqual([a0.refresh_token, a1]);
  });

  test('401 from the API host for the active member B (A first): B cools, the call is replayed on A', async () => {
    const A = account('u-a');
    const B = account('u-b');
    await addOAuth('u-a', codexAuthJson(A));
    await addOAuth('u-b', codexAuthJson(B));
    const pool = await d.client.call('pool.create', { name: 'u', members: ['u-a', 'u-b'] });
    await d.client.call('pool.rotate', { name: 'u' });
    await d.client.call('pool.reset', { name: 'u' });
    expect((await poolStatus('u')).active).toBe('u-b');
    up.keyStatus.set(B.access_token, { status: 401, body: JSON.stringify({ error: { code: 'invalid_api_key' } }) });
    const r = await api(pool.phantom);
    expect(r.res.status).toBe(200);
    expect(r.got).toEqual([B.access_token, A.access_token]);
    const st = await poolStatus('u');
    expect(member(st, 'u-b')).toMatchObject({ healthy: false, reason: 'auth_failed' });
    expect(member(st, 'u-a').healthy).toBe(true);
  });
});

describe('real tokens never reach the agent, the log, RPC results, the audit log or the database file', () => {
  test('sweep over everything this file produced', async () => {
    const reals = allRealTokens();
    // The sweep is only meaningful after real traffic: many tokens issued, many responses seen.
    expect(reals.length).toBeGreaterThan(100);
    expect(agentSaw.length).toBeGreaterThan(60);
    expect(agentSaw.filter((t) => t.startsWith(TOKEN_URL)).length).toBeGreaterThan(15);

    const places: Record<string, string> = {};
    places['responses to the agent'] = agentSaw.join('\n');
    places['daemon stdout/stderr'] = d.logs();
    places['sluiced.log'] = fs.readFileSync(path.join(d.home, 'sluiced.log'), 'utf8');
    for (const m of ['cred.list', 'pool.list', 'pool.status', 'stats.snapshot', 'daemon.status', 'limits.get', 'rule.list'] as const) {
      places[`rpc ${m}`] = JSON.stringify(await d.client.call(m));
    }
    places['rpc audit.tail'] = JSON.stringify(await d.client.call('audit.tail', { n: 10_000 }));
    const c = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
    try {
      places['events.subscribe snapshot'] = JSON.stringify(await c.call('events.subscribe', {}));
    } finally {
      c.close();
    }
    // audit.verify writes every queued audit row first (an explicit flush), then read the raw database
    // bytes (main file and WAL).
    await d.client.call('audit.verify');
    for (const f of stateFiles(d.home)) places[`file ${f.file}`] = f.bytes.toString('latin1');
    expect(Object.keys(places)).toEqual(expect.arrayContaining(['file sluice.db', 'file sluiced.log']));

    const found: Record<string, string[]> = {};
    for (const [where, text] of Object.entries(places)) {
      const hits = reals.filter((t) => text.includes(t));
      if (hits.length > 0) found[where] = hits.map((h) => `${h.slice(0, 12)}…`);
    }
    expect(found).toEqual({});
  });
});
