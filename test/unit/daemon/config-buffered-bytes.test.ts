/** SLUICE_MAX_BUFFERED_BYTES: the global budget of buffered request bytes (issue 19). */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/daemon/config.js';
import { BufferBudget, DEFAULT_MAX_BUFFERED_BYTES } from '../../../src/daemon/proxy/request-body.js';

const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ SLUICE_HOME: '/tmp/sluice-config-test', ...extra });

describe('SLUICE_MAX_BUFFERED_BYTES', () => {
  it('defaults to 256 MiB and reads a whole number of bytes', () => {
    expect(loadConfig(env()).maxBufferedBytes).toBe(256 * 1024 * 1024);
    expect(DEFAULT_MAX_BUFFERED_BYTES).toBe(256 * 1024 * 1024);
    expect(loadConfig(env({ SLUICE_MAX_BUFFERED_BYTES: '1048576' })).maxBufferedBytes).toBe(1048576);
  });

  it.each(['lots', '-1', '1.5', '100'])('refuses %s with a clear message', (v) => {
    expect(() => loadConfig(env({ SLUICE_MAX_BUFFERED_BYTES: v }))).toThrow(ConfigError);
    expect(() => loadConfig(env({ SLUICE_MAX_BUFFERED_BYTES: v }))).toThrow(/SLUICE_MAX_BUFFERED_BYTES must be a whole number of bytes/);
  });
});

describe('BufferBudget', () => {
  it('reserves up to its limit, refuses past it without reserving, and takes bytes back', () => {
    const b = new BufferBudget(100);
    expect(b.tryReserve(60)).toBe(true);
    expect(b.tryReserve(41)).toBe(false);
    expect(b.used).toBe(60);
    expect(b.tryReserve(40)).toBe(true);
    b.release(60);
    expect(b.used).toBe(40);
    expect(b.tryReserve(60)).toBe(true);
  });
});
