/**
 * Issue 19 on the token endpoint: the daemon's own refresher never sends a real refresh token to an
 * `http://` token URL, asks for an encoding it can parse and decodes a gzip answer (so the rotated refresh
 * token is saved, not lost); `rewriteAnswer` says when a 2xx answer carries tokens where sluice does not
 * look (nested, camel case, a form body labelled JSON) so the caller fails closed, while readable tokens
 * are still saved. Also the accept-encoding narrowing and content-coding reading the relay relies on.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import path from 'node:path';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TokenRefresher } from '../../../../src/daemon/oauth/token-refresher.js';
import { bodyCoding, narrowAcceptEncoding } from '../../../../src/daemon/proxy/content-coding.js';
import { createUpstreamAgents, type UpstreamAgents } from '../../../../src/daemon/proxy/upstream-agents.js';
import { UPSTREAM_CA } from '../../../fakes/fake-upstream.js';
import { listenOnLoopback, type LoopbackServer } from '../../../fakes/loopback-server.js';
import { REPO_ROOT } from '../../../fakes/repo-root.js';
import { oauthWorld, realTokens, TOKEN_HOST, type OAuthWorld } from './oauth-setup.js';

const TLS_DIR = path.join(REPO_ROOT, 'test', 'fixtures', 'tls');
const JSON_CT = 'application/json';

describe('the refresher', () => {
  let agents: UpstreamAgents;
  let plain: LoopbackServer;
  let tlsServer: LoopbackServer;
  /** Bodies the plain-HTTP server received (must stay empty). */
  const plainSeen: string[] = [];
  /** What the HTTPS token endpoint answers next (gzip JSON), and the accept-encoding it was asked with. */
  let next: Record<string, unknown> = {};
  let askedEncoding: string | undefined;
  let w: OAuthWorld;
  let refresher: TokenRefresher;

  beforeAll(async () => {
    agents = createUpstreamAgents(UPSTREAM_CA);
    plain = await listenOnLoopback(
      http.createServer((req, res) => {
        let b = '';
        req.on('data', (c: Buffer) => (b += c.toString()));
        req.on('end', () => {
          plainSeen.push(b);
          res.writeHead(200, { 'content-type': JSON_CT });
          res.end('{}');
        });
      }),
    );
    tlsServer = await listenOnLoopback(
      https.createServer(
        { key: fs.readFileSync(path.join(TLS_DIR, 'upstream-key.pem')), cert: fs.readFileSync(path.join(TLS_DIR, 'upstream-cert.pem')) },
        (req, res) => {
          askedEncoding = req.headers['accept-encoding'];
          req.resume();
          req.on('end', () => {
            // A hostile-but-ordinary IdP: gzip whatever the client asked for.
            const body = zlib.gzipSync(JSON.stringify(next));
            res.writeHead(200, { 'content-type': JSON_CT, 'content-encoding': 'gzip', 'content-length': body.length });
            res.end(body);
          });
        },
      ),
    );
  });
  afterAll(async () => {
    agents.destroy();
    await plain.close();
    await tlsServer.close();
  });
  beforeEach(() => {
    w = oauthWorld();
    refresher = new TokenRefresher({
      vault: w.vault,
      exchange: w.exchange,
      pools: w.pools,
      audit: w.audit,
      agents,
      overrides: [
        { host: TOKEN_HOST, port: 443, addr: '127.0.0.1', addrPort: tlsServer.port },
        { host: TOKEN_HOST, port: 80, addr: '127.0.0.1', addrPort: plain.port },
      ],
      clock: w.clock,
      log: w.log,
    });
  });
  afterEach(() => w.close());

  it('never sends a real refresh token to an http:// token URL', async () => {
    const t = realTokens('plain-acct');
    w.addOAuth('plain', t, { token_url: `http://${TOKEN_HOST}/oauth/token` });
    expect(await refresher.refresh('plain')).toBe(false);
    expect(plainSeen).toEqual([]);
    expect(w.vault.oauthTokens('plain').refresh_token).toBe(t.refresh_token);
    expect(w.audit.tail(10).some((r) => r.event === 'oauth_refresh_failed' && r.credential === 'plain' && /not https/.test(r.detail ?? ''))).toBe(true);
  });

  it('asks for identity and still decodes a gzip answer: the rotated tokens are saved', async () => {
    const old = realTokens('gz-acct');
    w.addOAuth('gz', old);
    const fresh = realTokens('gz-acct', 2);
    next = { access_token: fresh.access_token, refresh_token: fresh.refresh_token, expires_in: 3600 };
    expect(await refresher.refresh('gz')).toBe(true);
    expect(askedEncoding).toBe('identity');
    expect(w.vault.oauthTokens('gz')).toMatchObject({ access_token: fresh.access_token, refresh_token: fresh.refresh_token });
  });
});

