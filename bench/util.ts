/** Small helpers shared by the bench modules: timing summaries, free ports, /proc readings, cleanup. */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Rounds to `digits` decimals (JSON stays readable). */
export function round(x: number, digits = 3): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Distribution of a set of millisecond samples. */
export interface Summary {
  n: number;
  mean_ms: number;
  min_ms: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Summarises samples (ms). Empty input gives NaN fields and n = 0. */
export function summarize(samples: readonly number[]): Summary {
  const s = Float64Array.from(samples).sort();
  let sum = 0;
  for (const x of s) sum += x;
  return {
    n: s.length,
    mean_ms: round(s.length ? sum / s.length : NaN),
    min_ms: round(s.length ? s[0]! : NaN),
    p50_ms: round(percentile(s, 50)),
    p90_ms: round(percentile(s, 90)),
    p99_ms: round(percentile(s, 99)),
    max_ms: round(s.length ? s[s.length - 1]! : NaN),
  };
}

/** A free TCP port on 127.0.0.1 (bound and released; a small race is acceptable on loopback). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves once `host:port` accepts a TCP connection, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) return;
    if (!alive()) throw new Error(`process listening on ${port} exited`);
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Resident set size (MB, from VmRSS) and open file descriptors of a process; null when it is gone. */
export function procStats(pid: number): { rss_mb: number; fds: number } | null {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    const fds = fs.readdirSync(`/proc/${pid}/fd`).length;
    return { rss_mb: m ? round(Number(m[1]) / 1024, 1) : NaN, fds };
  } catch {
    return null;
  }
}

const TCP_STATES: Record<string, string> = {
  '01': 'established',
  '02': 'syn_sent',
  '03': 'syn_recv',
  '04': 'fin_wait1',
  '05': 'fin_wait2',
  '06': 'time_wait',
  '07': 'close',
  '08': 'close_wait',
  '09': 'last_ack',
  '0A': 'listen',
  '0B': 'closing',
};

/**
 * A process's descriptors by kind: TCP sockets split into listening / to `upstreamPort` / other, with
 * their state (looked up by inode in /proc/<pid>/net/tcp*), Unix sockets, and everything else. Tells a leak apart
 * from kept-alive connections.
 */
export function fdKinds(pid: number, upstreamPort: number): Record<string, number> {
  const tcp = new Map<string, { remotePort: number; state: string }>();
  for (const f of ['tcp', 'tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(`/proc/${pid}/net/${f}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const p = line.trim().split(/\s+/);
      if (p.length > 9) tcp.set(p[9]!, { remotePort: parseInt(p[2]!.split(':')[1]!, 16), state: TCP_STATES[p[3]!] ?? p[3]! });
    }
  }
  const out: Record<string, number> = {};
  const add = (k: string) => (out[k] = (out[k] ?? 0) + 1);
  let names: string[] = [];
  try {
    names = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of names) {
    let link = '';
    try {
      link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (!m) add('other');
    else {
      const t = tcp.get(m[1]!);
      if (!t) add('unix_socket');
      else if (t.state === 'listen') add('tcp_listening');
      else add(`${t.remotePort === upstreamPort ? 'tcp_to_upstream' : 'tcp_other'}_${t.state}`);
    }
  }
  return out;
}

/** CPU time (user + system, ms, all threads) a process has used so far; null when it is gone. */
export function procCpuMs(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
    return (ticks * 1000) / CLK_TCK;
  } catch {
    return null;
  }
}

/** Clock ticks per second for /proc times (100 on Linux unless configured otherwise). */
const CLK_TCK = 100;

/**
 * Everything the bench starts registers its teardown here; `run()` tears down in reverse order, each step
 * bounded, and is idempotent. Child processes are also registered so a hard exit still kills them.
 */
export class Cleanup {
  private readonly steps: { name: string; fn: () => Promise<void> | void }[] = [];
  private readonly procs = new Set<ChildProcess>();
  private running: Promise<void> | null = null;

  add(name: string, fn: () => Promise<void> | void): void {
    this.steps.push({ name, fn });
  }

  track(proc: ChildProcess): void {
    this.procs.add(proc);
    proc.once('exit', () => this.procs.delete(proc));
  }

  run(): Promise<void> {
    if (!this.running) this.running = this.doRun();
    return this.running;
  }

  private async doRun(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await Promise.race([Promise.resolve().then(step.fn), sleep(15_000).then(() => Promise.reject(new Error('timed out')))]);
      } catch (err) {
        process.stderr.write(`bench: cleanup step "${step.name}" failed: ${err instanceof Error ? err.message : String(err)}\n`);
      }
    }
    this.killAll();
  }

  /** Synchronous last resort (process 'exit' handler): SIGKILL whatever is still running. */
  killAll(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

/** Formats a number for the markdown table. */
export function fmt(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString('en-US');
  return x.toFixed(digits);
}

/** Like {@link fmt} with an explicit sign (for differences). */
export function signed(x: number | null | undefined, digits = 2): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return (x >= 0 ? '+' : '') + fmt(x, digits);
}
