/**
 * Per-host leaf certificates for the MITM. All leaves share one EC P-256 key made at startup (kept in
 * memory only; see below), and each certificate is encoded here from a fixed template (issuer, key,
 * extensions) plus the host's name, serial and validity, then signed with one synchronous ECDSA signature
 * (~0.1 ms). Building them with @peculiar/x509 took 5–15 ms a host (its ASN.1 schema code, an asynchronous
 * key-identifier hash, a WebCrypto round trip), which was most of the first request to a new host.
 * Certificates are cached per host; concurrent first requests for a host share one.
 *
 * One key for all leaves (what mitmproxy does): the key never leaves the daemon's memory, and whoever could
 * read it there could read the CA key and the vault too, so per-host keys would add key generation to every
 * new host and protect nothing more. The key is new at every start.
 */
import crypto, { webcrypto } from 'node:crypto';
import net from 'node:net';
import { caFields, TAG, tlv } from './der.js';
import { Lru } from './lru.js';
import { EC_ALG, type RootCa } from './root-ca.js';

/** PEM certificate and key for one host. */
export interface LeafCert {
  certPem: string;
  keyPem: string;
}

const DAY = 24 * 60 * 60 * 1000;

/** The parts of every leaf that do not depend on the host. */
interface Template {
  keyPem: string;
  /** The leaf key's SubjectPublicKeyInfo (DER). */
  spki: Buffer;
  /** The CA's subject (DER): every leaf's issuer, byte for byte. */
  issuer: Buffer;
  /** The authorityKeyIdentifier extension (DER), naming the CA's key. */
  aki: Buffer;
  caKey: crypto.KeyObject;
  caNotAfter: number;
  caPem: string;
}

/** Mints and caches leaf certificates signed by the root CA. */
export class LeafCertCache {
  private readonly cache: Lru<string, Promise<LeafCert>>;
  private readonly template: Promise<Template>;

  /** `capacity`: how many hosts keep their certificate (least recently used are dropped and re-minted on demand). */
  constructor(
    private readonly ca: RootCa,
    capacity = 1000,
  ) {
    this.cache = new Lru(capacity);
    this.template = makeTemplate(ca);
    // A failure shows on the first mint; this only keeps it from being reported as unhandled at startup.
    this.template.catch(() => {});
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
      const made = this.template.then((t) => mintLeaf(t, key, Date.now()));
      p = made;
      this.cache.set(key, made);
      made.catch(() => this.cache.deleteIf(key, made));
    }
    return p;
  }
}

async function makeTemplate(ca: RootCa): Promise<Template> {
  const pair = (await webcrypto.subtle.generateKey(EC_ALG, true, ['sign', 'verify'])) as CryptoKeyPair;
  const keyPem = toPem(Buffer.from(await webcrypto.subtle.exportKey('pkcs8', pair.privateKey)), 'PRIVATE KEY');
  const spki = Buffer.from(await webcrypto.subtle.exportKey('spki', pair.publicKey));
  const ca_ = caFields(Buffer.from(ca.cert.rawData));
  // RFC 5280 §4.2.1.2 method 1 when the CA names no identifier of its own (sluice's CAs always do).
  const keyId = ca_.keyId ?? crypto.createHash('sha1').update(ca_.publicKeyBits).digest();
  return {
    keyPem,
    spki,
    issuer: ca_.subject,
    aki: extension(OID.authorityKeyIdentifier, false, tlv(TAG.SEQUENCE, tlv(0x80, keyId))),
    caKey: crypto.KeyObject.from(ca.key),
    caNotAfter: ca.cert.notAfter.getTime(),
    caPem: ca.certPem,
  };
}

/**
 * The leaf certificate for `host` (lower case; an IP literal unbracketed): subject CN and one subjectAltName
 * (dNSName, or iPAddress for an IP literal), valid from a day before `now` for 397 days (never past the CA),
 * serverAuth only, a random 128-bit serial, signed ecdsa-with-SHA256 by the CA.
 */
