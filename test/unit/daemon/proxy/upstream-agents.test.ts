/** Upstream agents: where requests connect, and which kept-alive connections they may share. */
import { afterEach, describe, expect, it } from 'vitest';
import { connectTarget, createUpstreamAgents, type UpstreamAgents } from '../../../../src/daemon/proxy/upstream-agents.js';

let agents: UpstreamAgents | null = null;
afterEach(() => {
  agents?.destroy();
  agents = null;
});

describe('https agent pool key', () => {
  it('separates connections by SNI name even at one address (a connection verified for one host never serves another)', () => {
    agents = createUpstreamAgents(null);
    const a = agents.https.getName({ host: '127.0.0.1', port: 8443, servername: 'api.anthropic.com' });
    const b = agents.https.getName({ host: '127.0.0.1', port: 8443, servername: 'api.openai.com' });
    expect(a).not.toBe(b);
  });

  it('separates by port and host, and is stable for the same destination', () => {
    agents = createUpstreamAgents(null);
    const base = { host: 'api.anthropic.com', port: 443, servername: 'api.anthropic.com' };
    expect(agents.https.getName(base)).toBe(agents.https.getName({ ...base }));
    expect(agents.https.getName(base)).not.toBe(agents.https.getName({ ...base, port: 8443 }));
    expect(agents.https.getName(base)).not.toBe(agents.https.getName({ ...base, host: 'api.openai.com', servername: 'api.openai.com' }));
  });
});

describe('connectTarget', () => {
  it('connects to an override address while SNI keeps the real name', () => {
    const t = connectTarget([{ host: 'api.anthropic.com', port: 443, addr: '127.0.0.1', addrPort: 9443 }], 'API.anthropic.com', 443);
    expect(t).toEqual({ host: '127.0.0.1', port: 9443, servername: 'API.anthropic.com' });
  });

  it('sends no SNI name for IP literals', () => {
    expect(connectTarget([], '10.0.0.1', 443).servername).toBeUndefined();
    expect(connectTarget([], '::1', 443).servername).toBeUndefined();
  });
});
