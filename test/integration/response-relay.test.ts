/**
 * How sluice relays an upstream response to the client (relay-response.ts): backpressure from a slow client
 * reaches the upstream instead of piling up in the daemon, hop-by-hop headers stay on their hop, a
 * response's headers reach the client before a slow body does, and bodiless or already-complete responses
 * (sent in one go) arrive whole on a connection that stays usable.
 */
import { request } from 'undici';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { startHttpsUpstream } from '../fakes/fake-upstream.js';
import type { LoopbackServer } from '../fakes/loopback-server.js';
import { waitFor, within } from '../fakes/wait-for.js';

const BIG = 48 * 1024 * 1024;
const CHUNK = Buffer.alloc(64 * 1024, 'x');
let upstream: LoopbackServer;
let d: TestDaemon;
/** Bytes the upstream has handed to its socket for /big (it waits for 'drain' like any well-behaved server). */
let bigWritten = 0;
let releaseLate: () => void = () => {};

beforeAll(async () => {
  upstream = await startHttpsUpstream((req, res) => {
    req.resume();
    if (req.url === '/big') {
      bigWritten = 0;
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': BIG });
      const pump = (): void => {
        while (bigWritten < BIG) {
          bigWritten += CHUNK.length;
          if (!res.write(CHUNK)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (req.url === '/hop') {
      res.writeHead(200, {
        'content-type': 'application/json',
        connection: 'keep-alive, x-hop-private',
        'keep-alive': 'timeout=77',
        'x-hop-private': 'for sluice only',
        'public-key-pins': 'pin-sha256="AAAA"; max-age=10',
        'x-end-to-end': 'kept',
      });
      return void res.end('{"ok":true}');
    }
    if (req.url === '/nobody') {
      // HEAD keeps the GET's length; 204 and 304 carry no body at all.
      const status = Number(req.headers['x-want-status'] ?? 200);
      res.writeHead(status, status === 200 ? { 'content-type': 'application/json', 'content-length': 1234 } : { etag: '"v1"' });
      return void res.end();
    }
    if (req.url?.startsWith('/chunks')) {
      // A complete body in several chunks of one chunked response.
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 5; i++) res.write(`part${i};`);
      return void res.end();
    }
    if (req.url === '/late') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.flushHeaders();
      releaseLate = () => res.end('data: late\n\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  d = await startDaemon({ env: { SLUICE_RESOLVE: `api.anthropic.com:443:127.0.0.1:${upstream.port}` } });
  await d.client.call('rule.add', { verdict: 'allow', host: 'api.anthropic.com' });
});

afterAll(async () => {
  releaseLate();
  await d?.stop();
  await upstream?.close();
});

test('a client that stops reading stalls the upstream (no buffering of the whole body in the daemon); every byte arrives once it reads again', async () => {
  const disp = d.dispatcher();
  try {
    const res = await request('https://api.anthropic.com/big', { dispatcher: disp, highWaterMark: 64 * 1024 });
    expect(res.statusCode).toBe(200);
    // Read nothing: with backpressure the upstream soon waits for 'drain'. Wait until its byte count has
    // not moved for 500 ms (stalled) or it wrote everything (no backpressure), then judge which it was.
    let prev = -1;
    let still = 0;
    await waitFor(
      () => {
        if (bigWritten === prev) still++;
        else [prev, still] = [bigWritten, 0];
        return still >= 5 || bigWritten >= BIG;
      },
      { what: 'the upstream to stall (or to finish writing)', timeoutMs: 20_000, intervalMs: 100 },
    );
    const stalledAt = bigWritten;
    // Socket buffers on three hops and the daemon's stream buffers hold a few MB at most; without
    // backpressure the daemon would have read all 48 MB by now.
    expect(stalledAt).toBeLessThan(BIG / 3);
    let got = 0;
    for await (const c of res.body) got += (c as Buffer).length;
    expect(got).toBe(BIG);
    expect(bigWritten).toBe(BIG);
  } finally {
    await disp.close().catch(() => {});
  }
});

test('hop-by-hop response headers (and those Connection names) stay on the upstream hop; end-to-end ones pass', async () => {
  const r = await d.fetch('https://api.anthropic.com/hop');
  expect(r.status).toBe(200);
  expect(r.headers['x-end-to-end']).toBe('kept');
  expect(r.headers['x-hop-private']).toBeUndefined();
  expect(r.headers['keep-alive']).not.toBe('timeout=77'); // Node adds its own for the client's hop
  expect(r.headers['public-key-pins']).toBeUndefined();
  expect(JSON.parse(r.text)).toEqual({ ok: true });
});

test('response headers reach the client while the upstream still withholds the body', async () => {
  const disp = d.dispatcher();
  try {
    const headers = request('https://api.anthropic.com/late', { dispatcher: disp });
    // The body is only released after the client has seen the headers; a proxy that waits for the first
    // body chunk before sending headers never gets there.
    // A deadline, not a wait: a proxy that holds the headers never delivers them.
    const first = await within(headers, 5000, 'the response headers').catch(() => null);
    expect(first, 'headers did not arrive while the body was withheld').not.toBeNull();
    expect(first!.statusCode).toBe(200);
    releaseLate();
    expect(await first!.body.text()).toBe('data: late\n\n');
  } finally {
    await disp.close().catch(() => {});
  }
});

test('HEAD, 204 and 304 answers (no body) and complete chunked bodies arrive whole, and the connections stay usable', async () => {
  const disp = d.dispatcher();
  try {
    for (let round = 0; round < 3; round++) {
      const head = await request('https://api.anthropic.com/nobody', { method: 'HEAD', dispatcher: disp });
      expect(head.statusCode).toBe(200);
      expect(head.headers['content-length']).toBe('1234');
      expect(await head.body.text()).toBe('');
      for (const status of [204, 304]) {
        const r = await request('https://api.anthropic.com/nobody', { headers: { 'x-want-status': String(status) }, dispatcher: disp });
        expect(r.statusCode).toBe(status);
        expect(r.headers.etag).toBe('"v1"');
        expect(await r.body.text()).toBe('');
      }
      const chunks = await request(`https://api.anthropic.com/chunks/${round}`, { dispatcher: disp });
      expect(chunks.statusCode).toBe(200);
      expect(await chunks.body.text()).toBe('part0;part1;part2;part3;part4;');
    }
    // Every exchange finished cleanly (no permit left held, no client_aborted rows).
    await expect.poll(async () => ((await d.client.call('daemon.status', {})) as { counts: { in_flight: number } }).counts.in_flight).toBe(0);
    const rows = ((await d.client.call('audit.tail', { n: 40 })) as { rows: { path: string | null; detail: string | null }[] }).rows.filter(
      (r) => r.path === '/nobody' || r.path?.startsWith('/chunks'),
    );
    expect(rows).toHaveLength(12);
    expect(rows.every((r) => r.detail === 'completed')).toBe(true);
  } finally {
    await disp.close().catch(() => {});
  }
});
