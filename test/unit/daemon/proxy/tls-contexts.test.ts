/** Per-host TLS contexts and leaf certificates stay within their LRU bound; one mint per host at a time. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { LeafCertCache } from '../../../../src/daemon/ca/leaf-certs.js';
import { loadOrCreateRootCa, type RootCa } from '../../../../src/daemon/ca/root-ca.js';
import { TlsContexts } from '../../../../src/daemon/proxy/tls-contexts.js';

let dir = '';
let ca: RootCa;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-ctx-'));
  ca = await loadOrCreateRootCa(dir);
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('TlsContexts', () => {
  test('never holds more hosts than its capacity; neither does the leaf cache behind it', async () => {
    const leafs = new LeafCertCache(ca, 5);
    const contexts = new TlsContexts(leafs, 5);
    for (let i = 0; i < 30; i++) {
      await contexts.get(`h${i}.example`);
      expect(contexts.size).toBeLessThanOrEqual(5);
      expect(leafs.size).toBeLessThanOrEqual(5);
    }
    expect(contexts.size).toBe(5);
  });

  test('concurrent first requests for a host share one context; a cached host returns the same one', async () => {
    const contexts = new TlsContexts(new LeafCertCache(ca, 10), 10);
    const [a, b] = await Promise.all([contexts.get('same.example'), contexts.get('same.example')]);
    expect(a).toBe(b);
    expect(await contexts.get('same.example')).toBe(a);
  });

  test('IP literals get a context too (certificate for the IP)', async () => {
    const leafs = new LeafCertCache(ca, 10);
    await new TlsContexts(leafs, 10).get('127.0.0.9');
    expect((await leafs.get('127.0.0.9')).certPem).toContain('BEGIN CERTIFICATE');
  });
});
