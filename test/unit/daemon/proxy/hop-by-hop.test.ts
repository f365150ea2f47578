/**
 * One hop-by-hop list (hop-by-hop.ts) for both directions: requests going upstream (the credential stage's
 * rewritten headers, which HTTP and WebSocket upgrades both send) and responses going back to the client.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connectionNamed, isHopByHop } from '../../../../src/daemon/proxy/hop-by-hop.js';
import { CredentialStage } from '../../../../src/daemon/proxy/credential-stage.js';
import { forwardableHeaders } from '../../../../src/daemon/proxy/relay-response.js';
import { memoryVault, type MemoryVault } from '../memory-vault.js';

const HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'transfer-encoding', 'upgrade', 'te', 'trailer'];

describe('isHopByHop', () => {
  it.each(HOP)('%s is hop-by-hop', (name) => expect(isHopByHop(name)).toBe(true));

  it.each(['authorization', 'x-api-key', 'content-type', 'accept-encoding', 'host', 'cookie'])('%s is end-to-end', (name) =>
    expect(isHopByHop(name)).toBe(false),
  );

  it('any proxy-* header is hop-by-hop, and so is whatever the Connection header names', () => {
    expect(isHopByHop('proxy-status')).toBe(true);
    const named = connectionNamed(['keep-alive, X-Hop ', 'x-other']);
    expect([...named!]).toEqual(['keep-alive', 'x-hop', 'x-other']);
    expect(isHopByHop('x-hop', named)).toBe(true);
    expect(isHopByHop('x-other', named)).toBe(true);
    expect(isHopByHop('x-kept', named)).toBe(false);
    expect(connectionNamed(undefined)).toBeNull();
  });
});

describe('requests going upstream', () => {
  let m: MemoryVault;
  beforeEach(() => {
    m = memoryVault();
  });
  afterEach(() => m.close());

  it('never carry a hop-by-hop header (the proxy access token above all) nor one Connection names', () => {
    const stage = new CredentialStage(m.vault);
    const headers: Record<string, string> = { host: 'api.example', 'x-keep': '1', 'x-named': 'v', 'content-type': 'application/json' };
    for (const h of HOP) headers[h] = h === 'connection' ? 'keep-alive, x-named' : 'v';
    const r = stage.apply('api.example', headers, '/', null);
    for (const h of [...HOP, 'x-named']) expect(r.headers[h], h).toBeUndefined();
    expect(r.headers).toMatchObject({ host: 'api.example', 'x-keep': '1', 'content-type': 'application/json' });
  });
});

describe('responses going back', () => {
  it('lose every hop-by-hop header, those Connection names and public-key-pins*', () => {
    const headers: Record<string, string> = { 'content-type': 'text/plain', 'x-named': 'v', 'public-key-pins': 'pin', 'x-end': 'e' };
    for (const h of HOP) headers[h] = h === 'connection' ? 'close, x-named' : 'v';
    const out = forwardableHeaders(headers);
    expect(out).toEqual({ 'content-type': 'text/plain', 'x-end': 'e' });
  });
});
