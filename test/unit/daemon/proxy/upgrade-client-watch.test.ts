/**
 * The watch on a WebSocket upgrade's client socket (upgrade-client-watch.ts), on real loopback TCP sockets:
 * it notices a close and a half-close while nobody else reads the socket, and hands back every byte it read
 * in order, after which a later reader (ws) gets the rest with nothing lost.
 */
import net from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { watchUpgradeClient } from '../../../../src/daemon/proxy/upgrade-client-watch.js';
import { waitFor } from '../../../fakes/wait-for.js';

const open: net.Socket[] = [];
const servers: net.Server[] = [];

afterEach(async () => {
  for (const s of open.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A connected pair: `server` is the accepted side, as Node hands an upgrade's socket over (nobody reading). */
async function pair(): Promise<{ client: net.Socket; server: net.Socket }> {
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => srv.once('connection', r));
  const client = net.connect((srv.address() as net.AddressInfo).port, '127.0.0.1');
  client.on('error', () => {});
  const server = await accepted;
  server.on('error', () => {});
  open.push(client, server);
  return { client, server };
}

/** Everything `s` delivers to a 'data' reader until `n` bytes arrived. */
function collect(s: net.Socket, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  return new Promise((resolve) => {
    s.on('data', (c: Buffer) => {
      chunks.push(c);
      size += c.length;
      if (size >= n) resolve(Buffer.concat(chunks));
    });
  });
}

test('a client that closes while watched: the socket closes (nobody else reading it)', async () => {
  const { client, server } = await pair();
  const w = watchUpgradeClient(server);
  let closed = false;
  server.once('close', () => (closed = true));
  client.destroy();
  await waitFor(() => closed, { what: 'close noticed', timeoutMs: 5000 });
  expect(w.release(Buffer.from('h')).toString()).toBe('h');
});

test('a client that half-closes while watched: the socket is destroyed (a client that stopped sending is gone)', async () => {
  const { client, server } = await pair();
  watchUpgradeClient(server);
  let closed = false;
  server.once('close', () => (closed = true));
  client.end();
  await waitFor(() => closed, { what: 'half-close noticed', timeoutMs: 5000 });
});

test('without the watch, a paused-over socket does not notice a half-close (what the watch is for)', async () => {
  const { client, server } = await pair();
  let ended = false;
  server.once('end', () => (ended = true));
  client.end();
  // The watched twin above sees it within a few ms; give this one a round trip it cannot use.
  const { client: c2, server: s2 } = await pair();
  watchUpgradeClient(s2);
  let closed2 = false;
  s2.once('close', () => (closed2 = true));
  c2.end();
  await waitFor(() => closed2, { what: 'the watched twin notices', timeoutMs: 5000 });
  expect(ended).toBe(false);
});

test('bytes read while watching come back after the head, in order; a later reader gets the rest', async () => {
  const { client, server } = await pair();
  const w = watchUpgradeClient(server);
  client.write('one-');
  client.write('two-');
  await waitFor(() => server.bytesRead >= 8, { what: 'the bytes read by the watch', timeoutMs: 5000 });
  const heads = w.release(Buffer.from('head-'));
  expect(heads.toString()).toBe('head-one-two-');
  // As ws does: the head goes back in front, then a 'data' reader.
  server.unshift(heads);
  const got = collect(server, 'head-one-two-three'.length);
  client.write('three');
  expect((await got).toString()).toBe('head-one-two-three');
  // Released: a half-close no longer destroys the socket (the next owner decides).
  expect(w.release(Buffer.from('x')).toString()).toBe('x');
});

test('past its bound the watch stops reading; nothing is lost, the rest stays in the socket', async () => {
  const { client, server } = await pair();
  const w = watchUpgradeClient(server, 4);
  const sent = Buffer.alloc(200_000, 'a');
  sent.write('START', 0);
  sent.write('END', sent.length - 3);
  client.write(sent);
  await waitFor(() => server.bytesRead >= 4, { what: 'some bytes read', timeoutMs: 5000 });
  const heads = w.release(Buffer.alloc(0));
  expect(heads.length).toBeGreaterThanOrEqual(4);
  expect(heads.length).toBeLessThan(sent.length);
  server.unshift(heads);
  const got = await collect(server, sent.length);
  expect(got.equals(sent)).toBe(true);
});
