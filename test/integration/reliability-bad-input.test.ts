/**
 * Bad input (issue 10, "Bad input") that the per-area suites do not already cover:
 *  - RPC: thousands of connections opening and closing while a subscriber that never reads sits on the
 *    socket and 2,000 requests go through the proxy. The daemon stays healthy and responsive, other clients
 *    are unaffected, the stuck subscriber is told about the events it lost (a `gap`) instead of growing the
 *    daemon's memory, and no file descriptors leak.
 *  - Proxy: CONNECT to the daemon's own ports and other loopback ports, absurd header sizes (in the CONNECT,
 *    in a plain proxy request and inside a TLS tunnel), invalid or missing Host headers. Each is answered
 *    (or closed) promptly, never forwarded, never a hang.
 *  - CLI: every `sluicectl` command with missing or invalid arguments exits 2 with a one-line reason.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { ProxyAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { connectDaemon, type DaemonClient } from '../../src/shared/rpc/client.js';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startFakeUpstream, type FakeUpstream } from '../fakes/fake-upstream.js';
import { listeningTcp, mapLimit, percentile, rssMb, runCli, statsAtRest } from '../fakes/reliability-helpers.js';
import { basicAuth, fakeSecret, openStream, rawProxy, sleep, tokenOf, waitFor } from './helpers.js';

const ANT = 'api.anthropic.com';

let upstream: FakeUpstream;
let d: TestDaemon;
let phantom = '';
let disp: ProxyAgent;

beforeAll(async () => {
  upstream = await startFakeUpstream({ record: true });
  d = await startDaemon({ upstreamPort: upstream.port });
  await d.client.call('rule.add', { verdict: 'allow', host: ANT });
  phantom = (await d.client.call('cred.add', { name: 'bad-input', hosts: [ANT], header: 'x-api-key', secret: fakeSecret(), max_concurrent: 64 })).phantom;
  disp = d.dispatcher();
});

afterAll(async () => {
  await disp?.destroy().catch(() => {});
  await d?.stop();
  await upstream?.close();
});

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
          setTimeout(() => done('closed'), 200);
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
        await sleep(50);
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
      mapLimit(Array.from({ length: 2000 }, (_, i) => i), 64, (i) => rudeConnection(d.socket, i)),
      mapLimit(Array.from({ length: 2000 }, (_, i) => i), 20, async (i) => {
        const s = Date.now();
        const res = await openStream(`https://${ANT}/v1/${longSeg}/${i}`, disp, { headers: { 'x-api-key': phantom } });
        await res.body.text();
        return { status: res.statusCode, ms: Date.now() - s };
      }),
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
    console.log(`[bad-input] 2000 requests in ${elapsed} ms under an RPC storm; p50 ${percentile(lat, 50)} ms, p99 ${percentile(lat, 99)} ms, max ${Math.max(...lat)} ms; status calls p99 ${percentile(statusLatencies, 99)} ms; RSS ${rssBefore.toFixed(1)} → max ${rssMax.toFixed(1)} MiB`);
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
    expect((await d.fetch(`https://${ANT}/v1/after-storm`, { headers: { 'x-api-key': phantom } })).status).toBe(200);
    expect((await d.client.call('audit.verify')).ok).toBe(true);
  }, 120_000);
});

/** Opens a CONNECT tunnel (with the token) and sends `inner` in it, over TLS or plain; resolves with what came back. */
function throughTunnel(target: string, inner: string, opts: { tls: boolean; servername?: string; timeoutMs?: number }): Promise<{ connect: string; text: string; closed: boolean; ms: number }> {
  const ca = fs.readFileSync(d.caPath, 'utf8');
  const t0 = Date.now();
  return new Promise((resolve) => {
    const s = net.connect(d.proxyPort, '127.0.0.1');
    let head = '';
    let text = '';
    let settled = false;
    const finish = (closed: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ connect: head.split('\r\n')[0] ?? '', text, closed, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => finish(false), opts.timeoutMs ?? 4000);
    const onData = (c: Buffer) => {
      head += c.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      s.off('data', onData);
      if (!/^HTTP\/1\.[01] 200/.test(head)) return finish(true);
      if (!opts.tls) {
        s.on('data', (b: Buffer) => (text += b.toString('latin1')));
        s.on('close', () => finish(true));
        s.write(inner);
        return;
      }
      const t = tls.connect({ socket: s, servername: opts.servername, ca: [ca], rejectUnauthorized: false }, () => t.write(inner));
      t.on('data', (b: Buffer) => {
        text += b.toString('latin1');
        // one full response is enough
        const i = text.indexOf('\r\n\r\n');
        const cl = i === -1 ? null : /\r\ncontent-length:\s*(\d+)/i.exec(text.slice(0, i));
        if (cl && text.length - i - 4 >= Number(cl[1])) finish(false);
      });
      t.on('error', () => finish(true));
      t.on('close', () => finish(true));
    };
    s.on('connect', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\n\r\n`));
    s.on('data', onData);
    s.on('error', () => finish(true));
  });
}

const statusOf = (text: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);

describe('proxy: hostile input', () => {
  test("CONNECT to the daemon's own ports (public and internal, by IP and by name) → 400 proxy_loop, never a loop", async () => {
    const ports = listeningTcp(d.proc.pid!).map((p) => p.port);
    expect(ports).toContain(d.proxyPort);
    expect(ports.length).toBeGreaterThanOrEqual(2); // the public proxy port and the library's internal TLS server
    for (const port of ports) {
      for (const host of ['127.0.0.1', 'localhost']) {
        const req = `GET /loop HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`;
        for (const useTls of [false, true]) {
          const r = await throughTunnel(`${host}:${port}`, req, { tls: useTls, servername: host === 'localhost' ? 'localhost' : undefined });
          const what = `${host}:${port} ${useTls ? 'tls' : 'plain'}`;
          expect(statusOf(r.text), `${what}: ${r.connect} / ${r.text.slice(0, 120)}`).toBe(400);
          expect(r.text, what).toContain('proxy_loop');
        }
      }
      const abs = await rawProxy(d.proxyPort, `GET http://127.0.0.1:${port}/loop HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\n\r\n`);
      expect(abs.status, `absolute-form to ${port}`).toBe(400);
      expect(abs.text).toContain('proxy_loop');
    }
    expect((await d.client.call('daemon.status')).pid).toBe(d.proc.pid);
  });

  test('CONNECT to another loopback port is subject to policy: held for approval, never forwarded unapproved, 403 on deny', async () => {
    const from = upstream.seen.length;
    const pending = throughTunnel(`127.0.0.1:${upstream.port}`, `GET /loopback-other HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\nConnection: close\r\n\r\n`, { tls: true, timeoutMs: 10_000 });
    const ap = await waitFor(async () => (await d.client.call('approval.list')).approvals.find((a) => a.host === '127.0.0.1' && a.port === upstream.port), 'an approval for the loopback port');
    expect(upstream.seen.slice(from)).toEqual([]);
    await d.client.call('approval.resolve', { id: ap.id, decision: 'deny' });
    const r = await pending;
    expect(statusOf(r.text)).toBe(403);
    expect(upstream.seen.slice(from)).toEqual([]);
  });

  test('absurd header sizes (100 KiB) are answered 431/400 or closed promptly — in the CONNECT, in a plain proxy request and inside a TLS tunnel', async () => {
    const from = upstream.seen.length;
    const big = 'x'.repeat(100 * 1024);
    const auth = basicAuth(tokenOf(d));
    const connect = await rawProxy(d.proxyPort, `CONNECT ${ANT}:443 HTTP/1.1\r\nHost: ${ANT}:443\r\nProxy-Authorization: ${auth}\r\nX-Big: ${big}\r\n\r\n`, 4000);
    expect(connect.status === 431 || connect.status === 400 || (connect.status === null && connect.closed), `CONNECT: ${connect.text.slice(0, 80)}`).toBe(true);
    const plain = await rawProxy(d.proxyPort, `GET http://${ANT}/v1/big HTTP/1.1\r\nHost: ${ANT}\r\nProxy-Authorization: ${auth}\r\nX-Big: ${big}\r\n\r\n`, 4000);
    expect(plain.status === 431 || plain.status === 400 || (plain.status === null && plain.closed), `plain: ${plain.text.slice(0, 80)}`).toBe(true);
    const problems: string[] = [];
    for (const [what, headers] of [
      ['one 100 KiB header', `X-Big: ${big}\r\n`],
      ['3,000 small headers', Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')],
    ] as const) {
      const r = await throughTunnel(`${ANT}:443`, `GET /v1/big-in-tunnel HTTP/1.1\r\nHost: ${ANT}\r\nx-api-key: ${phantom}\r\n${headers}\r\n`, { tls: true, servername: ANT, timeoutMs: 3000 });
      const st = statusOf(r.text);
      if (!(st === 431 || st === 400 || (st === 0 && r.closed))) problems.push(`${what} inside a TLS tunnel: ${r.closed ? 'closed' : 'no answer and not closed'} after ${r.ms} ms, got ${JSON.stringify(r.text.slice(0, 60))}`);
    }
    expect(upstream.seen.slice(from)).toEqual([]);
    expect((await d.fetch(`https://${ANT}/v1/after-big`, { headers: { 'x-api-key': phantom } })).status).toBe(200);
    expect(problems).toEqual([]);
  });

  test('invalid, mismatched or missing Host → a prompt 4xx, never forwarded and never an approval prompt', async () => {
    const from = upstream.seen.length;
    const auth = basicAuth(tokenOf(d));
    const problems: string[] = [];
    const tunnelCases: [string, string][] = [
      ['Host of another host than the CONNECT target', `GET /v1/h1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`],
      ['Host with invalid characters', `GET /v1/h2 HTTP/1.1\r\nHost: bad host!!\r\nConnection: close\r\n\r\n`],
      ['no Host at all', `GET /v1/h3 HTTP/1.1\r\nConnection: close\r\n\r\n`],
    ];
    for (const [what, req] of tunnelCases) {
      const r = await throughTunnel(`${ANT}:443`, req, { tls: true, servername: ANT });
      const st = statusOf(r.text);
      if (!(st >= 400 && st < 500)) problems.push(`in a tunnel, ${what}: ${st || 'no status'} after ${r.ms} ms`);
    }
    const plainCases: [string, string][] = [
      ['absolute-form URL with an invalid host', `GET http://bad host!/v1/h4 HTTP/1.1\r\nHost: bad host!\r\nProxy-Authorization: ${auth}\r\n\r\n`],
      ['origin-form with an invalid Host header', `GET /v1/h5 HTTP/1.1\r\nHost: bad host!\r\nProxy-Authorization: ${auth}\r\n\r\n`],
      ['origin-form without a Host header', `GET /v1/h6 HTTP/1.1\r\nProxy-Authorization: ${auth}\r\n\r\n`],
    ];
    for (const [what, req] of plainCases) {
      const t0 = Date.now();
      const r = await rawProxy(d.proxyPort, req, 3000);
      if (!(r.status !== null && r.status >= 400 && r.status < 500)) problems.push(`plain proxy request, ${what}: ${r.status ?? (r.closed ? 'closed' : 'no answer')} after ${Date.now() - t0} ms`);
    }
    const junk = (await d.client.call('approval.list')).approvals.filter((a) => a.host !== ANT && a.host !== '127.0.0.1');
    if (junk.length > 0) problems.push(`approval prompts were opened for: ${junk.map((a) => `${JSON.stringify(a.host)}:${a.port}`).join(', ')}`);
    for (const a of junk) await d.client.call('approval.resolve', { id: a.id, decision: 'deny' }).catch(() => {});
    expect(upstream.seen.slice(from).filter((s) => /\/v1\/h\d/.test(s.path))).toEqual([]);
    expect((await d.client.call('daemon.status')).pid).toBe(d.proc.pid);
    expect(problems).toEqual([]);
  });
});

