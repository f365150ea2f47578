/**
 * Measures the daemon's responsiveness from outside: `daemon.status` round trips over its own RPC
 * connection, one after another with a short pause. A blocked event loop in the daemon (certificate work,
 * a synchronous write, a long GC) shows up directly as a long round trip.
 */
import { performance } from 'node:perf_hooks';
import { connectDaemon, type DaemonClient } from '../src/shared/rpc/client.js';
import { sleep, summarize, type Summary } from './util.js';

export class RpcPinger {
  private samples: number[] = [];
  private running = false;
  private loop: Promise<void> = Promise.resolve();

  private constructor(private readonly client: DaemonClient) {}

  static async connect(socketPath: string): Promise<RpcPinger> {
    return new RpcPinger(await connectDaemon({ socketPath, timeoutMs: 30_000 }));
  }

  /** Starts pinging every `gapMs` (after the previous answer). */
  start(gapMs = 5): void {
    if (this.running) return;
    this.samples = [];
    this.running = true;
    this.loop = (async () => {
      while (this.running) {
        const t0 = performance.now();
        try {
          await this.client.call('daemon.status');
          this.samples.push(performance.now() - t0);
        } catch {
          if (this.client.closed) return;
        }
        await sleep(gapMs);
      }
    })();
  }

  /** Stops and returns the round trips since `start`. */
  async stop(): Promise<Summary> {
    this.running = false;
    await this.loop;
    return summarize(this.samples);
  }

  /** Idle baseline: `n` sequential round trips. */
  async measure(n: number): Promise<Summary> {
    const s: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await this.client.call('daemon.status');
      s.push(performance.now() - t0);
    }
    return summarize(s);
  }

  close(): void {
    this.running = false;
    this.client.close();
  }
}
