/**
 * The bubblewrap command line for `sluicectl run --isolate`: what the agent sees and what it cannot reach.
 * Pure (no file system or process access), so the fence itself is unit-tested line by line.
 *
 * What the plan guarantees:
 * - a new network namespace with only loopback: the proxy relay inside (sandbox-init) is the one way out,
 *   and a direct connection to anything fails at once;
 * - a new pid namespace with its own /proc: the daemon's process, memory and environment are invisible;
 * - sluice's state is out of reach: every state directory is replaced by an empty tmpfs except the CA files
 *   the agent needs (read-only) and the proxy socket; the RPC socket and the master key, wherever they
 *   live, are covered with /dev/null;
 * - everything else as the user has it: same uid, same file system (home and working directory
 *   read-write), a private /tmp, the terminal inherited — minus the ioctls that would type into it
 *   (TIOCSTI, TIOCLINUX: see tty-seccomp.ts), refused by a seccomp filter.
 */
import path from 'node:path';

/** What the plan is built from. */
export interface SandboxInputs {
  bwrap: string;
  /** The node binary that runs sandbox-init inside. */
  node: string;
  /** dist/bootstrap/sandbox-init.js */
  initScript: string;
  /** The proxy port the agent's HTTPS_PROXY names (the relay listens on it inside). */
  port: number;
  /** The daemon's proxy socket on the host. */
  proxySocket: string;
  /** The daemon's SLUICE_HOME and any other sluice state directories to hide (the default home, say). */
  stateDirs: string[];
  /**
   * Paths the agent keeps although they may live under /tmp (which becomes private): the working directory
   * and $HOME (writable), sluice's own install and the node binary (read-only, for the fetch preload and
   * sandbox-init). Paths outside /tmp need nothing: the rest of the file system is the user's as it is.
   */
  keep: { path: string; writable: boolean }[];
  /** Files inside a state dir the agent needs, read-only (the CA and the CA bundle). */
  readOnlyFiles: string[];
  /** Files to cover wherever they are (the RPC socket, the master key file). */
  hiddenFiles: string[];
  /** The fd on which sluicectl writes signal names for the command (passed to sandbox-init). */
  signalsFd: number;
  /** The fd bwrap reads the terminal seccomp filter from (tty-seccomp.ts). */
  seccompFd: number;
  command: string[];
}

/** The argv (after the bwrap binary) that runs `command` fenced. */
export function sandboxArgs(i: SandboxInputs): string[] {
  const a: string[] = ['--die-with-parent', '--unshare-net', '--unshare-pid', '--unshare-ipc', '--dev-bind', '/', '/', '--proc', '/proc', '--tmpfs', '/tmp'];
  for (const k of i.keep) {
    const abs = path.resolve(k.path);
    if (abs.startsWith('/tmp/')) a.push(k.writable ? '--bind' : '--ro-bind', abs, abs);
  }
  // After the kept paths: a state directory inside one of them is still emptied.
  const dirs = [...new Set(i.stateDirs.map((d) => path.resolve(d)))].sort((x, y) => x.length - y.length);
  for (const d of dirs) a.push('--tmpfs', d);
  for (const f of i.readOnlyFiles) a.push('--ro-bind', f, f);
  // After the tmpfs, so the mount point is made in the sandbox's own empty directory, never on the host.
  a.push('--bind', i.proxySocket, i.proxySocket);
  for (const f of i.hiddenFiles) {
    const abs = path.resolve(f);
    if (dirs.some((d) => abs === d || abs.startsWith(d + path.sep))) continue;
    a.push('--ro-bind', '/dev/null', abs);
  }
  a.push('--seccomp', String(i.seccompFd));
  a.push('--', i.node, i.initScript, '--listen', String(i.port), '--socket', i.proxySocket, '--signals-fd', String(i.signalsFd), '--', ...i.command);
  return a;
}
