import { describe, expect, it } from 'vitest';
import { isolationReport } from '../../../../src/cli/commands/doctor.js';
import { probeIsolation } from '../../../../src/cli/isolation/isolation-probe.js';

describe('doctor: what run --isolate would give', () => {
  it('says what is missing when bubblewrap cannot run', () => {
    const r = isolationReport({ ok: false, reason: 'run --isolate needs bubblewrap (bwrap), which is not on PATH: install bubblewrap' }, 'claude');
    expect(r.available).toBe(false);
    expect(r.detail).toContain('not available here');
    expect(r.detail).toContain('install bubblewrap');
  });

  it('names the command and the fence when it can', () => {
    const r = isolationReport({ ok: true, bwrap: '/usr/bin/bwrap', version: 'bubblewrap 0.8.0' }, 'claude');
    expect(r.available).toBe(true);
    expect(r.detail).toMatch(/^run --isolate -- claude would give it \(bubblewrap 0\.8\.0\): no network but the proxy/);
    expect(r.detail).toContain('RPC socket and master key out of reach');
  });

  it('is not supported on macOS yet, with a clear reason', () => {
    const r = probeIsolation('darwin');
    expect(r).toEqual({ ok: false, reason: expect.stringContaining('not supported on macOS yet') });
  });
});
