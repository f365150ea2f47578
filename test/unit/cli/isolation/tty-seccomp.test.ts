import { describe, expect, it } from 'vitest';
import { runFilter, ttyFilterBytes, ttyFilterProgram } from '../../../../src/cli/isolation/tty-seccomp.js';
import { sandboxArgs } from '../../../../src/cli/isolation/sandbox-plan.js';

const X86_64 = 0xc000003e;
const I386 = 0x40000003;
const AARCH64 = 0xc00000b7;
const ARM = 0x40000028;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const TCGETS = 0x5401;

describe('the terminal seccomp filter', () => {
  const prog = ttyFilterProgram();

  it.each([
    ['x86_64', X86_64, 16],
    ['i386', I386, 54],
    ['aarch64', AARCH64, 29],
    ['arm', ARM, 54],
  ])('refuses TIOCSTI and TIOCLINUX on %s and allows other ioctls and calls', (_n, arch, ioctl) => {
    expect(runFilter(prog, { arch, nr: ioctl, arg1: TIOCSTI })).toBe('eperm');
    expect(runFilter(prog, { arch, nr: ioctl, arg1: TIOCLINUX })).toBe('eperm');
    expect(runFilter(prog, { arch, nr: ioctl, arg1: TCGETS })).toBe('allow');
    // The same request number on another system call is nobody's business.
    expect(runFilter(prog, { arch, nr: ioctl + 1, arg1: TIOCSTI })).toBe('allow');
  });

  it('refuses every x32 call and every call of an unknown architecture (no compat door)', () => {
    expect(runFilter(prog, { arch: X86_64, nr: 0x40000000 | 514, arg1: TIOCSTI })).toBe('eperm');
    expect(runFilter(prog, { arch: X86_64, nr: 0x40000000 | 0, arg1: 0 })).toBe('eperm');
    expect(runFilter(prog, { arch: 0xc0000015, nr: 54, arg1: TCGETS })).toBe('eperm');
  });

  it('is 8 bytes an instruction, little-endian, with every jump in range and landing inside', () => {
    const b = ttyFilterBytes();
    expect(b.length).toBe(prog.length * 8);
    expect(b.readUInt16LE(0)).toBe(0x20);
    expect(b.readUInt32LE(4)).toBe(4); // load arch
    prog.forEach((p, i) => {
      if (p.code === 0x06) return; // a return jumps nowhere
      expect(i + 1 + p.jt).toBeLessThan(prog.length);
      expect(i + 1 + p.jf).toBeLessThan(prog.length);
    });
    expect(prog.at(-1)!.code).toBe(0x06);
  });

  it('is handed to bwrap before the command', () => {
    const a = sandboxArgs({
      bwrap: 'bwrap',
      node: 'node',
      initScript: 'init.js',
      port: 1,
      proxySocket: '/s/proxy.sock',
      stateDirs: ['/s'],
      keep: [],
      readOnlyFiles: [],
      hiddenFiles: [],
      signalsFd: 3,
      seccompFd: 4,
      command: ['x'],
    });
    const at = a.indexOf('--seccomp');
    expect(at).toBeGreaterThan(-1);
    expect(a[at + 1]).toBe('4');
    expect(at).toBeLessThan(a.indexOf('--'));
  });
});
