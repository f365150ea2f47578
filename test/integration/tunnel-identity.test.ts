/**
 * Tunnels are identified by their socket object, never by port numbers. With a table keyed by
 * `remotePort:localPort`, a client without the proxy token that binds another loopback address (127.0.0.2)
 * to the same source port as an authenticated tunnel had its plain `GET http://…` accepted as that tunnel:
 * 200, forwarded, and audited under the other client. It must get 407 and reach nothing.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { shortTempDir, startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { basicAuth, tokenOf, waitFor } from './helpers.js';

let d: TestDaemon;
let plain: http.Server;
let plainPort = 0;
const seen: string[] = [];

beforeAll(async () => {
  plain = http.createServer((req, res) => {
    seen.push(req.url ?? '');
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('upstream reached');
  });
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  plainPort = (plain.address() as net.AddressInfo).port;
  d = await startDaemon();
  await d.client.call('rule.add', { verdict: 'allow', host: '127.0.0.*' });
});

afterAll(async () => {
  await d?.stop();
  plain?.closeAllConnections();
  await new Promise((r) => plain?.close(r));
});

/** Collects what `s` receives; `until` waits (bounded) for a pattern or the close. */
function recorder(s: net.Socket): { text: () => string; closed: () => boolean; until: (re: RegExp, what: string) => Promise<void> } {
  let text = '';
  let closed = false;
  s.on('data', (c: Buffer) => (text += c.toString('latin1')));
  s.on('close', () => (closed = true));
  s.on('error', () => {});
  return {
    text: () => text,
    closed: () => closed,
    until: async (re, what) => {
      await waitFor(() => re.test(text) || closed, what, 10_000);
    },
  };
}

test('a tokenless client on 127.0.0.2 with the source port of an authenticated tunnel gets 407, not that tunnel', async () => {
  // The authenticated client: a CONNECT tunnel (plain HTTP target) that stays open.
  const victim = net.connect({ port: d.proxyPort, host: '127.0.0.1', localAddress: '127.0.0.1' });
  const v = recorder(victim);
  await new Promise<void>((r) => victim.once('connect', () => r()));
  try {
    victim.write(`CONNECT 127.0.0.1:${plainPort} HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\n\r\n`);
    await v.until(/^HTTP\/1\.1 200/, 'the CONNECT answer');
    expect(v.text()).toMatch(/^HTTP\/1\.1 200/);
    // The attacker: same source port, another loopback address, no token, a plain absolute-form request.
    const attacker = net.connect({ port: d.proxyPort, host: '127.0.0.1', localAddress: '127.0.0.2', localPort: victim.localPort! });
    const a = recorder(attacker);
    await new Promise<void>((resolve, reject) => {
      attacker.once('connect', () => resolve());
      attacker.once('error', reject);
    });
    try {
      expect(attacker.localPort).toBe(victim.localPort);
      attacker.write(`GET http://127.0.0.1:${plainPort}/stolen HTTP/1.1\r\nHost: 127.0.0.1:${plainPort}\r\n\r\n`);
      await a.until(/^HTTP\/1\.1 \d{3}/, 'an answer to the tokenless request');
      expect(a.text().slice(0, 40)).toMatch(/^HTTP\/1\.1 407/);
      expect(seen).not.toContain('/stolen');
    } finally {
      attacker.destroy();
    }
    const rows = (await d.client.call('audit.tail', { n: 20 })).rows;
    expect(rows.filter((r) => r.path === '/stolen' && r.status === 200)).toEqual([]);
    expect(rows.some((r) => r.event === 'proxy_auth_failed' && r.path === '/stolen' && r.client?.startsWith('127.0.0.2:'))).toBe(true);
  } finally {
    victim.destroy();
  }
});

test('nothing of the old library is left in the state directory: ca/mitm-internal (an unused CA key, mode 0644) is removed at start', async () => {
  const home = shortTempDir();
  fs.chmodSync(home, 0o700);
  const keys = path.join(home, 'ca', 'mitm-internal', 'keys');
  fs.mkdirSync(keys, { recursive: true, mode: 0o700 });
  fs.writeFileSync(path.join(keys, 'ca.private.key'), 'not a real key', { mode: 0o644 });
  const other = await startDaemon({ home });
  try {
    expect(fs.existsSync(path.join(home, 'ca', 'mitm-internal'))).toBe(false);
    expect(fs.existsSync(path.join(home, 'ca', 'ca.pem'))).toBe(true);
  } finally {
    await other.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
});
