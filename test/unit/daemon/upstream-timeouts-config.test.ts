/** The upstream-timeout and host-cache settings: defaults, valid values, and clear errors for bad ones. */
import { describe, expect, test } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/daemon/config.js';

const base = { SLUICE_HOME: '/tmp/sluice-config-test' };

describe('upstream timeouts and host cache size', () => {
  test('defaults: 10 s connect, 600 s response headers, 1,000 hosts', () => {
    const c = loadConfig(base);
    expect(c.upstreamConnectTimeoutMs).toBe(10_000);
    expect(c.upstreamHeaderTimeoutMs).toBe(600_000);
    expect(c.hostCacheSize).toBe(1000);
  });

  test('valid values are taken', () => {
    const c = loadConfig({ ...base, SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS: '250', SLUICE_UPSTREAM_HEADER_TIMEOUT_MS: ' 1500 ', SLUICE_HOST_CACHE_SIZE: '16' });
    expect([c.upstreamConnectTimeoutMs, c.upstreamHeaderTimeoutMs, c.hostCacheSize]).toEqual([250, 1500, 16]);
  });

  test.each([
    ['SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS', '0'],
    ['SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS', '-5'],
    ['SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS', '10s'],
    ['SLUICE_UPSTREAM_CONNECT_TIMEOUT_MS', '1.5'],
    ['SLUICE_UPSTREAM_HEADER_TIMEOUT_MS', 'soon'],
    ['SLUICE_UPSTREAM_HEADER_TIMEOUT_MS', '1e3'],
    ['SLUICE_UPSTREAM_HEADER_TIMEOUT_MS', '999999999999'],
    ['SLUICE_HOST_CACHE_SIZE', '0'],
  ])('%s=%s is refused with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, [name]: value })).toThrow(new RegExp(`${name}=.*whole number`));
  });
});
