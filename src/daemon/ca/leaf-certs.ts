/**
 * Per-host leaf certificates for the MITM. All leaves share one EC P-256 key made at startup (kept in
 * memory only), so minting a certificate is one asynchronous ECDSA signature (a few ms, off the event
 * loop) instead of an RSA key generation that blocks it. Certificates are cached per host; concurrent
 * first requests for a host share one signing.
 */
import 'reflect-metadata';
import net from 'node:net';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { Lru } from './lru.js';
import { EC_ALG, randomSerial, type RootCa } from './root-ca.js';

/** PEM certificate and key for one host. */
export interface LeafCert {
  certPem: string;
  keyPem: string;
}

const DAY = 24 * 60 * 60 * 1000;

/** Mints and caches leaf certificates signed by the root CA. */
export class LeafCertCache {
  private readonly cache: Lru<string, Promise<LeafCert>>;
  private leafKeys: Promise<{ pair: CryptoKeyPair; pem: string }>;

  /** `capacity`: how many hosts keep their certificate (least recently used are dropped and re-minted on demand). */
  constructor(
    private readonly ca: RootCa,
    capacity = 1000,
  ) {
    this.cache = new Lru(capacity);
    this.leafKeys = (async () => {
      const pair = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
      const der = await webcrypto.subtle.exportKey('pkcs8', pair.privateKey);
      const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
      return { pair, pem: `-----BEGIN PRIVATE KEY-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END PRIVATE KEY-----\n` };
    })();
  }

  /** Number of hosts with a cached certificate. */
  get size(): number {
    return this.cache.size;
  }

  /** The certificate for `host` (minted on first use). */
  get(host: string): Promise<LeafCert> {
    const key = host.toLowerCase();
    let p = this.cache.get(key);
    if (!p) {
      const made = this.mint(key);
      p = made;
      this.cache.set(key, made);
      made.catch(() => this.cache.deleteIf(key, made));
    }
    return p;
  }

  private async mint(host: string): Promise<LeafCert> {
    const { pair, pem } = await this.leafKeys;
    const now = Date.now();
    const notAfter = Math.min(now + 397 * DAY, this.ca.cert.notAfter.getTime());
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: randomSerial(),
      subject: `CN=${host}`,
      issuer: this.ca.cert.subject,
      notBefore: new Date(now - DAY),
      notAfter: new Date(notAfter),
      signingAlgorithm: EC_ALG,
      publicKey: pair.publicKey,
      signingKey: this.ca.key,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: net.isIP(host) ? 'ip' : 'dns', value: host }]),
        await x509.AuthorityKeyIdentifierExtension.create(this.ca.cert),
      ],
    });
    return { certPem: cert.toString('pem') + '\n' + this.ca.certPem, keyPem: pem };
  }
}
