import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ProxyAuth } from '../../../../src/daemon/proxy/proxy-auth.js';

const basic = (token: string) => `Basic ${Buffer.from(`sluice:${token}`).toString('base64')}`;
let dir = '';

function auth(enabled = true): ProxyAuth {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pauth-'));
  return new ProxyAuth(path.join(dir, 'proxy-token'), enabled);
}

afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ProxyAuth per-run tokens', () => {
  it('names the agent of a run token, the owner for the main token, refuses anything else', () => {
    const a = auth();
    const run = a.issue('claude', 1000);
    expect(a.identify(basic(run.token))).toEqual({ ok: true, agent: run.agent });
    expect(a.identify(basic(a.current()))).toEqual({ ok: true, agent: null });
    expect(a.identify(basic('nope'))).toEqual({ ok: false });
    expect(a.identify(undefined)).toEqual({ ok: false });
    expect(a.agents().map((x) => x.name)).toEqual(['claude']);
  });

  it('a revoked run token is refused and the run is no longer listed', () => {
    const a = auth();
    const run = a.issue('codex', 1000);
    expect(a.revoke(run.agent.id)).toBe(true);
    expect(a.revoke(run.agent.id)).toBe(false);
    expect(a.check(basic(run.token))).toBe(false);
    expect(a.isLive(run.agent.id)).toBe(false);
    expect(a.agents()).toEqual([]);
  });

  it('with auth off, a run token still names its agent', () => {
    const a = auth(false);
    const run = a.issue('script', 1000);
    expect(a.identify(basic(run.token))).toEqual({ ok: true, agent: run.agent });
    expect(a.identify(undefined)).toEqual({ ok: true, agent: null });
  });
});
