/**
 * The few DER (X.690) pieces leaf-certificate minting needs: encoding a TLV from parts, and walking the
 * top-level structure of a certificate to copy the CA's subject and key identifier byte for byte. Not a
 * general ASN.1 library: lengths up to 2^32 − 1, definite form only, which is all DER allows anyway.
 */

/** One encoded type-length-value: `tag`, then the DER length of the parts, then the parts. */
export function tlv(tag: number, ...parts: Buffer[]): Buffer {
  let n = 0;
  for (const p of parts) n += p.length;
  const len = derLength(n);
  return Buffer.concat([Buffer.from([tag]), len, ...parts], 1 + len.length + n);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let x = n; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** DER tags used by certificates. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

/** A decoded TLV's position in its buffer. */
export interface Tlv {
  tag: number;
  /** Offset of the tag byte (the whole element is `buf.subarray(start, end)`). */
  start: number;
  /** Offset of the first value byte. */
  valueStart: number;
  end: number;
}

/** Reads the TLV at `offset`; throws on anything truncated or not in definite form. */
export function readTlv(buf: Buffer, offset: number): Tlv {
  if (offset + 2 > buf.length) throw new Error('DER: truncated element');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new Error('DER: multi-byte tags are not supported');
  let len = buf[offset + 1]!;
  let valueStart = offset + 2;
  if (len & 0x80) {
    const k = len & 0x7f;
    if (k === 0 || k > 4) throw new Error('DER: unsupported length form');
    if (valueStart + k > buf.length) throw new Error('DER: truncated length');
    len = 0;
    for (let i = 0; i < k; i++) len = len * 256 + buf[valueStart + i]!;
    valueStart += k;
  }
  const end = valueStart + len;
  if (end > buf.length) throw new Error('DER: element runs past its buffer');
  return { tag, start: offset, valueStart, end };
}

/** The child elements of a constructed element (a SEQUENCE, SET or explicit tag). */
export function children(buf: Buffer, parent: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let at = parent.valueStart; at < parent.end;) {
    const t = readTlv(buf, at);
    out.push(t);
    at = t.end;
  }
  return out;
}

/** What minting needs from the CA certificate: its subject (the leaves' issuer) and its key identifier. */
export function caFields(certDer: Buffer): { subject: Buffer; keyId: Buffer | null; publicKeyBits: Buffer } {
  const cert = readTlv(certDer, 0);
  const tbs = children(certDer, cert)[0];
  if (!tbs || tbs.tag !== TAG.SEQUENCE) throw new Error('DER: not a certificate');
  const f = children(certDer, tbs);
  // [0] version is optional (absent means v1); subject and key info follow serial, signature, issuer, validity.
  const base = f[0]?.tag === 0xa0 ? 1 : 0;
  const subject = f[base + 4];
  const spki = f[base + 5];
  if (!subject || subject.tag !== TAG.SEQUENCE || !spki || spki.tag !== TAG.SEQUENCE) throw new Error('DER: not a certificate');
  const bits = children(certDer, spki)[1];
  if (!bits || bits.tag !== TAG.BIT_STRING) throw new Error('DER: no public key');
  let keyId: Buffer | null = null;
  const exts = f.find((t) => t.tag === 0xa3);
  if (exts) {
    const list = children(certDer, exts)[0];
    for (const ext of list ? children(certDer, list) : []) {
      const parts = children(certDer, ext);
      const oid = parts[0] ? certDer.subarray(parts[0].valueStart, parts[0].end) : null;
      // 2.5.29.14 subjectKeyIdentifier: OCTET STRING wrapping an OCTET STRING (the identifier).
      if (!oid || !oid.equals(OID_SKI)) continue;
      const wrapped = parts[parts.length - 1]!;
      const inner = readTlv(certDer, wrapped.valueStart);
      if (inner.tag === TAG.OCTET_STRING) keyId = Buffer.from(certDer.subarray(inner.valueStart, inner.end));
    }
  }
  return {
    subject: Buffer.from(certDer.subarray(subject.start, subject.end)),
    keyId,
    // Without the unused-bits byte: what RFC 5280 §4.2.1.2 hashes for a key identifier.
    publicKeyBits: Buffer.from(certDer.subarray(bits.valueStart + 1, bits.end)),
  };
}

const OID_SKI = Buffer.from([0x55, 0x1d, 0x0e]);
