/** Reading request bodies for inspection: whole, bounded (fail closed past the limit), aborted. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { hasBody, peekBody, readBody } from '../../../../src/daemon/proxy/request-body.js';

function body(headers: Record<string, string> = {}): PassThrough & { headers: Record<string, string> } {
  return Object.assign(new PassThrough(), { headers });
}

describe('readBody', () => {
  it('resolves with every chunk, in order', async () => {
    const s = body();
    const p = readBody(s, 100);
    s.write('{"a":');
    s.write('1,"b":');
    s.end('2}');
    expect((await p).toString()).toBe('{"a":1,"b":2}');
  });

  it('resolves with an empty body when the stream ends at once', async () => {
    const s = body();
    const p = readBody(s, 100);
    s.end();
    expect(await p).toEqual(Buffer.alloc(0));
  });

  it('refuses a declared length over the limit without reading anything', async () => {
    const s = body({ 'content-length': '101' });
    expect(await readBody(s, 100)).toBe('too_large');
    expect(s.readableFlowing).toBeNull();
  });

  it('refuses once streamed bytes pass the limit (no declared length) and stops reading', async () => {
    const s = body({ 'transfer-encoding': 'chunked' });
    const p = readBody(s, 10);
    s.write(Buffer.alloc(6));
    s.write(Buffer.alloc(6));
    expect(await p).toBe('too_large');
    expect(s.isPaused()).toBe(true);
  });

  it('accepts a body of exactly the limit', async () => {
    const s = body();
    const p = readBody(s, 10);
    s.end(Buffer.alloc(10, 'x'));
    expect((await p).toString()).toBe('x'.repeat(10));
  });

  it('reports a stream that breaks off before its end as aborted', async () => {
    const s = body();
    const p = readBody(s, 100);
    s.write('par');
    s.destroy();
    expect(await p).toBe('aborted');
  });
});

describe('peekBody', () => {
  it('reads about `limit` bytes, leaves the rest unread and removes its listeners', async () => {
    const s = body();
    s.write(Buffer.alloc(8, 'a'));
    s.write(Buffer.alloc(8, 'b'));
    const p = await peekBody(s, 8);
    expect(p).not.toBe('aborted');
    expect((p as { head: Buffer; complete: boolean }).complete).toBe(false);
    expect(s.listenerCount('data')).toBe(0);
    expect(s.listenerCount('end')).toBe(0);
  });
});

describe('hasBody', () => {
  it('is true for a positive content-length or any transfer-encoding', () => {
    expect(hasBody(body({ 'content-length': '3' }) as never)).toBe(true);
    expect(hasBody(body({ 'content-length': '0' }) as never)).toBe(false);
    expect(hasBody(body({ 'transfer-encoding': 'chunked' }) as never)).toBe(true);
    expect(hasBody(body() as never)).toBe(false);
  });
});
