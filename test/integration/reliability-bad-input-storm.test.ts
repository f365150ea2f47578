/**
 * Bad input (issue 10), RPC side: thousands of connections opening and closing while a subscriber that
 * never reads sits on the socket and 2,000 requests go through the proxy. The daemon stays healthy and
 * responsive, other clients are unaffected, the stuck subscriber is told about the events it lost (a `gap`)
 * instead of growing the daemon's memory, and no file descriptors leak. (Split out of
 * reliability-bad-input.test.ts so the two long groups run in parallel.)
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectDaemon, type DaemonClient } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import type { FakeUpstream } from '../fakes/fake-upstream.js';
import { startBadInputDaemon, stopBadInputDaemon } from '../fakes/bad-input-daemon.js';
import { listeningTcp, mapLimit, percentile, rssMb, runCli, statsAtRest } from '../fakes/reliability-helpers.js';
import { basicAuth, fakeSecret, openStream, rawProxy, sleep, tokenOf, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';

let upstream: FakeUpstream;
let d: TestDaemon;
let phantom = '';
let disp: ProxyAgent;

beforeAll(async () => {
  ({ upstream, d, phantom, disp } = await startBadInputDaemon());
});

afterAll(() => stopBadInputDaemon({ upstream, d, disp }));

const fdCount = (pid: number) => fs.readdirSync(`/proc/${pid}/fd`).length;

/** One short-lived raw RPC connection doing one of several rude things; resolves when it is closed. */
function rudeConnection(socketPath: string, i: number): Promise<'ok' | 'closed' | 'error'> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    let buf = '';
    const done = (r: 'ok' | 'closed' | 'error') => {
      clearTimeout(t);
      s.destroy();
      resolve(r);
    };
    const t = setTimeout(() => done('error'), 10_000);
    s.on('error', () => done('error'));
    s.on('connect', () => {
      switch (i % 4) {
        case 0: // a real call, then leave
          s.write(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'daemon.status', params: {} }) + '\n');
          s.on('data', (c: Buffer) => {
            buf += c.toString();
            if (buf.includes('\n')) done(JSON.parse(buf.slice(0, buf.indexOf('\n'))).result?.pid ? 'ok' : 'error');
          });
          break;
        case 1: // connect and vanish
          done('closed');
          break;
        case 2: // half a line, then vanish
          s.end('{"jsonrpc":"2.0","id":1,"method":"daemon.sta');
          s.on('close', () => done('closed'));
          break;
        default: // subscribe, then vanish without reading
          s.end(JSON.stringify({ jsonrpc: '2.0', id: i, method: 'events.subscribe', params: {} }) + '\n');
          s.on('close', () => done('closed'));
          setTimeout(() => done('closed'), 200); // about time: this client leaves after 200 ms whether or not the daemon closed first
      }
    });
  });
}

