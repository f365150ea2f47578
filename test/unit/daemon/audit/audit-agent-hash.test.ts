/** The agent column (migration 0007) in the audit chain: hashed when set, invisible to rows without one. */
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FIELDS, GENESIS, keyedHash, keyedValuesHash, legacyHash, type RowFields } from '../../../../src/daemon/audit/audit-hash.js';

const key = crypto.randomBytes(32);
const row: RowFields = {
  ts: '2026-12-02T00:00:00.000Z',
  event: 'request',
  client: null,
  host: 'api.anthropic.com',
  port: 443,
  method: 'GET',
  path: '/v1/models',
  verdict: 'allow',
  rule_id: 1,
  credential: 'ant',
  status: 200,
  bytes: 12,
  duration_ms: 3.5,
  detail: 'completed',
};
const values = FIELDS.map((f) => row[f] ?? null);

describe('audit hash with an agent', () => {
  it('a row without an agent hashes exactly as before the column existed (old rows keep verifying)', () => {
    const before = crypto
      .createHmac('sha256', key)
      .update(`7\x1f${GENESIS}${values.map((v) => '\x1f' + (v === null ? '\x00' : String(v))).join('')}`)
      .digest('hex');
    expect(keyedValuesHash(key, 7, GENESIS, values)).toBe(before);
    expect(keyedHash(key, 7, GENESIS, { ...row, agent: null })).toBe(before);
    expect(legacyHash(GENESIS, { ...row, agent: null })).toBe(legacyHash(GENESIS, row));
  });

  it('the agent is covered: queued and stored forms agree, and changing or removing it breaks the hash', () => {
    const withAgent = keyedValuesHash(key, 7, GENESIS, [...values, 'reviewer']);
    expect(keyedHash(key, 7, GENESIS, { ...row, agent: 'reviewer' })).toBe(withAgent);
    expect(keyedHash(key, 7, GENESIS, { ...row, agent: 'other' })).not.toBe(withAgent);
    expect(keyedHash(key, 7, GENESIS, { ...row, agent: null })).not.toBe(withAgent);
  });
});
