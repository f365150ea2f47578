/**
 * Bad input (issue 10) that the per-area suites do not already cover, proxy side: CONNECT to the daemon's
 * own ports and other loopback ports, absurd header sizes (in the CONNECT, in a plain proxy request and
 * inside a TLS tunnel), invalid or missing Host headers. Each is answered (or closed) promptly, never
 * forwarded, never a hang. The RPC storm is in reliability-bad-input-storm.test.ts and the sluicectl
 * argument checks in reliability-bad-input-cli.test.ts (split so no file holds two long groups).
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

/** Opens a CONNECT tunnel (with the token) and sends `inner` in it, over TLS or plain; resolves with what came back. */
function throughTunnel(
  target: string,
  inner: string,
  opts: { tls: boolean; servername?: string; timeoutMs?: number },
): Promise<{ connect: string; text: string; closed: boolean; ms: number }> {
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
  test("CONNECT to the daemon's own port (by IP and by name) → 400 proxy_loop, never a loop", async () => {
    const ports = listeningTcp(d.proc.pid!).map((p) => p.port);
    expect(ports).toEqual([d.proxyPort]); // sluice's own listener: nothing else listens
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
      const abs = await rawProxy(
        d.proxyPort,
        `GET http://127.0.0.1:${port}/loop HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\n\r\n`,
      );
      expect(abs.status, `absolute-form to ${port}`).toBe(400);
      expect(abs.text).toContain('proxy_loop');
    }
    expect((await d.client.call('daemon.status')).pid).toBe(d.proc.pid);
  });

  test('CONNECT to another loopback port is subject to policy: held for approval, never forwarded unapproved, 403 on deny', async () => {
    const from = upstream.seen.length;
    const pending = throughTunnel(
      `127.0.0.1:${upstream.port}`,
      `GET /loopback-other HTTP/1.1\r\nHost: 127.0.0.1:${upstream.port}\r\nConnection: close\r\n\r\n`,
      { tls: true, timeoutMs: 10_000 },
    );
    const ap = await waitFor(
      async () => (await d.client.call('approval.list')).approvals.find((a) => a.host === '127.0.0.1' && a.port === upstream.port),
      'an approval for the loopback port',
    );
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
    const connect = await rawProxy(
      d.proxyPort,
      `CONNECT ${ANT}:443 HTTP/1.1\r\nHost: ${ANT}:443\r\nProxy-Authorization: ${auth}\r\nX-Big: ${big}\r\n\r\n`,
      4000,
    );
    expect(connect.status === 431 || connect.status === 400 || (connect.status === null && connect.closed), `CONNECT: ${connect.text.slice(0, 80)}`).toBe(true);
    const plain = await rawProxy(
      d.proxyPort,
      `GET http://${ANT}/v1/big HTTP/1.1\r\nHost: ${ANT}\r\nProxy-Authorization: ${auth}\r\nX-Big: ${big}\r\n\r\n`,
      4000,
    );
    expect(plain.status === 431 || plain.status === 400 || (plain.status === null && plain.closed), `plain: ${plain.text.slice(0, 80)}`).toBe(true);
    const problems: string[] = [];
    for (const [what, headers] of [
      ['one 100 KiB header', `X-Big: ${big}\r\n`],
      ['3,000 small headers', Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')],
    ] as const) {
      const r = await throughTunnel(`${ANT}:443`, `GET /v1/big-in-tunnel HTTP/1.1\r\nHost: ${ANT}\r\nx-api-key: ${phantom}\r\n${headers}\r\n`, {
        tls: true,
        servername: ANT,
        timeoutMs: 3000,
      });
      const st = statusOf(r.text);
      if (!(st === 431 || st === 400 || (st === 0 && r.closed)))
        problems.push(
          `${what} inside a TLS tunnel: ${r.closed ? 'closed' : 'no answer and not closed'} after ${r.ms} ms, got ${JSON.stringify(r.text.slice(0, 60))}`,
        );
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
      if (!(r.status !== null && r.status >= 400 && r.status < 500))
        problems.push(`plain proxy request, ${what}: ${r.status ?? (r.closed ? 'closed' : 'no answer')} after ${Date.now() - t0} ms`);
    }
    const junk = (await d.client.call('approval.list')).approvals.filter((a) => a.host !== ANT && a.host !== '127.0.0.1');
    if (junk.length > 0) problems.push(`approval prompts were opened for: ${junk.map((a) => `${JSON.stringify(a.host)}:${a.port}`).join(', ')}`);
    for (const a of junk) await d.client.call('approval.resolve', { id: a.id, decision: 'deny' }).catch(() => {});
    expect(upstream.seen.slice(from).filter((s) => /\/v1\/h\d/.test(s.path))).toEqual([]);
    expect((await d.client.call('daemon.status')).pid).toBe(d.proc.pid);
    expect(problems).toEqual([]);
  });
});