describe('sluicectl: missing or invalid arguments', () => {
  /** Each invocation must exit 2 with exactly one line on stderr and nothing on stdout. */
  const BAD: string[][] = [
    [],
    ['bogus'],
    ['status', '--timeout', 'abc'],
    ['status', '--socket'],
    ['cred'],
    ['cred', 'add'],
    ['cred', 'add', 'x'],
    ['cred', 'add', 'x', '--host'],
    ['cred', 'add', 'bad name!', '--host', 'a.example'],
    ['cred', 'add', 'x', '--host', 'a.example', '--max-concurrent', 'abc'],
    ['cred', 'add', 'x', '--host', 'a.example', '--max-concurrent', '300'],
    ['cred', 'add', 'x', '--host', 'a.example', '--kind', 'weird'],
    ['cred', 'add', 'x', '--host', 'a.example', '--kind', 'oauth'],
    ['cred', 'add', 'x', '--host', 'a.example', '--format', 'no-placeholder'],
    ['cred', 'add', 'x', '--host', 'a.example', '--header', 'bad header'],
    ['cred', 'add', 'x', '--host', 'a.example'], // no secret on stdin
    ['cred', 'update', 'x'],
    ['cred', 'update', 'x', '--max-concurrent', '1.5'],
    ['cred', 'remove', 'bad!'],
    ['pool'],
    ['pool', 'create'],
    ['pool', 'create', 'p'],
    ['pool', 'create', 'p', '--member'],
    ['pool', 'status', 'bad!'],
    ['pool', 'remove'],
    ['rule'],
    ['rule', 'add', 'allow'],
    ['rule', 'add', 'maybe', 'a.example'],
    ['rule', 'add', 'allow', 'a.example', '--port', '99999'],
    ['rule', 'add', 'allow', 'a.example', '--path', 'nopath'],
    ['rule', 'add', 'allow', 'a.example', '--method', 'GE T'],
    ['rule', 'add', 'allow', 'bad host!'],
    ['rule', 'add', 'allow', 'a.example['],
    ['rule', 'remove', 'abc'],
    ['approval'],
    ['approval', 'allow', ''],
    ['approval', 'deny', 'x', '--next'],
    ['limits', 'set'],
    ['limits', 'set', '--global', 'abc'],
    ['limits', 'set', '--max-concurrent', '3'],
    ['limits', 'set', '--cred', 'x'],
    ['limits', 'set', '--cred', 'x', '--max-concurrent', '999'],
    ['audit'],
    ['audit', 'tail', '-n', '0'],
    ['token', 'rotate', 'extra'],
    ['daemon'],
    ['daemon', 'restart'],
    ['env', '--shell', 'tcsh'],
    ['env', '--shell'],
    ['run', '--'],
    ['rpc'],
    ['rpc', 'daemon.status', '{bad'],
    ['watch', '--type', 'bogus'],
    ['doctor', '--bogus'],
  ];

  test('each exits 2 with a one-line reason on stderr (plain and --json), against a running daemon', async () => {
    // Sanity: the same binary and socket work for a valid command.
    const ok = await runCli(['status'], d.socket);
    expect(ok.code, ok.stderr).toBe(0);
    const before = { creds: await d.client.call('cred.list'), rules: await d.client.call('rule.list'), pools: await d.client.call('pool.list') };
    // every invocation plain; every fourth one also with --json (errors as one JSON line, code usage)
    const results = await mapLimit(BAD, 4, async (args, i) => ({ args, plain: await runCli(args, d.socket), json: i % 4 === 0 ? await runCli(['--json', ...args], d.socket) : null }));
    const problems: string[] = [];
    for (const { args, plain, json } of results) {
      const name = `sluicectl ${args.map((a) => (a === '' || /\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
      const lines = plain.stderr.split('\n').filter((l) => l.length > 0);
      if (plain.code !== 2) problems.push(`${name}: exit ${plain.code} (${plain.stderr.trim().slice(0, 120) || 'no stderr'})`);
      else if (lines.length !== 1 || !lines[0]!.startsWith('sluicectl: ') || lines[0]!.length < 20) problems.push(`${name}: stderr is not one reason line: ${JSON.stringify(plain.stderr)}`);
      else if (plain.stdout !== '') problems.push(`${name}: printed to stdout: ${JSON.stringify(plain.stdout.slice(0, 80))}`);
      if (plain.code === 2 && json) {
        const jl = json.stderr.split('\n').filter((l) => l.length > 0);
        let parsed: { error?: { code?: string; message?: string } } = {};
        try {
          parsed = JSON.parse(jl[0] ?? '');
        } catch {
          // reported below
        }
        // 'usage' for what the CLI catches itself; the daemon's own validation codes for what only it can judge.
        const usageCodes = ['usage', 'invalid_params', 'invalid_glob', 'cap_out_of_range'];
        if (json.code !== 2 || jl.length !== 1 || !usageCodes.includes(parsed.error?.code ?? '') || !parsed.error?.message) problems.push(`${name} --json: exit ${json.code}, stderr ${JSON.stringify(json.stderr.slice(0, 120))}`);
      }
    }
    // nothing changed on the daemon
    expect(await d.client.call('cred.list')).toEqual(before.creds);
    expect(await d.client.call('rule.list')).toEqual(before.rules);
    expect(await d.client.call('pool.list')).toEqual(before.pools);
    expect(problems).toEqual([]);
  }, 90_000);
});