function mintLeaf(t: Template, host: string, now: number): LeafCert {
  const serial = crypto.randomBytes(16);
  // Positive and without a leading zero byte: a minimal DER INTEGER of exactly 16 bytes.
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const notAfter = Math.min(now + 397 * DAY, t.caNotAfter);
  const ip = net.isIP(host);
  const san = ip ? tlv(0x87, ipBytes(host, ip)) : tlv(0x82, Buffer.from(host, 'ascii'));
  const tbs = tlv(
    TAG.SEQUENCE,
    V3,
    tlv(TAG.INTEGER, serial),
    ECDSA_SHA256,
    t.issuer,
    tlv(TAG.SEQUENCE, derTime(now - DAY), derTime(notAfter)),
    tlv(TAG.SEQUENCE, tlv(TAG.SET, tlv(TAG.SEQUENCE, OID.commonName, tlv(TAG.UTF8_STRING, Buffer.from(host, 'utf8'))))),
    t.spki,
    tlv(0xa3, tlv(TAG.SEQUENCE, BASIC_CONSTRAINTS, KEY_USAGE, EXT_KEY_USAGE, extension(OID.subjectAltName, false, tlv(TAG.SEQUENCE, san)), t.aki)),
  );
  const signature = crypto.sign('sha256', tbs, t.caKey);
  const der = tlv(TAG.SEQUENCE, tbs, ECDSA_SHA256, tlv(TAG.BIT_STRING, Buffer.from([0]), signature));
  return { certPem: toPem(der, 'CERTIFICATE') + '\n' + t.caPem, keyPem: t.keyPem };
}

/** Object identifiers, encoded as DER OBJECT IDENTIFIER elements. */
const OID = {
  ecdsaWithSHA256: oid('2a8648ce3d040302'), // 1.2.840.10045.4.3.2
  commonName: oid('550403'), // 2.5.4.3
  basicConstraints: oid('551d13'), // 2.5.29.19
  keyUsage: oid('551d0f'), // 2.5.29.15
  extKeyUsage: oid('551d25'), // 2.5.29.37
  subjectAltName: oid('551d11'), // 2.5.29.17
  authorityKeyIdentifier: oid('551d23'), // 2.5.29.35
  serverAuth: oid('2b06010505070301'), // 1.3.6.1.5.5.7.3.1
};

function oid(hex: string): Buffer {
  return tlv(TAG.OID, Buffer.from(hex, 'hex'));
}

function extension(id: Buffer, critical: boolean, value: Buffer): Buffer {
  return critical ? tlv(TAG.SEQUENCE, id, CRITICAL, tlv(TAG.OCTET_STRING, value)) : tlv(TAG.SEQUENCE, id, tlv(TAG.OCTET_STRING, value));
}

const CRITICAL = tlv(TAG.BOOLEAN, Buffer.from([0xff]));
/** [0] EXPLICIT INTEGER 2: X.509 v3. */
const V3 = tlv(0xa0, tlv(TAG.INTEGER, Buffer.from([2])));
/** AlgorithmIdentifier ecdsa-with-SHA256 (no parameters, RFC 5758). */
const ECDSA_SHA256 = tlv(TAG.SEQUENCE, OID.ecdsaWithSHA256);
/** Critical: not a CA (cA FALSE is the default, so the SEQUENCE is empty). */
const BASIC_CONSTRAINTS = extension(OID.basicConstraints, true, tlv(TAG.SEQUENCE));
/** Critical: digitalSignature and keyEncipherment (bits 0 and 2; 5 unused bits). */
const KEY_USAGE = extension(OID.keyUsage, true, tlv(TAG.BIT_STRING, Buffer.from([0x05, 0xa0])));
const EXT_KEY_USAGE = extension(OID.extKeyUsage, false, tlv(TAG.SEQUENCE, OID.serverAuth));

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5), to the second, in UTC. */
function derTime(ms: number): Buffer {
  const iso = new Date(Math.floor(ms / 1000) * 1000).toISOString(); // YYYY-MM-DDTHH:MM:SS.000Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '') + 'Z';
  const year = Number(iso.slice(0, 4));
  return year < 2050 ? tlv(TAG.UTC_TIME, Buffer.from(digits.slice(2), 'ascii')) : tlv(TAG.GENERALIZED_TIME, Buffer.from(digits, 'ascii'));
}

/** The 4 or 16 address bytes of an IP literal (`family` from net.isIP). */
function ipBytes(host: string, family: number): Buffer {
  if (family === 4) return Buffer.from(host.split('.').map(Number));
  // An embedded IPv4 tail (::ffff:1.2.3.4) is two 16-bit groups.
  const text = host.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    [(Number(a) << 8) | Number(b), (Number(c) << 8) | Number(d)].map((w) => w.toString(16)).join(':'),
  );
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const [head, rest] = text.split('::') as [string, string | undefined];
  const a = groups(head);
  const b = rest === undefined ? [] : groups(rest);
  const words = rest === undefined ? a : [...a, ...new Array<number>(8 - a.length - b.length).fill(0), ...b];
  if (words.length !== 8 || words.some((w) => !(w >= 0 && w <= 0xffff))) throw new Error(`cannot encode the IP address ${host}`);
  const out = Buffer.alloc(16);
  for (let i = 0; i < 8; i++) out.writeUInt16BE(words[i]!, 2 * i);
  return out;
}

function toPem(der: Buffer, label: string): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}
