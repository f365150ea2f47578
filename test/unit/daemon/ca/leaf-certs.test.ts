/**
 * Leaf certificates minted from the hand-encoded template: what a TLS client checks (chain, name, IP SAN,
 * validity, serverAuth), a real handshake with a client that trusts only the sluice CA, and the speed that
 * is the point of not using @peculiar/x509 per host.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LeafCertCache } from '../../../../src/daemon/ca/leaf-certs.js';
import { loadOrCreateRootCa, type RootCa } from '../../../../src/daemon/ca/root-ca.js';

let dir: string;
let ca: RootCa;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-leaf-'));
  ca = await loadOrCreateRootCa(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function leafOf(pem: string): crypto.X509Certificate {
  return new crypto.X509Certificate(pem.split('-----END CERTIFICATE-----')[0] + '-----END CERTIFICATE-----\n');
}

describe('LeafCertCache', () => {
  test('a named host: signed by the CA, its name in CN and SAN, serverAuth, valid now, at most 397 days', async () => {
    const leafs = new LeafCertCache(ca, 10);
    const { certPem, keyPem } = await leafs.get('api.anthropic.com');
    const leaf = leafOf(certPem);
    const root = new crypto.X509Certificate(ca.certPem);
    expect(leaf.verify(root.publicKey)).toBe(true);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.issuer).toBe(root.subject);
    expect(leaf.subject).toBe('CN=api.anthropic.com');
    expect(leaf.subjectAltName).toBe('DNS:api.anthropic.com');
    expect(leaf.checkHost('api.anthropic.com')).toBe('api.anthropic.com');
    expect(leaf.checkHost('evil.example')).toBeUndefined();
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    expect(from).toBeLessThan(Date.now());
    expect(to).toBeGreaterThan(Date.now());
    expect(to - from).toBeLessThanOrEqual(398 * 24 * 3600 * 1000);
    // The key that comes with it is the certificate's own.
    expect(leaf.checkPrivateKey(crypto.createPrivateKey(keyPem))).toBe(true);
    // The chain ends with the CA, so clients that want it get it.
    expect(certPem).toContain(ca.certPem.trim());
  });

  test('IP literals get an iPAddress SAN (IPv4, IPv6, IPv6 with an IPv4 tail)', async () => {
    const leafs = new LeafCertCache(ca, 10);
    const cases: Array<[string, string]> = [
      ['127.0.0.1', 'IP Address:127.0.0.1'],
      ['::1', 'IP Address:0:0:0:0:0:0:0:1'],
      ['2001:db8::ffff:1.2.3.4', 'IP Address:2001:DB8:0:0:0:FFFF:102:304'],
      ['fe80::a:b', 'IP Address:FE80:0:0:0:0:0:A:B'],
    ];
    for (const [host, san] of cases) {
      const leaf = leafOf((await leafs.get(host)).certPem);
      expect(leaf.subjectAltName?.toUpperCase()).toBe(san.toUpperCase());
      expect(leaf.checkIP(host)).toBe(host);
    }
  });

  test('serials differ, every leaf shares the one key, and a host is minted once', async () => {
    const leafs = new LeafCertCache(ca, 10);
    const [a, b, a2] = await Promise.all([leafs.get('a.example'), leafs.get('b.example'), leafs.get('A.example')]);
    expect(a2).toBe(a);
    expect(leafOf(a.certPem).serialNumber).not.toBe(leafOf(b.certPem).serialNumber);
    expect(a.keyPem).toBe(b.keyPem);
    expect(leafs.size).toBe(2);
  });

  test('a client trusting only the sluice CA completes a handshake and checks the name', async () => {
    const leafs = new LeafCertCache(ca, 10);
    const { certPem, keyPem } = await leafs.get('chatgpt.com');
    const server = tls.createServer({ key: keyPem, cert: certPem }, (s) => s.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as import('node:net').AddressInfo).port;
    try {
      const connect = (servername: string) =>
        new Promise<string>((resolve, reject) => {
          const c = tls.connect({ host: '127.0.0.1', port, servername, ca: [ca.certPem] }, () => {
            c.once('data', (d: Buffer) => resolve(d.toString()));
          });
          c.once('error', reject);
        });
      expect(await connect('chatgpt.com')).toBe('ok');
      await expect(connect('other.example')).rejects.toThrow(/does not match|altnames/i);
    } finally {
      server.close();
    }
  });

  test('minting is fast: 50 new hosts in well under a second (was 5–15 ms each)', async () => {
    const leafs = new LeafCertCache(ca, 100);
    await leafs.get('warm.example');
    const t0 = performance.now();
    for (let i = 0; i < 50; i++) await leafs.get(`h${i}.example`);
    // Generous for a busy two-core machine; the old @peculiar/x509 path took 250–750 ms here.
    expect(performance.now() - t0).toBeLessThan(200);
  });
});
