/** Host and path globs: case rules, wildcards, and rejection of globs that cannot compile. */
import { describe, expect, it } from 'vitest';
import { assertValidGlob, hostMatches, pathMatches } from '../../../../src/daemon/policy/host-glob.js';
import { SluiceError } from '../../../../src/shared/protocol/error-codes.js';

describe('hostMatches', () => {
  it('matches a subdomain wildcard case-insensitively', () => {
    expect(hostMatches('*.anthropic.com', 'api.anthropic.com')).toBe(true);
    expect(hostMatches('*.anthropic.com', 'API.Anthropic.COM')).toBe(true);
    expect(hostMatches('*.ANTHROPIC.com', 'api.anthropic.com')).toBe(true);
  });

  it('does not let a subdomain wildcard match the bare domain or look-alike hosts', () => {
    expect(hostMatches('*.anthropic.com', 'anthropic.com')).toBe(false);
    expect(hostMatches('*.anthropic.com', 'evilanthropic.com')).toBe(false);
    expect(hostMatches('*.anthropic.com', 'api.anthropic.com.evil.example')).toBe(false);
  });

  it('matches a literal host exactly, ignoring case', () => {
    expect(hostMatches('api.openai.com', 'API.OPENAI.COM')).toBe(true);
    expect(hostMatches('API.OpenAI.com', 'api.openai.com')).toBe(true);
    expect(hostMatches('api.openai.com', 'api.openai.com.evil.example')).toBe(false);
    expect(hostMatches('api.openai.com', 'xapi.openai.com')).toBe(false);
  });

  it('supports a wildcard in the middle of a host', () => {
    expect(hostMatches('api.*.com', 'api.openai.com')).toBe(true);
    expect(hostMatches('api.*.com', 'api.openai.org')).toBe(false);
  });
});

describe('pathMatches', () => {
  it('matches /v1/** against any depth below /v1 and nothing else', () => {
    expect(pathMatches('/v1/**', '/v1/messages')).toBe(true);
    expect(pathMatches('/v1/**', '/v1/messages/batches/abc')).toBe(true);
    expect(pathMatches('/v1/**', '/v2/messages')).toBe(false);
    expect(pathMatches('/v1/**', '/v10/messages')).toBe(false);
  });

  it('keeps * within one path segment', () => {
    expect(pathMatches('/v1/*', '/v1/messages')).toBe(true);
    expect(pathMatches('/v1/*', '/v1/messages/batches')).toBe(false);
  });

  it('matches paths case-sensitively', () => {
    expect(pathMatches('/v1/messages', '/v1/messages')).toBe(true);
    expect(pathMatches('/v1/messages', '/V1/Messages')).toBe(false);
    expect(pathMatches('/v1/**', '/V1/messages')).toBe(false);
  });
});

describe('assertValidGlob', () => {
  it('accepts ordinary host and path globs', () => {
    expect(() => assertValidGlob('*.anthropic.com', 'host')).not.toThrow();
    expect(() => assertValidGlob('/v1/**', 'path')).not.toThrow();
  });

  it('throws invalid_glob for an empty glob', () => {
    let caught: unknown;
    try {
      assertValidGlob('', 'host');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SluiceError);
    expect((caught as SluiceError).code).toBe('invalid_glob');
  });

  it('throws invalid_glob for a glob longer than picomatch accepts', () => {
    expect(() => assertValidGlob('/' + 'a'.repeat(70_000), 'path')).toThrow(expect.objectContaining({ code: 'invalid_glob' }));
  });
});
