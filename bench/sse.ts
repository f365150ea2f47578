/**
 * SSE pass-through: time to first event and per-event delivery. The upstream stamps each event with its
 * wall-clock send time (`/sse?ts=1`), so each event's one-way latency (send → parsed by the client) is
 * measured directly; comparing direct with sluice shows any buffering or Nagle-style delay in the proxy.
 * Streams run one at a time on a warm keep-alive connection.
 */
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import type { Target } from './targets.js';
import { round, summarize, type Summary } from './util.js';

export interface SseResult {
  streams: number;
  events_per_stream: number;
  gap_ms: number;
  /** Request start → first event parsed. */
  ttfe: Summary;
  /** Mean time between consecutive events as received. */
  mean_gap_ms: number;
  /** Largest time between consecutive events as received. */
  max_gap_ms: number;
  /** Upstream send → client parse, per event. */
  event_latency: Summary;
  incomplete_streams: number;
}

async function oneStream(
  t: Target,
  dispatcher: Dispatcher,
  n: number,
  gap: number,
): Promise<{ ttfe: number; gaps: number[]; lat: number[]; complete: boolean }> {
  const t0 = performance.now();
  const res = await request(t.url(`/sse?n=${n}&gap=${gap}&ts=1`), { dispatcher, headers: t.headers });
  if (res.statusCode !== 200) throw new Error(`${t.name} SSE: status ${res.statusCode}`);
  let buf = '';
  let ttfe = NaN;
  let last = NaN;
  let done = false;
  const gaps: number[] = [];
  const lat: number[] = [];
  for await (const chunk of res.body) {
    const now = performance.now();
    const wall = performance.timeOrigin + now;
    buf += (chunk as Buffer).toString('utf8');
    let i: number;
    while ((i = buf.indexOf('\n\n')) !== -1) {
      const ev = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (ev.includes('[DONE]')) {
        done = true;
        continue;
      }
      const m = /"t":([\d.]+)/.exec(ev);
      if (!m) continue;
      lat.push(wall - Number(m[1]));
      if (Number.isNaN(ttfe)) ttfe = now - t0;
      else gaps.push(now - last);
      last = now;
    }
  }
  return { ttfe, gaps, lat, complete: done && lat.length === n };
}

export async function measureSse(t: Target, streams: number, n: number, gap: number): Promise<SseResult> {
  // A dispatcher of its own (no idle sockets left over from the load runs that the server may have timed
  // out), warmed by one short stream so that every measured stream runs on an open connection / tunnel.
  const dispatcher = t.fresh();
  try {
    return await measureOn(t, dispatcher, streams, n, gap);
  } finally {
    await dispatcher.destroy().catch(() => {});
  }
}

async function measureOn(t: Target, dispatcher: Dispatcher, streams: number, n: number, gap: number): Promise<SseResult> {
  await oneStream(t, dispatcher, 2, 1);
  const ttfe: number[] = [];
  const gaps: number[] = [];
  const lat: number[] = [];
  let incomplete = 0;
  for (let s = 0; s < streams; s++) {
    const r = await oneStream(t, dispatcher, n, gap);
    ttfe.push(r.ttfe);
    gaps.push(...r.gaps);
    lat.push(...r.lat);
    if (!r.complete) incomplete++;
  }
  const g = summarize(gaps);
  return {
    streams,
    events_per_stream: n,
    gap_ms: gap,
    ttfe: summarize(ttfe),
    mean_gap_ms: g.mean_ms,
    max_gap_ms: g.max_ms,
    event_latency: summarize(lat),
    incomplete_streams: incomplete,
  };
}

/** sluice − direct for the figures the target cares about. */
export function sseDelta(
  direct: SseResult,
  sluice: SseResult,
): { ttfe_p50_ms: number; event_latency_p50_ms: number; event_latency_p99_ms: number; event_latency_max_ms: number; mean_gap_ms: number } {
  return {
    ttfe_p50_ms: round(sluice.ttfe.p50_ms - direct.ttfe.p50_ms),
    event_latency_p50_ms: round(sluice.event_latency.p50_ms - direct.event_latency.p50_ms),
    event_latency_p99_ms: round(sluice.event_latency.p99_ms - direct.event_latency.p99_ms),
    event_latency_max_ms: round(sluice.event_latency.max_ms - direct.event_latency.max_ms),
    mean_gap_ms: round(sluice.mean_gap_ms - direct.mean_gap_ms),
  };
}
