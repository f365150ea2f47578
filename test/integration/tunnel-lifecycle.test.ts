/**
 * Tunnels end when their clients end them: a client that opens a CONNECT tunnel and closes it before
 * sending anything (before TLS, or right after the handshake without a request) leaves no descriptor
 * behind in the daemon. Clients do this routinely (connection pools open spare tunnels); a leak here runs
 * the daemon out of descriptors over a day.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { closeWaitTcp } from '../fakes/reliability-helpers.js';
import { waitFor } from './helpers.js';

let d: TestDaemon;
let auth = '';
let port = 0;

beforeAll(async () => {
  d = await startDaemon();
  const u = new URL(d.proxyUrl);
  port = Number(u.port);
  auth = Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64');
});

afterAll(async () => {
  await d?.stop();
});

/** Opens a tunnel to `target` and resolves with the socket once the 200 arrived. */
function openTunnel(target: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: Basic ${auth}\r\n\r\n`));
    s.once('data', (c: Buffer) => (c.toString().startsWith('HTTP/1.1 200') ? resolve(s) : reject(new Error(c.toString()))));
    s.once('error', reject);
  });
}

test('tunnels closed before any byte (named host and IP literal) and after a bare TLS handshake leave nothing in CLOSE_WAIT', async () => {
  const pid = d.proc.pid!;
  for (let i = 0; i < 5; i++) (await openTunnel('api.anthropic.com:443')).end();
  for (let i = 0; i < 5; i++) (await openTunnel('127.0.0.1:443')).end();
  for (let i = 0; i < 5; i++) {
    const raw = await openTunnel('api.anthropic.com:443');
    const t = tls.connect({ socket: raw, servername: 'api.anthropic.com', ca: fs.readFileSync(d.caPath) });
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    t.end();
  }
  await waitFor(() => closeWaitTcp(pid) === 0, 'no daemon socket left in CLOSE_WAIT');
  expect(closeWaitTcp(pid)).toBe(0);
});
