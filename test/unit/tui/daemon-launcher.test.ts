import { describe, expect, it, vi } from 'vitest';
import { RpcError } from '../../../src/shared/rpc/client.js';
import { connectOrStart } from '../../../src/tui/daemon-launcher.js';
import { FakeDaemonClient } from './fixtures.js';

const unreachable = () => new RpcError('daemon_unreachable', 'no answer', -32099);

describe('connectOrStart', () => {
  it('uses a running daemon without starting one', async () => {
    const client = new FakeDaemonClient();
    const startDaemon = vi.fn(async () => 0);
    const r = await connectOrStart({ connect: async () => client, startDaemon, noStart: false, socketPath: '/s' });
    expect(r).toEqual({ kind: 'connected', client, started: false });
    expect(startDaemon).not.toHaveBeenCalled();
  });

  it('starts a daemon when none answers, then connects and reports that it started one', async () => {
    const client = new FakeDaemonClient();
    const connect = vi.fn().mockRejectedValueOnce(unreachable()).mockResolvedValueOnce(client);
    const startDaemon = vi.fn(async () => 0);
    const r = await connectOrStart({ connect, startDaemon, noStart: false, socketPath: '/s' });
    expect(r).toEqual({ kind: 'connected', client, started: true });
    expect(startDaemon).toHaveBeenCalledOnce();
  });

  it('refuses with --no-start', async () => {
    const startDaemon = vi.fn(async () => 0);
    const r = await connectOrStart({ connect: () => Promise.reject(unreachable()), startDaemon, noStart: true, socketPath: '/s' });
    expect(r.kind).toBe('refused');
    expect(r.kind === 'refused' && r.message).toMatch(/--no-start/);
    expect(startDaemon).not.toHaveBeenCalled();
  });

  it('fails clearly when the daemon will not start', async () => {
    const r = await connectOrStart({ connect: () => Promise.reject(unreachable()), startDaemon: async () => 1, noStart: false, socketPath: '/s' });
    expect(r.kind === 'failed' && r.message).toMatch(/could not start sluiced \(exit 1\)/);
  });
});
