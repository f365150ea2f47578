/**
 * Closed-loop load generator: `concurrency` workers, each sending one request, reading the whole response
 * and sending the next, for a fixed number of requests or a fixed time. Latency is taken per request from
 * just before `request()` to the end of the body; a warm-up phase (not recorded) opens the connections.
 */
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import { round, summarize, type Summary } from './util.js';

/** What to run. Give `requests` or `durationMs`. */
export interface LoadSpec {
  url: string;
  dispatcher: Dispatcher;
  headers?: Record<string, string>;
  concurrency: number;
  requests?: number;
  durationMs?: number;
  warmup?: { requests?: number; durationMs?: number };
  /** Called once the measured phase starts and once it ends (the RPC pinger hooks in here). */
  onMeasureStart?: () => void;
  onMeasureEnd?: () => void;
}

/** Outcome of one measured phase. */
export interface LoadResult {
  concurrency: number;
  /** Responses received (any status). */
  requests: number;
  /** 2xx responses. */
  ok: number;
  /** Requests that threw (connection errors, resets). */
  errors: number;
  statuses: Record<string, number>;
  duration_ms: number;
  /** 2xx responses per second. */
  rps: number;
  latency: Summary;
  /** Counts of latencies by upper bound in ms (`inf` = above the last bound). */
  histogram: Record<string, number>;
  first_error: string | null;
  /** CPU time the proxy process used per request during the measured phase (µs; proxies only). */
  proxy_cpu_us_per_req?: number | null;
}

const BOUNDS = [0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

async function phase(
  spec: LoadSpec,
  more: () => boolean,
  sink: { lat: number[]; statuses: Record<string, number>; errors: number; firstError: string | null } | null,
): Promise<void> {
  const worker = async () => {
    while (more()) {
      const t0 = performance.now();
      try {
        const res = await request(spec.url, { method: 'GET', headers: spec.headers, dispatcher: spec.dispatcher });
        await res.body.dump({ limit: 1 << 20 });
        const ms = performance.now() - t0;
        if (sink) {
          sink.lat.push(ms);
          const k = String(res.statusCode);
          sink.statuses[k] = (sink.statuses[k] ?? 0) + 1;
        }
      } catch (err) {
        if (sink) {
          sink.errors++;
          sink.firstError ??= err instanceof Error ? `${err.name}: ${err.message}` : String(err);
        }
        // A failing target must not turn this loop into a busy spin.
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
}

function limiter(requests: number | undefined, durationMs: number | undefined): () => boolean {
  if (requests !== undefined) {
    let issued = 0;
    return () => issued++ < requests;
  }
  const deadline = performance.now() + (durationMs ?? 1000);
  return () => performance.now() < deadline;
}

/** Runs a warm-up then one measured phase. */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (spec.warmup && (spec.warmup.requests || spec.warmup.durationMs)) {
    await phase(spec, limiter(spec.warmup.requests, spec.warmup.durationMs), null);
  }
  const sink = { lat: [] as number[], statuses: {} as Record<string, number>, errors: 0, firstError: null as string | null };
  spec.onMeasureStart?.();
  const t0 = performance.now();
  await phase(spec, limiter(spec.requests, spec.durationMs), sink);
  const duration = performance.now() - t0;
  spec.onMeasureEnd?.();
  const ok = Object.entries(sink.statuses).reduce((n, [k, v]) => (k.startsWith('2') ? n + v : n), 0);
  const histogram: Record<string, number> = {};
  for (const b of BOUNDS) histogram[`le_${b}`] = 0;
  histogram.inf = 0;
  for (const ms of sink.lat) {
    const b = BOUNDS.find((x) => ms <= x);
    histogram[b === undefined ? 'inf' : `le_${b}`]!++;
  }
  return {
    concurrency: spec.concurrency,
    requests: sink.lat.length,
    ok,
    errors: sink.errors,
    statuses: sink.statuses,
    duration_ms: round(duration, 1),
    rps: round((ok * 1000) / duration, 1),
    latency: summarize(sink.lat),
    histogram,
    first_error: sink.firstError,
  };
}
