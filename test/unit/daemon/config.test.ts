/** Daemon configuration from the environment: SLUICE_RESOLVE, the global cap, the default verdict. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, parseResolve } from '../../../src/daemon/config.js';

const HOME = '/tmp/sluice-config-test-home';
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ SLUICE_HOME: HOME, ...extra });

describe('parseResolve', () => {
  it('parses host:port:addr with the address port defaulting to the port', () => {
    expect(parseResolve('api.anthropic.com:443:127.0.0.1')).toEqual([{ host: 'api.anthropic.com', port: 443, addr: '127.0.0.1', addrPort: 443 }]);
  });

  it('parses host:port:addr:addrport entries separated by commas, lower-casing the host', () => {
    expect(parseResolve('API.Anthropic.com:443:127.0.0.1:9443, api.openai.com:443:127.0.0.2:9444,')).toEqual([
      { host: 'api.anthropic.com', port: 443, addr: '127.0.0.1', addrPort: 9443 },
      { host: 'api.openai.com', port: 443, addr: '127.0.0.2', addrPort: 9444 },
    ]);
  });

  it('returns nothing for an empty spec', () => {
    expect(parseResolve('')).toEqual([]);
  });

  it.each([
    ['too few parts', 'api.anthropic.com:443'],
    ['too many parts', 'a:1:b:2:c'],
    ['non-numeric port', 'api.anthropic.com:https:127.0.0.1'],
    ['port 0', 'api.anthropic.com:0:127.0.0.1'],
    ['port above 65535', 'api.anthropic.com:65536:127.0.0.1'],
    ['bad address port', 'api.anthropic.com:443:127.0.0.1:99999'],
    ['empty host', ':443:127.0.0.1'],
    ['empty address', 'api.anthropic.com:443:'],
  ])('throws ConfigError for %s', (_what, spec) => {
    expect(() => parseResolve(spec)).toThrow(ConfigError);
  });

  it('rejects the whole spec when one entry of several is bad', () => {
    expect(() => parseResolve('api.anthropic.com:443:127.0.0.1:9443,broken')).toThrow(ConfigError);
  });
});

describe('loadConfig global cap', () => {
  it('is unlimited when no cap variable is set', () => {
    const cfg = loadConfig(env());
    expect(cfg.globalCap).toBeNull();
    expect(cfg.warnings).toEqual([]);
  });

  it('accepts SLUICE_MAX_GLOBAL_CONCURRENT', () => {
    expect(loadConfig(env({ SLUICE_MAX_GLOBAL_CONCURRENT: '64' })).globalCap).toBe(64);
  });

  it("accepts the seed's PROXY_MAX_GLOBAL_CONCURRENT too", () => {
    expect(loadConfig(env({ PROXY_MAX_GLOBAL_CONCURRENT: '16' })).globalCap).toBe(16);
  });

  it('prefers SLUICE_MAX_GLOBAL_CONCURRENT when both are set', () => {
    expect(loadConfig(env({ SLUICE_MAX_GLOBAL_CONCURRENT: '8', PROXY_MAX_GLOBAL_CONCURRENT: '16' })).globalCap).toBe(8);
  });

  it.each(['abc', '0', '-3', '2.5', '100001'])('warns about and ignores a bad cap %s instead of failing', (bad) => {
    const cfg = loadConfig(env({ SLUICE_MAX_GLOBAL_CONCURRENT: bad }));
    expect(cfg.globalCap).toBeNull();
    expect(cfg.warnings).toHaveLength(1);
    expect(cfg.warnings[0]).toContain('SLUICE_MAX_GLOBAL_CONCURRENT');
    expect(cfg.warnings[0]).toContain('ignoring');
  });

  it('names PROXY_MAX_GLOBAL_CONCURRENT in the warning when that is the bad one', () => {
    const cfg = loadConfig(env({ PROXY_MAX_GLOBAL_CONCURRENT: 'lots' }));
    expect(cfg.globalCap).toBeNull();
    expect(cfg.warnings[0]).toContain('PROXY_MAX_GLOBAL_CONCURRENT');
  });
});

describe('loadConfig other settings', () => {
  it('defaults to verdict ask, a 120 s approval timeout, loopback 8787 and auth on', () => {
    const cfg = loadConfig(env());
    expect(cfg).toMatchObject({ defaultVerdict: 'ask', approvalTimeoutMs: 120_000, proxyHost: '127.0.0.1', proxyPort: 8787, proxyAuth: true, resolve: [] });
    expect(cfg.dbPath).toBe(`${HOME}/sluice.db`);
    expect(cfg.masterKeyPath).toBe(`${HOME}/master.key`);
  });

  it.each(['allow', 'deny', 'ask'] as const)('accepts SLUICE_DEFAULT_VERDICT=%s', (v) => {
    expect(loadConfig(env({ SLUICE_DEFAULT_VERDICT: v })).defaultVerdict).toBe(v);
  });

  it.each(['yes', 'ALLOW', 'block'])('throws ConfigError for SLUICE_DEFAULT_VERDICT=%j', (v) => {
    expect(() => loadConfig(env({ SLUICE_DEFAULT_VERDICT: v }))).toThrow(ConfigError);
  });

  it('reads SLUICE_RESOLVE and fails on a bad one', () => {
    expect(loadConfig(env({ SLUICE_RESOLVE: 'api.anthropic.com:443:127.0.0.1:9443' })).resolve).toHaveLength(1);
    expect(() => loadConfig(env({ SLUICE_RESOLVE: 'nonsense' }))).toThrow(ConfigError);
  });

  it('reads the approval timeout and refuses a non-number', () => {
    expect(loadConfig(env({ SLUICE_APPROVAL_TIMEOUT_MS: '5000' })).approvalTimeoutMs).toBe(5_000);
    expect(() => loadConfig(env({ SLUICE_APPROVAL_TIMEOUT_MS: 'soon' }))).toThrow(ConfigError);
  });

  it('reads SLUICE_PROXY_LISTEN with port 0 and SLUICE_PROXY_AUTH=off', () => {
    const cfg = loadConfig(env({ SLUICE_PROXY_LISTEN: '127.0.0.1:0', SLUICE_PROXY_AUTH: 'off' }));
    expect(cfg.proxyPort).toBe(0);
    expect(cfg.proxyAuth).toBe(false);
    expect(() => loadConfig(env({ SLUICE_PROXY_AUTH: 'maybe' }))).toThrow(ConfigError);
  });
});
