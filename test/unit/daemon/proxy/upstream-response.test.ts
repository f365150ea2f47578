import { expect, test } from 'vitest';
import { headersFromRaw, UpstreamResponse } from '../../../../src/daemon/proxy/upstream-response.js';

const raw = (...pairs: string[]): Buffer[] => pairs.map((p) => Buffer.from(p, 'latin1'));

test('headers come out in Node shape: lower-case names, set-cookie a list, repeats joined, first-only headers keep the first', () => {
  const h = headersFromRaw(
    raw(
      'Content-Type',
      'application/json',
      'Set-Cookie',
      'a=1',
      'X-Thing',
      'one',
      'set-cookie',
      'b=2',
      'x-thing',
      'two',
      'Location',
      'https://good.example/',
      'location',
      'https://evil.example/',
      'Content-Length',
      '5',
      'content-length',
      '500',
    ),
  );
  expect(h).toEqual({
    'content-type': 'application/json',
    'set-cookie': ['a=1', 'b=2'],
    'x-thing': 'one, two',
    location: 'https://good.example/',
    'content-length': '5',
  });
});

test('header bytes are read as latin1 (as Node reads them), not as UTF-8', () => {
  const h = headersFromRaw([Buffer.from('x-name'), Buffer.from([0x63, 0x61, 0x66, 0xe9])]);
  expect(h['x-name']).toBe('caf\u00e9');
});

test('destroying an unfinished response aborts the upstream request; a complete one does not', () => {
  const aborted: Error[] = [];
  const open = new UpstreamResponse(
    200,
    'OK',
    {},
    () => {},
    (e) => aborted.push(e),
  );
  open.on('error', () => {});
  open.destroy();
  expect(aborted).toHaveLength(1);
  const done = new UpstreamResponse(
    200,
    'OK',
    {},
    () => {},
    (e) => aborted.push(e),
  );
  done.complete = true;
  done.destroy();
  expect(aborted).toHaveLength(1);
});

test('a full buffer pauses the upstream (push is false) and reading it asks the parser to resume', async () => {
  let resumed = 0;
  const r = new UpstreamResponse(
    200,
    'OK',
    {},
    () => resumed++,
    () => {},
  );
  // Over the 16 KiB high-water mark: the client would pause its parser here.
  expect(r.push(Buffer.alloc(64 * 1024, 1))).toBe(false);
  expect(resumed).toBe(0);
  const first = await new Promise<Buffer>((resolve) => r.once('data', resolve));
  expect(first.length).toBe(64 * 1024);
  await new Promise((resolve) => setImmediate(resolve));
  expect(resumed).toBeGreaterThan(0);
  r.push(null);
});
