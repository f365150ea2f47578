/**
 * `newJwtPhantom`: the phantom an agent holds for an OAuth access token. It must decode as a JWT carrying
 * the real token's claims (Codex reads its account id from it), never look expired, and end with a
 * phantom core so the proxy finds and resolves it like any other phantom.
 */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { jwtClaims } from '../../../../src/daemon/vault/oauth-secret.js';
import { newJwtPhantom, PHANTOM_CORE_RE, PHANTOM_TOKEN_RE, phantomCore } from '../../../../src/daemon/vault/phantom.js';
import { CODEX_CLAIM, decodeJwt, realTokens } from './oauth-setup.js';

const CORE_RE = /^SLUICE[A-Za-z0-9]{40}$/;

describe('newJwtPhantom', () => {
  it('decodes as a JWT with an HS256 header and every claim of the real token', () => {
    const real = realTokens('jwt-acct');
    const claims = jwtClaims(real.access_token)!;
    const p = newJwtPhantom(claims);
    const { header, claims: got } = decodeJwt(p);
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    const { exp: _realExp, ...rest } = claims;
    expect(got).toMatchObject(rest);
    expect((got[CODEX_CLAIM] as { chatgpt_account_id: string }).chatgpt_account_id).toBe('jwt-acct');
    expect(jwtClaims(p)).toEqual(got);
  });

  it('carries a far-future exp (replacing the real one) so the agent never thinks it expired', () => {
    const real = realTokens('exp-acct');
    const realExp = jwtClaims(real.access_token)!.exp as number;
    const { claims } = decodeJwt(newJwtPhantom(jwtClaims(real.access_token)!));
    expect(typeof claims.exp).toBe('number');
    expect(claims.exp).not.toBe(realExp);
    // At least ten years from now, in seconds (JWT NumericDate).
    expect(claims.exp as number).toBeGreaterThan(Math.floor(Date.now() / 1000) + 10 * 365 * 24 * 3600);
    expect(claims.exp as number).toBeLessThan(1e11);
  });

  it('ends with a phantom core as its signature segment, found whole by the phantom scanner', () => {
    const p = newJwtPhantom({ sub: 'x' });
    const sig = p.split('.')[2]!;
    expect(sig).toMatch(CORE_RE);
    expect(phantomCore(p)).toBe(sig);
    expect(p.match(PHANTOM_TOKEN_RE)).toEqual([p]);
    expect(`Bearer ${p}`.match(PHANTOM_CORE_RE)).toEqual([sig]);
  });

  it('never verifies under any key: the signature segment is not an HMAC of header.payload', () => {
    const p = newJwtPhantom({ sub: 'x' });
    const [h, pl, sig] = p.split('.') as [string, string, string];
    const hmac = crypto.createHmac('sha256', 'fake-oauth-signing-key').update(`${h}.${pl}`).digest('base64url');
    expect(sig).not.toBe(hmac);
    // The signature segment is not valid base64url of a 32-byte MAC either (44 chars with the marker).
    expect(Buffer.from(sig, 'base64url').length).not.toBe(32);
  });

  it('is unique per call even for identical claims', () => {
    const claims = { sub: 'same' };
    const a = newJwtPhantom(claims);
    const b = newJwtPhantom(claims);
    expect(a).not.toBe(b);
    expect(a.split('.').slice(0, 2)).toEqual(b.split('.').slice(0, 2));
    expect(phantomCore(a)).not.toBe(phantomCore(b));
  });

  it('contains no part of the real token it was made from other than its (public) claims', () => {
    const real = realTokens('sig-acct');
    const realSig = real.access_token.split('.')[2]!;
    const p = newJwtPhantom(jwtClaims(real.access_token)!);
    expect(p).not.toContain(realSig);
    expect(p).not.toContain(real.access_token);
  });
});
