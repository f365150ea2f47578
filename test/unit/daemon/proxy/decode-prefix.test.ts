import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { decodePrefix } from '../../../../src/daemon/proxy/content-coding.js';

// Incompressible filler, so that half of the compressed bytes holds about half of the text in every coding.
const text = JSON.stringify({ error: { type: 'insufficient_quota', message: 'You exceeded your current quota.', trace: randomBytes(6000).toString('hex') } });

describe('decodePrefix (classifying a peeked, possibly cut, compressed error body)', () => {
  const codings = {
    gzip: zlib.gzipSync(text),
    deflate: zlib.deflateSync(text),
    'deflate-raw': zlib.deflateRawSync(text),
    br: zlib.brotliCompressSync(text),
  } as const;
  for (const [name, whole] of Object.entries(codings)) {
    const coding = name === 'deflate-raw' ? 'deflate' : (name as 'gzip' | 'deflate' | 'br');
    it(`${name}: the whole body decodes; its first part decodes to a prefix of the text`, () => {
      expect(decodePrefix(whole, coding, 1 << 20)?.toString()).toBe(text);
      const cut = decodePrefix(whole.subarray(0, Math.ceil(whole.length / 2)), coding, 1 << 20)!.toString();
      expect(cut.length).toBeGreaterThan(20);
      expect(text.startsWith(cut)).toBe(true);
      expect(cut).toContain('insufficient_quota');
    });
  }
  it('answers null past the output limit (a bomb is not inflated; the answer stays unclassified) and for bytes that are not that coding', () => {
    expect(decodePrefix(codings.gzip, 'gzip', 100)).toBeNull();
    expect(decodePrefix(Buffer.from('not gzip at all'), 'gzip', 1 << 20)).toBeNull();
  });
});