describe('RPC storm + a subscriber that never reads + 2,000 proxied requests', () => {
  test('the daemon stays healthy, the proxy keeps flowing, others are unaffected, the stuck subscriber gets a gap; memory and fds bounded', async () => {
    const pid = d.proc.pid!;
    const fdsBefore = fdCount(pid);
    const rssBefore = rssMb(pid);

    // The stuck subscriber: subscribes, then never reads another byte (until the end of the test).
    const stuck = net.connect(d.socket);
    await new Promise<void>((r) => stuck.once('connect', () => r()));
    stuck.write(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'events.subscribe', params: {} }) + '\n');
    stuck.pause();
    const stuckChunks: Buffer[] = [];

    // A well-behaved bystander: subscribed and polling status the whole time.
    const bystander: DaemonClient = await connectDaemon({ socketPath: d.socket, timeoutMs: 10_000 });
    await bystander.call('events.subscribe', {});
    let bystanderEvents = 0;
    let bystanderGaps = 0;
    bystander.onEvent((e) => {
      bystanderEvents++;
      if (e.type === 'gap') bystanderGaps++;
    });
    const statusLatencies: number[] = [];
    let running = true;
    const poller = (async () => {
      while (running) {
        const t0 = Date.now();
        await bystander.call('daemon.status');
        statusLatencies.push(Date.now() - t0);
        await sleep(50); // about time: the poll interval of a bystander that keeps calling
      }
    })();
    let rssMax = rssBefore;
    const sampler = setInterval(() => {
      try {
        rssMax = Math.max(rssMax, rssMb(pid));
      } catch {
        // process gone: the assertions below will say so
      }
    }, 200);

    // Long paths make every request.started/finished event ~2 KiB, so 2,000 requests produce far more
    // than the 1 MiB a subscriber may have unread.
    const longSeg = 'p'.repeat(2000);
    const t0 = Date.now();
    const [storm, proxied] = await Promise.all([
      mapLimit(
        Array.from({ length: 2000 }, (_, i) => i),
        64,
        (i) => rudeConnection(d.socket, i),
      ),
      mapLimit(
        Array.from({ length: 2000 }, (_, i) => i),
        20,
        async (i) => {
          const s = Date.now();
          const res = await openStream(`https://${ANT}/v1/${longSeg}/${i}`, disp, { headers: { 'x-api-key': phantom } });
          await res.body.text();
          return { status: res.statusCode, ms: Date.now() - s };
        },
      ),
    ]);
    const elapsed = Date.now() - t0;
    running = false;
    await poller;
    clearInterval(sampler);

    // The storm: every status call answered, nothing refused.
    expect(storm.filter((r) => r === 'error')).toEqual([]);
    expect(storm.filter((r) => r === 'ok')).toHaveLength(500);
    // The proxy: all 2,000 went through, none stalled.
    expect(proxied.filter((r) => r.status !== 200)).toEqual([]);
    const lat = proxied.map((r) => r.ms);
    console.log(
      `[bad-input] 2000 requests in ${elapsed} ms under an RPC storm; p50 ${percentile(lat, 50)} ms, p99 ${percentile(lat, 99)} ms, max ${Math.max(...lat)} ms; status calls p99 ${percentile(statusLatencies, 99)} ms; RSS ${rssBefore.toFixed(1)} → max ${rssMax.toFixed(1)} MiB`,
    );
    expect(elapsed).toBeLessThan(90_000);
    expect(Math.max(...lat)).toBeLessThan(10_000);
    // Other clients unaffected.
    expect(statusLatencies.length).toBeGreaterThan(5);
    expect(Math.max(...statusLatencies)).toBeLessThan(3000);
    // (a bystander may itself see a gap if the busy test process lags behind; it must still get the stream)
    expect(bystanderEvents - bystanderGaps).toBeGreaterThan(1000);
    // Memory bounded despite ~8 MiB of events the stuck subscriber never read.
    expect(rssMax).toBeLessThan(300);
    expect(d.proc.exitCode).toBeNull();

    // Now the stuck subscriber reads: it finds a gap (events were dropped, not queued without bound).
    stuck.on('data', (c: Buffer) => stuckChunks.push(c));
    stuck.resume();
    const lines = () => Buffer.concat(stuckChunks).toString('utf8').split('\n').filter(Boolean);
    const gapLine = await waitFor(() => lines().find((l) => l.includes('"type":"gap"')), 'a gap event for the stuck subscriber', 10_000);
    const gapAt = Buffer.concat(stuckChunks).indexOf(gapLine);
    const gap = JSON.parse(gapLine).params as { seq: number; dropped: number };
    expect(gap.dropped).toBeGreaterThan(100);
    // What reached it before the gap is bounded by the per-connection queue (1 MiB) plus socket buffers.
    expect(gapAt).toBeLessThan(6 * 1024 * 1024);
    // The seq numbers before the gap are consecutive and the gap accounts for exactly what was dropped.
    const events = lines()
      .map((l) => JSON.parse(l) as { method?: string; params?: { seq: number; type: string } })
      .filter((m) => m.method && m.params);
    const gi = events.findIndex((m) => m.params!.type === 'gap');
    for (let i = 1; i < gi; i++) expect(events[i]!.params!.seq).toBe(events[i - 1]!.params!.seq + 1);
    if (gi > 0) expect(gap.seq).toBe(events[gi - 1]!.params!.seq + gap.dropped + 1);
    stuck.destroy();
    bystander.close();

    // Healthy afterwards; connections and permits all released.
    const st = await d.client.call('daemon.status');
    expect(st.pid).toBe(pid);
    await waitFor(() => statsAtRest(d.client), 'stats at rest');
    await waitFor(() => fdCount(pid) <= fdsBefore + 16, `fds back near ${fdsBefore} (now ${fdCount(pid)})`, 15_000);
    const after = await d.fetch(`https://${ANT}/v1/after-storm`, { headers: { 'x-api-key': phantom } });
    expect(after.status, after.text).toBe(200);
    expect((await d.client.call('audit.verify')).ok).toBe(true);
  }, 120_000);
});
