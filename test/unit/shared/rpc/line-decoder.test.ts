/** NDJSON framing: lines split across chunks, oversized lines reported once and skipped. */
import { describe, expect, it } from 'vitest';
import { LineDecoder } from '../../../../src/shared/rpc/line-decoder.js';

function decoder(maxBytes = 1024) {
  const lines: string[] = [];
  let overflows = 0;
  const d = new LineDecoder(
    maxBytes,
    (l) => lines.push(l),
    () => overflows++,
  );
  return { d, lines, overflows: () => overflows };
}

const b = (s: string) => Buffer.from(s, 'utf8');

describe('LineDecoder', () => {
  it('emits each complete line of one chunk without its newline', () => {
    const { d, lines } = decoder();
    d.push(b('{"a":1}\n{"b":2}\n'));
    expect(lines).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('joins a line split across several chunks and holds back an unfinished one', () => {
    const { d, lines } = decoder();
    d.push(b('{"jsonrpc":'));
    d.push(b('"2.0","id"'));
    expect(lines).toEqual([]);
    d.push(b(':1}\n{"next"'));
    expect(lines).toEqual(['{"jsonrpc":"2.0","id":1}']);
    d.push(b(':true}\n'));
    expect(lines).toEqual(['{"jsonrpc":"2.0","id":1}', '{"next":true}']);
  });

  it('decodes a multi-byte character split between chunks', () => {
    const { d, lines } = decoder();
    const whole = b('{"s":"✓"}\n');
    const cut = whole.indexOf(0xe2) + 1;
    d.push(whole.subarray(0, cut));
    d.push(whole.subarray(cut));
    expect(lines).toEqual(['{"s":"✓"}']);
  });

  it('skips blank lines', () => {
    const { d, lines } = decoder();
    d.push(b('\n  \n{"a":1}\n\n'));
    expect(lines).toEqual(['{"a":1}']);
  });

  it('accepts a line of exactly maxBytes', () => {
    const { d, lines, overflows } = decoder(10);
    d.push(b('0123456789\n'));
    expect(lines).toEqual(['0123456789']);
    expect(overflows()).toBe(0);
  });

  it('reports an oversized line once, skips it, and still decodes the lines after it', () => {
    const { d, lines, overflows } = decoder(16);
    d.push(b('{"ok":1}\n'));
    d.push(b('x'.repeat(10)));
    d.push(b('x'.repeat(10)));
    d.push(b('x'.repeat(10)));
    d.push(b('x'.repeat(10) + '\n{"ok":2}\n'));
    d.push(b('{"ok":3}\n'));
    expect(overflows()).toBe(1);
    expect(lines).toEqual(['{"ok":1}', '{"ok":2}', '{"ok":3}']);
  });

  it('reports each oversized line once when two arrive back to back', () => {
    const { d, lines, overflows } = decoder(8);
    d.push(b('y'.repeat(20) + '\n' + 'z'.repeat(20) + '\n{"a":1}\n'));
    expect(overflows()).toBe(2);
    expect(lines).toEqual(['{"a":1}']);
  });

  it('does not let the tail of an oversized line leak into the next line', () => {
    const { d, lines } = decoder(8);
    d.push(b('AAAAAAAAAAAA'));
    d.push(b('TAIL\nok\n'));
    expect(lines).toEqual(['ok']);
  });
});
