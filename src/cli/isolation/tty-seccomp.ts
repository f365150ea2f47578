/**
 * A seccomp filter (classic BPF, the form `bwrap --seccomp FD` loads) that refuses the two terminal ioctls
 * a sandboxed agent could use to act outside the sandbox through the terminal it inherits:
 * - `TIOCSTI` pushes bytes into the terminal's input queue: after the agent exits, the user's shell would
 *   read them as typed commands (e.g. `cat ~/.local/share/sluice/master.key | …`), run unfenced;
 * - `TIOCLINUX` (subcode 2/3, selection paste) does the same on a Linux virtual console.
 * Kernels ≥ 6.2 can switch TIOCSTI off (`dev.tty.legacy_tiocsti=0`), but many machines still have it on.
 * Flatpak refuses both the same way; sluice keeps the terminal shared (no `--new-session`) so interactive
 * agents keep job control and Ctrl-C, and closes just these two doors.
 *
 * Guarantees: for every architecture a process on an x86_64 or aarch64 host can run as (x86_64, its x32
 * ABI, i386, aarch64, arm), `ioctl(fd, TIOCSTI | TIOCLINUX, …)` fails with EPERM. Only the low 32 bits of
 * the request are compared, as the kernel reads it (CVE-2019-10063 was a filter that compared 64). x32
 * calls are refused outright (nothing uses that ABI). An architecture the filter does not know gets EPERM
 * for every system call: fail closed rather than leave a compat door open. Everything else is allowed.
 */

/** `struct sock_filter` opcodes used here (linux/bpf_common.h). */
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const JSET_K = 0x45;
const RET_K = 0x06;

const RET_ALLOW = 0x7fff0000;
const RET_EPERM = 0x00050000 | 1;

/** Offsets in `struct seccomp_data`: nr, arch, then (after the instruction pointer) args[1]'s low word on little-endian. */
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG1_LO = 24;

const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const X32_SYSCALL_BIT = 0x40000000;

/** audit arch → ioctl syscall number on it. */
const ARCHES: readonly { arch: number; ioctl: number; x32?: true }[] = [
  { arch: 0xc000003e, ioctl: 16, x32: true }, // x86_64
  { arch: 0x40000003, ioctl: 54 }, // i386
  { arch: 0xc00000b7, ioctl: 29 }, // aarch64
  { arch: 0x40000028, ioctl: 54 }, // arm (EABI)
];

interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const stmt = (code: number, k: number): Insn => ({ code, jt: 0, jf: 0, k });
const jump = (code: number, k: number, jt: number, jf: number): Insn => ({ code, jt, jf, k });

/** The filter's instructions (exported for tests that run it through {@link runFilter}). */
export function ttyFilterProgram(): Insn[] {
  // Layout: [load arch] then per arch a block; a shared tail checks the ioctl request.
  //   ld arch
  //   per arch: jeq ARCH ? next : skip-block ; [jset X32 → deny] ; ld nr ; jeq IOCTL ? → check : allow
  //   deny-all (unknown arch)
  //   check: ld arg1 ; jeq TIOCSTI → deny ; jeq TIOCLINUX → deny ; allow ; deny
  const blocks: Insn[][] = ARCHES.map((a) => [
    jump(JEQ_K, a.arch, 0, 0), // jf patched to skip the block
    ...(a.x32 ? [stmt(LD_W_ABS, OFF_NR), jump(JSET_K, X32_SYSCALL_BIT, 0, 0)] : []), // jt patched → deny
    stmt(LD_W_ABS, OFF_NR),
    jump(JEQ_K, a.ioctl, 0, 0), // jt → check, jf → allow (patched)
  ]);
  const prog: Insn[] = [stmt(LD_W_ABS, OFF_ARCH)];
  const patches: { at: number; field: 'jt' | 'jf'; to: 'check' | 'allow' | 'deny' }[] = [];
  for (const b of blocks) {
    const start = prog.length;
    b[0]!.jf = b.length - 1; // not this arch: skip the rest of the block
    prog.push(...b);
    if (b.length === 5) patches.push({ at: start + 2, field: 'jt', to: 'deny' });
    patches.push({ at: start + b.length - 1, field: 'jt', to: 'check' }, { at: start + b.length - 1, field: 'jf', to: 'allow' });
  }
  prog.push(stmt(RET_K, RET_EPERM)); // unknown architecture
  const check = prog.length;
  prog.push(stmt(LD_W_ABS, OFF_ARG1_LO), jump(JEQ_K, TIOCSTI, 0, 0), jump(JEQ_K, TIOCLINUX, 0, 0));
  const allow = prog.length;
  prog.push(stmt(RET_K, RET_ALLOW));
  const deny = prog.length;
  prog.push(stmt(RET_K, RET_EPERM));
  prog[check + 1]!.jt = deny - (check + 2);
  prog[check + 2]!.jt = deny - (check + 3);
  const target = { check, allow, deny };
  for (const p of patches) prog[p.at]![p.field] = target[p.to] - (p.at + 1);
  return prog;
}

/** The filter as `bwrap --seccomp FD` reads it: `struct sock_filter[]` in the host's (little-endian) byte order. */
export function ttyFilterBytes(): Buffer {
  const prog = ttyFilterProgram();
  const b = Buffer.alloc(prog.length * 8);
  prog.forEach((p, i) => {
    if (p.jt > 255 || p.jf > 255) throw new Error('seccomp jump out of range');
    b.writeUInt16LE(p.code, i * 8);
    b.writeUInt8(p.jt, i * 8 + 2);
    b.writeUInt8(p.jf, i * 8 + 3);
    b.writeUInt32LE(p.k >>> 0, i * 8 + 4);
  });
  return b;
}

/**
 * Runs the program on one system call as the kernel would (the subset of BPF it uses), returning the
 * action: `allow` or `eperm`. For tests: the kernel is the real judge (see the isolation e2e test).
 */
export function runFilter(prog: readonly Insn[], call: { arch: number; nr: number; arg1: number }): 'allow' | 'eperm' {
  let acc = 0;
  for (let pc = 0; pc < prog.length; pc++) {
    const p = prog[pc]!;
    if (p.code === LD_W_ABS) acc = p.k === OFF_ARCH ? call.arch >>> 0 : p.k === OFF_NR ? call.nr >>> 0 : call.arg1 >>> 0;
    else if (p.code === JEQ_K) pc += acc === p.k >>> 0 ? p.jt : p.jf;
    else if (p.code === JSET_K) pc += (acc & p.k) !== 0 ? p.jt : p.jf;
    else if (p.code === RET_K) return p.k === RET_ALLOW ? 'allow' : 'eperm';
    else throw new Error(`unknown opcode ${p.code}`);
  }
  throw new Error('program fell off its end');
}
