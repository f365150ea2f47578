/**
 * The streaming secret masker: every real secret becomes its phantom wherever a stream splits it, the tail
 * is held back only when it may start a secret (and never more than the longest secret − 1 bytes), a
 * chunk with nothing to do comes back as the very same Buffer, and what was masked is reported.
 */
import { describe, expect, it } from 'vitest';
import { SecretMasker, type MaskPair } from '../../../../src/daemon/proxy/secret-masker.js';

const ANT: MaskPair = {
  credential: 'ant',
  secret: 'sk-ant-api03-REALsecretVALUE-0123456789',
  phantom: 'sk-ant-api03-SLUICEphantom00000000000000000000000000000',
};
const OAI: MaskPair = { credential: 'oai', secret: 'sk-proj-REALopenaiKEY-abcdef', phantom: 'sk-proj-SLUICEphantom1111111111' };
const JWT: MaskPair = {
  credential: 'codex',
  secret: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.REALsig_xyz-123',
  phantom: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.SLUICEsig',
};
const PAIRS = [ANT, OAI, JWT];

function streamAll(m: SecretMasker, chunks: Buffer[]): { out: Buffer; found: Set<string>; maxHeld: number } {
  const s = m.stream();
  const parts: Buffer[] = [];
  let maxHeld = 0;
  for (const c of chunks) {
    parts.push(s.write(c));
    maxHeld = Math.max(maxHeld, s.heldBytes);
  }
  const tail = s.end();
  if (tail) parts.push(tail);
  return { out: Buffer.concat(parts), found: s.found, maxHeld };
}

const masked = (text: string): string => PAIRS.reduce((t, p) => t.split(p.secret).join(p.phantom), text);

describe('SecretMasker stream', () => {
  const m = new SecretMasker(PAIRS);
  const text = `data: {"echo":"${ANT.secret}"}\n\nx-key ${OAI.secret}${JWT.secret} tail ${ANT.secret}`;
  const input = Buffer.from(text);

  it('masks a secret split at every position into two chunks', () => {
    for (let i = 0; i <= input.length; i++) {
      const { out, found } = streamAll(m, [input.subarray(0, i), input.subarray(i)]);
      expect(out.toString(), `split at ${i}`).toBe(masked(text));
      expect([...found].sort()).toEqual(['ant', 'codex', 'oai']);
    }
  });

  it('masks when the stream arrives one byte per write, holding at most longest − 1 bytes', () => {
    const chunks = [...input].map((b) => Buffer.from([b]));
    const { out, maxHeld } = streamAll(m, chunks);
    expect(out.toString()).toBe(masked(text));
    for (const p of PAIRS) expect(out.includes(p.secret)).toBe(false);
    expect(maxHeld).toBeLessThanOrEqual(m.maxLen - 1);
    expect(maxHeld).toBeGreaterThan(0);
  });

  it('masks at every split into three chunks around a secret', () => {
    const t = `ab${JWT.secret}cd`;
    const b = Buffer.from(t);
    for (let i = 0; i <= b.length; i++) {
      for (let j = i; j <= b.length; j++) {
        const { out } = streamAll(m, [b.subarray(0, i), b.subarray(i, j), b.subarray(j)]);
        expect(out.toString()).toBe(`ab${JWT.phantom}cd`);
      }
    }
  });

  it('passes a chunk with no secret and no possible prefix through at once as the same Buffer', () => {
    const s = m.stream();
    const ev = Buffer.from('data: {"type":"content_block_delta","delta":{"text":"hello sk"}}\n\n');
    expect(s.write(ev)).toBe(ev);
    expect(s.heldBytes).toBe(0);
    expect(s.end()).toBeNull();
  });

  it('holds back only the tail that may start a secret, and releases it when the next chunk shows it is not one', () => {
    const s = m.stream();
    const a = s.write(Buffer.from('hello sk-pro'));
    expect(a.toString()).toBe('hello ');
    expect(s.heldBytes).toBe('sk-pro'.length);
    const b = s.write(Buffer.from('se is fine.'));
    expect(b.toString()).toBe('sk-prose is fine.');
    expect(s.heldBytes).toBe(0);
  });

  it('end() flushes a held partial prefix unchanged', () => {
    const s = m.stream();
    expect(s.write(Buffer.from('x sk-ant-api03-REAL')).toString()).toBe('x ');
    expect(s.end()!.toString()).toBe('sk-ant-api03-REAL');
  });

  it('a secret that is a prefix of a longer one: the longer one wins even when split right after the shorter', () => {
    const short: MaskPair = { credential: 's', secret: 'ABCDEFGHIJ', phantom: 'P-short' };
    const long: MaskPair = { credential: 'l', secret: 'ABCDEFGHIJKLMNOP', phantom: 'P-long' };
    const mm = new SecretMasker([short, long]);
    const t = Buffer.from('x ABCDEFGHIJKLMNOP y ABCDEFGHIJ z');
    for (let i = 0; i <= t.length; i++) {
      expect(streamAll(mm, [t.subarray(0, i), t.subarray(i)]).out.toString(), `split ${i}`).toBe('x P-long y P-short z');
    }
  });

  it('reports nothing and changes nothing without secrets; short secrets are not masked', () => {
    const none = new SecretMasker([{ credential: 'tiny', secret: 'abc', phantom: 'PHANTOM' }]);
    expect(none.empty).toBe(true);
    const b = Buffer.from('abc abc');
    expect(none.stream().write(b)).toBe(b);
  });
});

describe('SecretMasker whole buffers and header text', () => {
  const m = new SecretMasker(PAIRS);

  it('maskBuffer returns the same Buffer when nothing matched, else a masked copy and the credential', () => {
    const clean = Buffer.from('{"ok":true}');
    expect(m.maskBuffer(clean)).toBe(clean);
    const found = new Set<string>();
    const out = m.maskBuffer(Buffer.from(`{"a":"${OAI.secret}","b":"${OAI.secret}"}`), found);
    expect(out.toString()).toBe(`{"a":"${OAI.phantom}","b":"${OAI.phantom}"}`);
    expect([...found]).toEqual(['oai']);
  });

  it('maskText masks header values (latin1 text of the UTF-8 bytes)', () => {
    const found = new Set<string>();
    const utf: MaskPair = { credential: 'u', secret: 'sëcret-välue-123', phantom: 'sk-SLUICEx' };
    const mu = new SecretMasker([utf, ANT]);
    const header = Buffer.from(`https://evil.example/landing?key=${ANT.secret}&u=${utf.secret}`, 'utf8').toString('latin1');
    const out = mu.maskText(header, found);
    expect(out).toBe(`https://evil.example/landing?key=${ANT.phantom}&u=sk-SLUICEx`);
    expect([...found].sort()).toEqual(['ant', 'u']);
    expect(mu.maskText('plain')).toBe('plain');
  });
});
