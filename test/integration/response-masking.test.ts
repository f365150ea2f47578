/**
 * Issue 19, "nothing real comes back": a hostile upstream that echoes headers, bodies and query strings,
 * redirects with the query, streams SSE one byte per write, compresses with gzip/deflate/br (and a coding
 * sluice cannot read), answers refresh grants with gzip token JSON and echoes WebSocket frames. Real TLS
 * through the built daemon. After each scenario, and over the whole run at the end, every byte the client
 * received (status line, headers, body, decoded too, WebSocket frames) is scanned for every real secret.
 */
import zlib from 'node:zlib';
import { request } from 'undici';
import type WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { BIG_BYTES, startEchoUpstream, type EchoUpstream } from '../fakes/echo-upstream.js';
import { closed, openWsAt, within } from '../fakes/ws-helpers.js';
import { fakeSecret, randomAlnum, tokenOf, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';
const OAI = 'api.openai.com';
const AUTH = 'auth.openai.com';
const TOKEN_URL = `https://${AUTH}/oauth/token`;

const SECRET_ANT = fakeSecret('sk-ant-api03-');
const ACCESS = `at-real-${randomAlnum(32)}`;
const REFRESH = `rt-real-${randomAlnum(32)}`;
const ID_SIG = `idsig${randomAlnum(40)}`;
const ID_TOKEN = `${Buffer.from('{"alg":"RS256"}').toString('base64url')}.${Buffer.from('{"sub":"acct-1","email":"a@example.test"}').toString('base64url')}.${ID_SIG}`;

let echo: EchoUpstream;
let d: TestDaemon;
let antPhantom = '';
let oaiPhantom = '';
let oaiRefreshPhantom = '';

/** Every byte any client of these tests received, for the scans. */
const received: Buffer[] = [];

/** The real secrets: the stored ones and every token the token endpoint ever issued. */
function reals(): string[] {
  const idSigs = echo.issued.filter((t) => t.split('.').length === 3).map((t) => t.split('.')[2]!);
  return [SECRET_ANT, ACCESS, REFRESH, ID_SIG, ...echo.issued, ...idSigs];
}

/** The real secrets found in `bufs` (raw, and decoded when they are gzip/deflate/br). */
function leaks(bufs: readonly Buffer[]): string[] {
  const out = new Set<string>();
  for (const b of bufs) {
    const views = [b];
    for (const dec of [zlib.gunzipSync, zlib.inflateSync, zlib.inflateRawSync, zlib.brotliDecompressSync]) {
      try {
        views.push(dec(b));
      } catch {
        /* not that coding */
      }
    }
    for (const v of views) for (const s of reals()) if (v.includes(s)) out.add(s.slice(0, 10) + '…');
  }
  return [...out];
}

interface Got {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A request through the proxy; everything received is recorded raw (undici's request() never decodes). */
async function call(url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Got> {
  const res = await request(url, { method: (init.method ?? 'GET') as 'GET', headers: init.headers, body: init.body, dispatcher: d.dispatcher() });
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(Buffer.from(c as Buffer));
  const body = Buffer.concat(chunks);
  const got = { status: res.statusCode, headers: res.headers as Got['headers'], body };
  const mine = [Buffer.from(`${res.statusCode}\n${JSON.stringify(res.headers)}`), body];
  received.push(...mine);
  expect(leaks(mine), `a real secret reached the client from ${url}`).toEqual([]);
  return got;
}

type MaskedRow = { credential: string | null; detail: string | null; path: string | null };

/** The secret_masked audit rows that satisfy `pick`, or null while there are none (for waitFor). */
async function maskedRows(pick: (r: MaskedRow) => boolean): Promise<MaskedRow[] | null> {
  const r = await d.client.call('audit.tail', { n: 500 });
  const rows = (r.rows as (MaskedRow & { event: string })[]).filter((x) => x.event === 'secret_masked' && pick(x));
  return rows.length > 0 ? rows : null;
}

/** The access token the API upstream gets for the agent's phantom now. */
async function accessInUse(): Promise<string> {
  await call(`https://${OAI}/v1/models`, { headers: { authorization: `Bearer ${oaiPhantom}` } });
  return String(echo.seen.at(-1)!.headers.authorization).replace(/^Bearer /, '');
}

beforeAll(async () => {
  echo = await startEchoUpstream(REFRESH);
  d = await startDaemon({ upstreamPort: echo.port });
  for (const host of [ANT, OAI, AUTH, 'evil.example']) await d.client.call('rule.add', { verdict: 'allow', host });
  antPhantom = (await d.client.call('cred.add', { name: 'ant', hosts: [ANT], header: 'x-api-key', secret: SECRET_ANT })).phantom;
  const oauth = await d.client.call('cred.add', {
    name: 'codex',
    kind: 'oauth',
    hosts: [OAI],
    token_url: TOKEN_URL,
    secret: JSON.stringify({ access_token: ACCESS, refresh_token: REFRESH, id_token: ID_TOKEN }),
  });
  oaiPhantom = oauth.phantom;
  oaiRefreshPhantom = oauth.phantom_refresh!;
});

afterAll(async () => {
  await d?.stop();
  await echo?.close();
});

describe('HTTP responses', () => {
  test('echoed request headers and body come back with the phantom in headers and JSON body; one secret_masked row', async () => {
    const r = await call(`https://${ANT}/v1/messages?x=1`, {
      method: 'POST',
      headers: { 'x-api-key': antPhantom, 'content-type': 'application/json' },
      body: '{"prompt":"hi"}',
    });
    expect(r.status).toBe(200);
    // The upstream really got the secret (so this is masking, not a missing injection).
    expect(echo.seen.at(-1)!.headers['x-api-key']).toBe(SECRET_ANT);
    expect(r.headers['x-echo-x-api-key']).toBe(antPhantom);
    const body = JSON.parse(r.body.toString()) as { headers: Record<string, string> };
    expect(body.headers['x-api-key']).toBe(antPhantom);
    expect(Number(r.headers['content-length'])).toBe(r.body.length);
    const rows = await waitFor(() => maskedRows((x) => x.path === '/v1/messages'), 'a secret_masked row');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.credential).toBe('ant');
    expect(rows[0]!.detail).toContain('header:x-echo-x-api-key');
    expect(rows[0]!.detail).toContain('body');
    expect(JSON.stringify(rows)).not.toContain(SECRET_ANT);
  });

  test('a header named by the key (lower-cased on the way) is dropped, and audited as header-name', async () => {
    const r = await call(`https://${ANT}/named-header`, { headers: { 'x-api-key': antPhantom } });
    expect(r.status).toBe(200);
    expect(echo.seen.at(-1)!.headers['x-api-key']).toBe(SECRET_ANT);
    const names = Object.keys(r.headers).join('\n');
    expect(names).not.toContain(SECRET_ANT.toLowerCase());
    expect(names).not.toMatch(/^x-k-/m);
    expect(r.body.toString()).toBe('ok');
    const rows = await waitFor(() => maskedRows((x) => x.path === '/named-header'), 'a secret_masked row for the header name');
    expect(rows[0]!.credential).toBe('ant');
    expect(rows[0]!.detail).toContain('header-name');
  });

  test('a redirect carrying the key in Location is masked (header:location)', async () => {
    const r = await call(`https://${ANT}/redir?key=${antPhantom}`, { headers: { 'x-api-key': antPhantom } });
    expect(r.status).toBe(302);
    const loc = String(r.headers.location);
    expect(loc.startsWith('https://evil.example/landing?key=')).toBe(true);
    expect(loc).toContain(encodeURIComponent(antPhantom));
    const rows = await waitFor(() => maskedRows((x) => x.path === '/redir'), 'a secret_masked row for the redirect');
    expect(rows[0]!.detail).toContain('header:location');
  });

  test('an SSE stream written one byte per write is masked across every chunk boundary', async () => {
    const r = await call(`https://${ANT}/sse`, { headers: { 'x-api-key': antPhantom } });
    expect(r.status).toBe(200);
    const text = r.body.toString();
    expect(text).toContain(`data: ${antPhantom}\n\n`);
    expect(text.startsWith('event: echo\ndata: {')).toBe(true);
  });

  for (const coding of ['gzip', 'deflate', 'deflate-raw', 'br'] as const) {
    test(`a ${coding} body is decoded, masked and sent decoded; accept-encoding is narrowed to what sluice decodes`, async () => {
      const r = await call(`https://${ANT}/${coding}`, {
        headers: { 'x-api-key': antPhantom, 'accept-encoding': 'zstd, gzip;q=0.9, br, deflate, compress, *' },
      });
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding']).toBeUndefined();
      const body = JSON.parse(r.body.toString()) as { headers: Record<string, string> };
      expect(body.headers['x-api-key']).toBe(antPhantom);
      expect(echo.seen.at(-1)!.headers['accept-encoding']).toBe('gzip;q=0.9, br, deflate');
    });
  }

  test('a streamed gzip SSE body is decoded and masked as it flows', async () => {
    const r = await call(`https://${ANT}/gzip-stream`, { headers: { 'x-api-key': antPhantom, 'accept-encoding': 'gzip' } });
    expect(r.status).toBe(200);
    expect(r.headers['content-encoding']).toBeUndefined();
    expect(r.body.toString().startsWith(`data: ${antPhantom}\n\n`)).toBe(true);
  });

  for (const coding of ['identity', 'gzip'] as const) {
    test(`backpressure holds through the masker (${coding}): a client that stops reading stalls the upstream`, async () => {
      const disp = d.dispatcher();
      try {
        const res = await request(`https://${ANT}/big?coding=${coding}`, {
          dispatcher: disp,
          headers: { 'x-api-key': antPhantom, 'accept-encoding': 'gzip' },
          highWaterMark: 64 * 1024,
        });
        expect(res.statusCode).toBe(200);
        // Read nothing until the upstream stops making progress (it waits for 'drain').
        let prev = -1;
        const stalledAt = await waitFor(
          () => {
            const now = echo.bigWritten;
            const stalled = now === prev && now > 0;
            prev = now;
            return stalled ? now : null;
          },
          'the upstream to stall',
          15_000,
          400,
        );
        // A few MB sit in socket and stream buffers on three hops; without backpressure all 24 MiB would be read.
        expect(stalledAt).toBeLessThan(BIG_BYTES / 2);
        let got = 0;
        for await (const c of res.body) got += (c as Buffer).length;
        expect(got).toBe(BIG_BYTES);
        expect(res.headers['content-encoding']).toBeUndefined();
      } finally {
        await disp.close().catch(() => {});
      }
    });
  }

  test('a body in a coding sluice cannot decode is refused with a provider-shaped 502, never passed through', async () => {
    const r = await call(`https://${ANT}/zstd`, { headers: { 'x-api-key': antPhantom } });
    expect(r.status).toBe(502);
    expect(r.headers['x-sluice-reason']).toBe('undecodable_response');
    const body = JSON.parse(r.body.toString()) as { type: string; error: { type: string } };
    expect(body.type).toBe('error');
    expect(body.error.type).toBe('api_error');
  });
});

describe('token endpoint', () => {
  const refresh = (query = '') =>
    call(`${TOKEN_URL}${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'accept-encoding': 'gzip, deflate, br' },
      body: `grant_type=refresh_token&refresh_token=${oaiRefreshPhantom}`,
    });

  for (const coding of ['gzip', 'deflate', 'br']) {
    test(`a ${coding} token answer is decoded: the agent gets phantoms, the new tokens are saved`, async () => {
      const before = echo.issued.length;
      const r = await refresh(coding === 'gzip' ? '' : `?coding=${coding}`);
      expect(r.status).toBe(200);
      expect(r.headers['content-encoding']).toBeUndefined();
      const body = JSON.parse(r.body.toString()) as Record<string, string>;
      expect(body.access_token).toBe(oaiPhantom);
      expect(body.refresh_token).toBe(oaiRefreshPhantom);
      expect(body.id_token!.split('.')[2]).not.toBe(echo.issued[before + 2]!.split('.')[2]);
      expect(await accessInUse()).toBe(echo.issued[before]);
      // The rotated refresh token was saved: the next grant carries it.
      await refresh();
      expect(echo.refreshGrants.at(-1)).toBe(echo.issued[before + 1]);
    });
  }

  test('a form body labelled JSON fails closed (502, body dropped, audit row) but its tokens are still saved', async () => {
    const before = echo.issued.length;
    const r = await refresh('?shape=formjson');
    expect(r.status).toBe(502);
    expect(r.headers['x-sluice-reason']).toBe('token_response_unreadable');
    expect(r.body.toString()).not.toContain('access_token=');
    expect(await accessInUse()).toBe(echo.issued[before]);
    const rows = (await d.client.call('audit.tail', { n: 200 })).rows as { verdict: string | null; detail: string | null }[];
    expect(rows.some((x) => x.verdict === 'token_response_unreadable' && /labelled JSON/.test(x.detail ?? ''))).toBe(true);
  });

  test('tokens nested where sluice does not look, or an undecodable coding, fail closed with a 502', async () => {
    for (const q of ['?shape=nested', '?coding=zstd']) {
      const r = await refresh(q);
      expect(r.status, q).toBe(502);
      expect(r.headers['x-sluice-reason']).toBe('token_response_unreadable');
    }
  });

  test('cred.add and cred.update refuse an http:// token URL with a one-line reason', async () => {
    const bad = 'http://auth.openai.com/oauth/token';
    await expect(
      d.client.call('cred.add', {
        name: 'plain',
        kind: 'oauth',
        hosts: [OAI],
        token_url: bad,
        secret: JSON.stringify({ access_token: 'a'.repeat(20), refresh_token: 'b'.repeat(20) }),
      }),
    ).rejects.toThrow(/https/);
    await expect(d.client.call('cred.update', { name: 'codex', token_url: bad })).rejects.toThrow(/https/);
  });
});

describe('WebSocket', () => {
  test('upstream gets the slot token (never the OAuth bundle); text and binary frames coming back are masked, id token included', async () => {
    // The phantom travels in a message, which counts as a body: body injection is opt-in (issue 19).
    await d.client.call('cred.update', { name: 'codex', inject: ['header', 'body'] });
    const access = await accessInUse();
    // The id token stored now: the one issued with the access token in use (or the first one).
    const i = echo.issued.indexOf(access);
    echo.wsGreeting = [i === -1 ? ID_TOKEN : echo.issued[i + 2]!, SECRET_ANT];
    const opened = await openWsAt({
      proxyPort: d.proxyPort,
      token: tokenOf(d),
      caPath: d.caPath,
      host: OAI,
      path: '/v1/responses',
      headers: { authorization: `Bearer ${oaiPhantom}` },
    });
    if (!('ws' in opened)) throw new Error(`upgrade refused: ${opened.status} ${opened.body}`);
    const ws: WebSocket = opened.ws;
    const frames: { data: Buffer; binary: boolean }[] = [];
    ws.on('message', (data: Buffer, binary: boolean) => frames.push({ data: Buffer.from(data), binary }));
    const sent = echo.wsSeen.length;
    ws.send(`my token is ${oaiPhantom}`);
    // 3 greetings × (text + binary) + the echo of our message.
    await within(
      waitFor(() => frames.length >= 7 || null, 'seven frames'),
      10_000,
      'frames',
    );
    expect(echo.wsSeen[sent]).toBe(`my token is ${access}`);
    for (const r of [REFRESH, ...echo.issued.filter((t) => t.startsWith('rt-'))]) expect(echo.wsSeen[sent]).not.toContain(r);
    expect(frames.filter((f) => f.binary).length).toBe(3);
    const texts = frames.map((f) => f.data.toString());
    expect(texts).toContain(`my token is ${oaiPhantom}`);
    expect(texts.some((t) => t.startsWith('bin ') && t.includes(antPhantom))).toBe(true);
    received.push(...frames.map((f) => f.data));
    expect(leaks(frames.map((f) => f.data))).toEqual([]);
    ws.close();
    await closed(ws);
    const rows = await waitFor(() => maskedRows((x) => x.detail === 'ws'), 'a ws secret_masked row');
    expect(rows).toHaveLength(1);
    expect(rows[0]!.credential).toContain('codex');
  });
});

test('after every scenario: no real secret in anything any client received', () => {
  expect(received.length).toBeGreaterThan(20);
  expect(leaks(received)).toEqual([]);
});
