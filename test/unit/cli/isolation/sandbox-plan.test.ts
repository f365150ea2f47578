import { describe, expect, it } from 'vitest';
import { sandboxArgs, type SandboxInputs } from '../../../../src/cli/isolation/sandbox-plan.js';

const base: SandboxInputs = {
  bwrap: '/usr/bin/bwrap',
  node: '/usr/bin/node',
  initScript: '/opt/sluice/dist/bootstrap/sandbox-init.js',
  port: 8787,
  proxySocket: '/home/u/.local/share/sluice/proxy.sock',
  stateDirs: ['/home/u/.local/share/sluice'],
  readOnlyFiles: ['/home/u/.local/share/sluice/ca/ca.pem', '/home/u/.local/share/sluice/ca/bundle.pem'],
  hiddenFiles: ['/home/u/.local/share/sluice/sluiced.sock', '/run/user/1000/sluice.sock', '/secrets/master.key'],
  signalsFd: 3,
  seccompFd: 4,
  command: ['claude', '-p', 'hi'],
  keep: [
    { path: '/home/u/project', writable: true },
    { path: '/home/u', writable: true },
    { path: '/opt/sluice', writable: false },
  ],
};

/** The pairs/triples of options before `--`, as strings, for readable assertions. */
function options(a: string[]): string {
  return a.slice(0, a.indexOf('--')).join(' ');
}

describe('sandboxArgs', () => {
  it('fences network, pids and ipc, with a private /proc and /tmp', () => {
    const o = options(sandboxArgs(base));
    expect(o).toContain('--unshare-net');
    expect(o).toContain('--unshare-pid');
    expect(o).toContain('--unshare-ipc');
    expect(o).toContain('--die-with-parent');
    expect(o).toContain('--proc /proc');
    expect(o).toContain('--tmpfs /tmp');
  });

  it('empties every state dir, then lets in only the CA files (read-only) and the proxy socket', () => {
    const a = sandboxArgs(base);
    const o = options(a);
    const tmpfs = o.indexOf('--tmpfs /home/u/.local/share/sluice');
    expect(tmpfs).toBeGreaterThan(-1);
    // Binds come after the tmpfs, so their mount points are made inside the empty directory, not on the host.
    expect(o.indexOf('--ro-bind /home/u/.local/share/sluice/ca/ca.pem /home/u/.local/share/sluice/ca/ca.pem')).toBeGreaterThan(tmpfs);
    expect(o.indexOf('--bind /home/u/.local/share/sluice/proxy.sock /home/u/.local/share/sluice/proxy.sock')).toBeGreaterThan(tmpfs);
  });

  it('covers hidden files outside the state dirs with /dev/null (inside them the tmpfs already hides them)', () => {
    const o = options(sandboxArgs(base));
    expect(o).toContain('--ro-bind /dev/null /run/user/1000/sluice.sock');
    expect(o).toContain('--ro-bind /dev/null /secrets/master.key');
    expect(o).not.toContain('/dev/null /home/u/.local/share/sluice/sluiced.sock');
  });

  it('runs the command under sandbox-init with the relay port, the socket and the signals fd', () => {
    const a = sandboxArgs(base);
    expect(a.slice(a.indexOf('--') + 1)).toEqual([
      '/usr/bin/node',
      base.initScript,
      '--listen',
      '8787',
      '--socket',
      base.proxySocket,
      '--signals-fd',
      '3',
      '--',
      'claude',
      '-p',
      'hi',
    ]);
  });

  it('keeps the working directory, home and sluice install reachable when they live under the private /tmp', () => {
    const o = options(
      sandboxArgs({
        ...base,
        keep: [
          { path: '/tmp/work/repo', writable: true },
          { path: '/home/u', writable: true },
          { path: '/tmp/sluice-clone', writable: false },
        ],
        stateDirs: ['/tmp/work/repo/.sluice'],
      }),
    );
    const tmp = o.indexOf('--tmpfs /tmp ');
    expect(o.indexOf('--bind /tmp/work/repo /tmp/work/repo')).toBeGreaterThan(tmp);
    expect(o.indexOf('--ro-bind /tmp/sluice-clone /tmp/sluice-clone')).toBeGreaterThan(tmp);
    // Outside /tmp nothing needs binding; a state dir inside a kept path is still emptied, after the bind.
    expect(o).not.toContain('--bind /home/u /home/u');
    expect(o.indexOf('--tmpfs /tmp/work/repo/.sluice')).toBeGreaterThan(o.indexOf('--bind /tmp/work/repo'));
  });
});
