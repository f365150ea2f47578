/** Exchange ids: unique within a run, with a random per-run prefix so runs do not reuse each other's ids. */
import { expect, it } from 'vitest';
import { nextExchangeId } from '../../../../src/daemon/proxy/request-exchange.js';

it('gives a distinct id every time, all under one random 12-hex-digit prefix', () => {
  const ids = Array.from({ length: 10_000 }, () => nextExchangeId());
  expect(new Set(ids).size).toBe(ids.length);
  const prefixes = new Set(ids.map((id) => id.split('-')[0]));
  expect(prefixes.size).toBe(1);
  expect([...prefixes][0]).toMatch(/^[0-9a-f]{12}$/);
});
