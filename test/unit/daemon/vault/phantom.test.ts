/** Phantom tokens: provider prefixes, the SLUICE marker, uniqueness and cores. */
import { describe, expect, it } from 'vitest';
import { newPhantom, PHANTOM_CORE_RE, PHANTOM_MARKER, PHANTOM_TOKEN_RE, phantomCore, phantomPrefix } from '../../../../src/daemon/vault/phantom.js';

const CORE_RE = /^SLUICE[A-Za-z0-9]{40}$/;

describe('phantomPrefix', () => {
  it('keeps the sk-ant-api03- prefix of an Anthropic-looking secret', () => {
    expect(phantomPrefix('sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789', ['example.com'])).toBe('sk-ant-api03-');
  });

  it('keeps the provider prefix of GitHub and Slack tokens', () => {
    expect(phantomPrefix('ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789', [])).toBe('ghp_');
    expect(phantomPrefix('xoxb-123456789012-abcdefABCDEF', [])).toMatch(/^xoxb-/);
  });

  it('falls back to the first host that names a known provider when the secret has no prefix', () => {
    expect(phantomPrefix('abcdef0123456789', ['api.anthropic.com'])).toBe('sk-ant-api03-');
    expect(phantomPrefix('abcdef0123456789', ['*.openai.com'])).toBe('sk-proj-');
    expect(phantomPrefix('abcdef0123456789', ['intranet.local', 'api.github.com'])).toBe('ghp_');
  });

  it('falls back to sk- when neither the secret nor the hosts say anything', () => {
    expect(phantomPrefix('abcdef0123456789', ['intranet.local'])).toBe('sk-');
  });

  // The prefix is shown to the agent (and returned by cred.add/cred.list), so it may only hold the provider's
  // fixed prefix: random key material after it must not be copied into the phantom.
  it('copies no random key material into the phantom of an OpenAI project key', () => {
    const secret = 'sk-proj-Ab3dE_fGhIjKlMnOpQrStUvWxYz0123456789abcdefghij';
    const prefix = phantomPrefix(secret, ['api.openai.com']);
    expect(prefix).toBe('sk-proj-');
  });
});

describe('newPhantom', () => {
  it('is the prefix, the SLUICE marker and 40 base62 characters', () => {
    const p = newPhantom('sk-ant-api03-');
    expect(p).toMatch(/^sk-ant-api03-SLUICE[A-Za-z0-9]{40}$/);
    expect(p.includes(PHANTOM_MARKER)).toBe(true);
  });

  it('never repeats across many draws', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 2_000; i++) seen.add(newPhantom('sk-'));
    expect(seen.size).toBe(2_000);
  });

  it('is found whole by the token regex and by its core by the core regex', () => {
    const p = newPhantom('sk-proj-');
    expect(`Bearer ${p}`.match(PHANTOM_TOKEN_RE)).toEqual([p]);
    expect(`Bearer ${p}`.match(PHANTOM_CORE_RE)).toEqual([phantomCore(p)]);
  });
});

describe('phantomCore', () => {
  it('strips the provider prefix, leaving the marker and random part', () => {
    const p = newPhantom('sk-ant-api03-');
    const core = phantomCore(p);
    expect(core).toMatch(CORE_RE);
    expect(p).toBe('sk-ant-api03-' + core);
  });

  it('identifies a phantom regardless of the prefix in front of it', () => {
    const p = newPhantom('ghp_');
    expect(phantomCore('Bearer_' + p)).toBe(phantomCore(p));
  });

  it('returns text without the marker unchanged', () => {
    expect(phantomCore('not-a-phantom')).toBe('not-a-phantom');
  });
});