describe('TokenExchange.rewriteAnswer', () => {
  let w: OAuthWorld;
  beforeEach(() => {
    w = oauthWorld();
  });
  afterEach(() => w.close());

  it('a plain token answer is readable', () => {
    const t = realTokens('ok-acct');
    w.addOAuth('a', realTokens('ok-acct', 0));
    const r = w.exchange.rewriteAnswer(
      Buffer.from(JSON.stringify({ access_token: t.access_token, refresh_token: t.refresh_token, token_type: 'Bearer' })),
      JSON_CT,
      { credential: 'a', pool: null },
    );
    expect(r.unreadable).toBeNull();
    expect(r.body.toString()).not.toContain(t.access_token);
  });

  it('tokens nested or in camel case are unreadable (fail closed); readable top-level ones are still saved', () => {
    const t = realTokens('nest-acct', 1);
    w.addOAuth('a', realTokens('nest-acct', 0));
    expect(
      w.exchange.rewriteAnswer(Buffer.from(JSON.stringify({ data: { access_token: t.access_token } })), JSON_CT, { credential: 'a', pool: null }).unreadable,
    ).toMatch(/nested/);
    expect(w.exchange.rewriteAnswer(Buffer.from(JSON.stringify({ accessToken: t.access_token })), JSON_CT, { credential: 'a', pool: null }).unreadable).toMatch(
      /nested/,
    );
    const mixed = w.exchange.rewriteAnswer(
      Buffer.from(JSON.stringify({ access_token: t.access_token, refresh_token: t.refresh_token, extra: { id_token: t.id_token } })),
      JSON_CT,
      { credential: 'a', pool: null },
    );
    expect(mixed.unreadable).toMatch(/nested/);
    expect(w.vault.oauthTokens('a')).toMatchObject({ access_token: t.access_token, refresh_token: t.refresh_token });
  });

  it('a form body labelled JSON is unreadable, and its tokens are saved', () => {
    const t = realTokens('form-acct', 1);
    w.addOAuth('a', realTokens('form-acct', 0));
    const r = w.exchange.rewriteAnswer(Buffer.from(new URLSearchParams({ access_token: t.access_token, refresh_token: t.refresh_token }).toString()), JSON_CT, {
      credential: 'a',
      pool: null,
    });
    expect(r.unreadable).toMatch(/labelled JSON/);
    expect(w.vault.oauthTokens('a')).toMatchObject({ access_token: t.access_token, refresh_token: t.refresh_token });
  });
});

describe('content codings', () => {
  it('narrows accept-encoding to what sluice decodes, identity when nothing is left', () => {
    expect(narrowAcceptEncoding('gzip, deflate, br, zstd')).toBe('gzip, deflate, br');
    expect(narrowAcceptEncoding('zstd;q=1.0, br;q=0.8, *;q=0.1')).toBe('br;q=0.8');
    expect(narrowAcceptEncoding('zstd, compress')).toBe('identity');
    expect(narrowAcceptEncoding('*')).toBe('identity');
    expect(narrowAcceptEncoding(undefined)).toBeUndefined();
  });

  it('reads content-encoding: decodable, identity, or undecodable (stacked codings included)', () => {
    expect(bodyCoding(undefined)).toEqual({ kind: 'identity' });
    expect(bodyCoding('identity')).toEqual({ kind: 'identity' });
    expect(bodyCoding('GZIP')).toEqual({ kind: 'decode', coding: 'gzip' });
    expect(bodyCoding('x-gzip')).toEqual({ kind: 'decode', coding: 'gzip' });
    expect(bodyCoding('br')).toEqual({ kind: 'decode', coding: 'br' });
    expect(bodyCoding('zstd')).toEqual({ kind: 'undecodable', coding: 'zstd' });
    expect(bodyCoding('gzip, br').kind).toBe('undecodable');
  });
});
