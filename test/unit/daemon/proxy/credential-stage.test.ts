/** The credential stage over a real vault: phantoms in headers, URL and bodies; leaks; header injection. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CredentialStage } from '../../../../src/daemon/proxy/credential-stage.js';
import type { CredentialRow } from '../../../../src/daemon/store/credentials-repo.js';
import { newPhantom } from '../../../../src/daemon/vault/phantom.js';
import { memoryVault, type MemoryVault } from '../memory-vault.js';

const ANTHROPIC = 'api.anthropic.com';
const ANT_SECRET = 'sk-ant-api03-REAL-anthropic-secret';
const OAI_SECRET = 'sk-proj-REAL-openai-secret';

let m: MemoryVault;
let stage: CredentialStage;
let ant: CredentialRow;
let oai: CredentialRow;

beforeEach(() => {
  m = memoryVault();
  ant = m.vault.add({ name: 'anthropic', kind: 'api-key', hosts: [ANTHROPIC], header: 'x-api-key', secret: ANT_SECRET });
  oai = m.vault.add({ name: 'openai', kind: 'api-key', hosts: ['api.openai.com'], header: 'authorization', format: 'Bearer {}', secret: OAI_SECRET });
  stage = new CredentialStage(m.vault);
});
afterEach(() => m.close());

describe('CredentialStage phantom replacement', () => {
  it('replaces a bound phantom in a header and names the credential', () => {
    const r = stage.apply(ANTHROPIC, { 'x-api-key': ant.phantom, host: ANTHROPIC }, '/v1/messages', null);
    expect(r.headers['x-api-key']).toBe(ANT_SECRET);
    expect(r.headers.host).toBe(ANTHROPIC);
    expect(r.credential).toBe('anthropic');
    expect(r.report.leaked).toEqual([]);
  });

  it('replaces a bound phantom in every value of a repeated header', () => {
    const r = stage.apply(ANTHROPIC, { 'x-extra': [`a ${ant.phantom}`, `b ${ant.phantom}`] }, '/', null);
    expect(r.headers['x-extra']).toEqual([`a ${ANT_SECRET}`, `b ${ANT_SECRET}`]);
  });

  it('replaces a bound phantom in the query string', () => {
    m.vault.update('anthropic', { inject: ['header', 'query', 'body', 'path'] });
    const r = stage.apply(ANTHROPIC, {}, `/v1/models?key=${ant.phantom}&limit=5`, null);
    expect(r.path).toBe(`/v1/models?key=${ANT_SECRET}&limit=5`);
    expect(r.credential).toBe('anthropic');
  });

  it('replaces a bound phantom in the path', () => {
    m.vault.update('anthropic', { inject: ['header', 'query', 'body', 'path'] });
    const r = stage.apply(ANTHROPIC, {}, `/bot${ant.phantom}/sendMessage`, null);
    expect(r.path).toBe(`/bot${ANT_SECRET}/sendMessage`);
  });

  it('replaces a bound phantom in a JSON body and keeps non-ASCII text intact', () => {
    m.vault.update('anthropic', { inject: ['header', 'query', 'body', 'path'] });
    const body = Buffer.from(JSON.stringify({ prompt: 'héllo ✓ 日本', api_key: ant.phantom }), 'utf8');
    const r = stage.apply(ANTHROPIC, { 'content-type': 'application/json' }, '/v1/messages', body);
    expect(JSON.parse(r.body!.toString('utf8'))).toEqual({ prompt: 'héllo ✓ 日本', api_key: ANT_SECRET });
    expect(r.credential).toBe('anthropic');
  });

  it('replaces a bound phantom in a form body', () => {
    m.vault.update('anthropic', { inject: ['header', 'query', 'body', 'path'] });
    const body = Buffer.from(`grant_type=client_credentials&client_secret=${ant.phantom}&scope=a+b`);
    const r = stage.apply(ANTHROPIC, { 'content-type': 'application/x-www-form-urlencoded' }, '/oauth/token', body);
    expect(r.body!.toString('utf8')).toBe(`grant_type=client_credentials&client_secret=${ANT_SECRET}&scope=a+b`);
  });

  it('passes a body without phantoms through unchanged', () => {
    const body = Buffer.from('{"prompt":"no tokens here"}');
    const r = stage.apply(ANTHROPIC, { 'x-api-key': ant.phantom }, '/', body);
    expect(r.body!.equals(body)).toBe(true);
  });
});

describe('CredentialStage leaks and unknown phantoms', () => {
  it('reports a phantom bound to another host as leaked and does not replace it anywhere', () => {
    const body = Buffer.from(`{"k":"${oai.phantom}"}`);
    const r = stage.apply(ANTHROPIC, { authorization: `Bearer ${oai.phantom}` }, `/x?k=${oai.phantom}`, body);
    expect(r.report.leaked.map((l) => l.credential)).toEqual(['openai']);
    expect(r.headers.authorization).toBe(`Bearer ${oai.phantom}`);
    expect(r.path).toBe(`/x?k=${oai.phantom}`);
    expect(r.body!.toString()).toBe(`{"k":"${oai.phantom}"}`);
    const everything = JSON.stringify(r.headers) + r.path + r.body!.toString();
    expect(everything).not.toContain(OAI_SECRET);
  });

  it('does not inject a header into a request that carries a leaked phantom', () => {
    const r = stage.apply(ANTHROPIC, { 'x-other': oai.phantom }, '/', null);
    expect(r.headers['x-api-key']).toBeUndefined();
    expect(r.credential).toBeNull();
  });

  it('reports an unknown phantom-shaped token (the caller refuses the request: issue 23) and leaves it in place', () => {
    const unknown = newPhantom('sk-ant-api03-');
    const r = stage.apply(ANTHROPIC, { 'x-api-key': unknown }, `/p?k=${unknown}`, null);
    expect(r.headers['x-api-key']).toBe(unknown);
    expect(r.path).toBe(`/p?k=${unknown}`);
    expect(r.report.unknown).toBe(2);
    expect(r.credential).toBeNull();
  });
});

describe('CredentialStage header injection', () => {
  it('injects the header of the one credential bound to the host when the request has none', () => {
    const r = stage.apply(ANTHROPIC, { 'content-type': 'application/json' }, '/v1/messages', null);
    expect(r.headers['x-api-key']).toBe(ANT_SECRET);
    expect(r.credential).toBe('anthropic');
  });

  it('applies the credential format when injecting', () => {
    const r = stage.apply('api.openai.com', {}, '/v1/responses', null);
    expect(r.headers.authorization).toBe(`Bearer ${OAI_SECRET}`);
    expect(r.credential).toBe('openai');
  });

  it('injects a secret containing $ sequences verbatim into the formatted header', () => {
    const secret = 'pa$$word-$&-$`-end';
    m.vault.update('openai', { secret });
    const r = stage.apply('api.openai.com', {}, '/v1/responses', null);
    expect(r.headers.authorization).toBe(`Bearer ${secret}`);
  });

  it('does not overwrite a header the request already carries', () => {
    const r = stage.apply(ANTHROPIC, { 'x-api-key': 'user-supplied' }, '/', null);
    expect(r.headers['x-api-key']).toBe('user-supplied');
    expect(r.credential).toBeNull();
  });

  it('injects nothing when two credentials are bound to the host', () => {
    m.vault.add({ name: 'anthropic-2', kind: 'api-key', hosts: [ANTHROPIC], header: 'x-api-key', secret: 'sk-ant-api03-second' });
    const r = stage.apply(ANTHROPIC, {}, '/v1/messages', null);
    expect(r.headers['x-api-key']).toBeUndefined();
    expect(r.credential).toBeNull();
  });

  it('injects nothing for a host no credential is bound to', () => {
    const r = stage.apply('example.com', {}, '/', null);
    expect(r.headers).toEqual({});
    expect(r.credential).toBeNull();
  });

  it('injects nothing when the bound credential has no header configured', () => {
    m.vault.update('anthropic', { header: null });
    const r = stage.apply(ANTHROPIC, {}, '/', null);
    expect(r.headers).toEqual({});
    expect(r.credential).toBeNull();
  });
});

describe('CredentialStage hop headers', () => {
  it('drops content-length, transfer-encoding and connection (the pipeline sets them for the rewritten body)', () => {
    const r = stage.apply(ANTHROPIC, { 'x-api-key': ant.phantom, 'content-length': '10', 'transfer-encoding': 'chunked', connection: 'keep-alive' }, '/', null);
    expect(Object.keys(r.headers).sort()).toEqual(['x-api-key']);
  });

  // The stage's headers are what goes upstream; proxy-* headers describe the hop to sluice, and
  // proxy-authorization carries sluice's own access token, which must never reach a third party.
  it('does not forward proxy-authorization or proxy-connection upstream', () => {
    const r = stage.apply(
      ANTHROPIC,
      { 'x-api-key': ant.phantom, 'proxy-authorization': 'Basic c2x1aWNlOnNlY3JldC10b2tlbg==', 'proxy-connection': 'keep-alive' },
      '/v1/messages',
      null,
    );
    expect(r.headers['proxy-authorization']).toBeUndefined();
    expect(r.headers['proxy-connection']).toBeUndefined();
  });
});
