/**
 * Per-host memory is bounded. Leaf certificates and TLS contexts live in an LRU (SLUICE_HOST_CACHE_SIZE,
 * default 1,000): a host that fell out is minted again on its next visit, a recent one is kept, and a
 * stream of new host names does not grow the daemon for good (3,000 hosts once took it from 78 MB to
 * 239 MB). Only TLS handshakes are needed (the certificate is minted for the CONNECT/SNI name), so nothing
 * goes upstream and each host costs a few milliseconds.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { startDaemon, type TestDaemon } from '../fakes/daemon-harness.js';
import { basicAuth, tokenOf } from './helpers.js';

const CAPACITY = 40;
let d: TestDaemon;
let ca: Buffer;

beforeAll(async () => {
  d = await startDaemon({ env: { SLUICE_HOST_CACHE_SIZE: String(CAPACITY) } });
  ca = fs.readFileSync(d.caPath);
});

afterAll(async () => {
  await d?.stop();
});

/** CONNECT + TLS handshake to `host` through the proxy; resolves with the serial of the leaf it was given. */
function leafSerial(host: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const raw = net.connect(d.proxyPort, '127.0.0.1', () =>
      raw.write(`CONNECT ${host}:443 HTTP/1.1\r\nHost: ${host}:443\r\nProxy-Authorization: ${basicAuth(tokenOf(d))}\r\n\r\n`),
    );
    const timer = setTimeout(() => {
      raw.destroy();
      reject(new Error(`handshake to ${host} timed out`));
    }, 10_000);
    raw.once('error', reject);
    raw.once('data', (c: Buffer) => {
      if (!c.toString().startsWith('HTTP/1.1 200')) return reject(new Error(c.toString()));
      const t = tls.connect({ socket: raw, servername: host, ca });
      t.once('secureConnect', () => {
        clearTimeout(timer);
        const serial = t.getPeerCertificate().serialNumber;
        t.destroy();
        resolve(serial);
      });
      t.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
  });
}

const host = (prefix: string, i: number) => `${prefix}${i}.cache.test`;

test(`with SLUICE_HOST_CACHE_SIZE=${CAPACITY}: a host pushed out by ${CAPACITY} newer ones gets a new certificate, a recent one keeps its own`, async () => {
  const first = new Map<string, string>();
  for (let i = 0; i < CAPACITY; i++) first.set(host('a', i), await leafSerial(host('a', i)));
  // Within capacity: the same certificate again (cached, not re-minted).
  expect(await leafSerial(host('a', 5))).toBe(first.get(host('a', 5)));
  const newer: string[] = [];
  for (let i = 0; i < CAPACITY; i++) newer.push(await leafSerial(host('b', i)));
  expect(await leafSerial(host('b', CAPACITY - 1))).toBe(newer[CAPACITY - 1]);
  // a0 was the least recently used when the newer hosts came: it fell out and is minted again.
  expect(await leafSerial(host('a', 0))).not.toBe(first.get(host('a', 0)));
});
