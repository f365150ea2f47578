/** `audit tail` and `audit verify` renderings: 100 columns, local time vs UTC, sensible truncation, segments. */
import { afterEach, describe, expect, it } from 'vitest';
import { auditTailLines, formatAuditTime, shortenRequest, verifyLines, whatCell } from '../../../src/cli/audit-render.js';
import type { AuditVerifyResult } from '../../../src/shared/protocol/audit.js';
import type { AuditRow } from '../../../src/shared/protocol/entities.js';

function row(over: Partial<AuditRow> = {}): AuditRow {
  return {
    id: 1,
    ts: '2026-12-02T18:55:01.123Z',
    event: 'request',
    client: '127.0.0.1:50000',
    host: 'api.anthropic.com',
    port: 443,
    method: 'POST',
    path: '/v1/messages',
    verdict: 'allow',
    rule_id: null,
    credential: 'work',
    status: 200,
    bytes: 1234,
    duration_ms: 12.5,
    detail: 'ok',
    prev_hash: '0'.repeat(64),
    hash: 'f'.repeat(64),
    ...over,
  };
}

const TZ = process.env.TZ;
afterEach(() => {
  if (TZ === undefined) delete process.env.TZ;
  else process.env.TZ = TZ;
});

describe('audit tail rendering', () => {
  it('shows local time by default and UTC with --utc', () => {
    process.env.TZ = 'Asia/Kolkata'; // UTC+05:30, no daylight saving
    expect(formatAuditTime('2026-12-02T18:55:01.123Z', false)).toBe('12-03 00:25:01');
    expect(formatAuditTime('2026-12-02T18:55:01.123Z', true)).toBe('12-02 18:55:01');
    const local = auditTailLines([row()], { utc: false });
    expect(local[0]).toMatch(/^ID\s+TIME\s+EVENT/);
    expect(local[1]).toContain('12-03 00:25:01');
    const utc = auditTailLines([row()], { utc: true });
    expect(utc[0]).toContain('TIME (UTC)');
    expect(utc[1]).toContain('12-02 18:55:01');
  });

  it('fits every line in 100 columns, whatever the lengths of path, detail, event and credential', () => {
    const rows = [
      row({ id: 1234567, path: `/v1/${'very-long-segment/'.repeat(12)}end?key=${'x'.repeat(200)}`, detail: 'd'.repeat(300) }),
      row({ id: 2, event: 'phantom_not_injected_in_a_place', credential: 'a-really-long-credential-name-for-tests', verdict: 'unknown_phantom_refusal' }),
      row({ id: 3, host: null, method: null, path: null, event: 'cred_failover', detail: `pool:${'m'.repeat(200)}->b:rate_limited` }),
      row({ id: 4, host: `${'sub.'.repeat(40)}example.com`, port: 8443 }),
    ];
    const lines = auditTailLines(rows, { utc: true });
    expect(lines).toHaveLength(5);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(100);
    // Alone, the long request keeps its method and host, drops the query first and shows the end of the
    // path, and the whole width is used (no pointless truncation to 80).
    const [, long] = auditTailLines([rows[0]!], { utc: true });
    expect(long!.length).toBeLessThanOrEqual(100);
    expect(long!.length).toBeGreaterThan(95);
    expect(long).toContain('POST api.anthropic.com/');
    expect(long).toContain('/end?…');
    expect(long).not.toContain('key=xxx');
  });

  it('does not truncate what fits, and joins request and detail', () => {
    expect(whatCell(row(), 60)).toBe('POST api.anthropic.com/v1/messages · ok');
    expect(whatCell(row({ port: 8443 }), 60)).toBe('POST api.anthropic.com:8443/v1/messages · ok');
    expect(whatCell(row({ host: null, detail: 'pool:a->b:rate_limited' }), 60)).toBe('pool:a->b:rate_limited');
  });

  it('shortens a request by its query first, then the middle of the path', () => {
    expect(shortenRequest('GET h.example/a/b?token=123456789', 20)).toBe('GET h.example/a/b?…');
    const s = shortenRequest('GET h.example/one/two/three/four/five/six', 24);
    expect(s).toHaveLength(24);
    expect(s.startsWith('GET h.example/')).toBe(true);
    expect(s.endsWith('five/six')).toBe(true);
    expect(s).toContain('…');
  });

  it('never lets a control character through to the terminal', () => {
    const [, l] = auditTailLines([row({ path: '/a\u001b[2Jb', detail: 'x\ny' })], { utc: true });
    expect(l).not.toMatch(/[\u0000-\u001f]/);
  });

  it('says so when nothing matches', () => {
    expect(auditTailLines([], { utc: false })).toEqual(['(no matching audit rows)']);
  });
});

describe('audit verify rendering', () => {
  const base: AuditVerifyResult = {
    ok: true,
    rows: 130,
    first_bad_id: null,
    reason: null,
    problems: [],
    problems_total: 0,
    segments: [
      { kind: 'legacy_sha256', from: 1, to: 120, rows: 120, ok: true, anchored_at: '2026-12-02T18:55:01.000Z' },
      { kind: 'hmac', from: 121, to: 130, rows: 10, ok: true, anchored_at: null },
    ],
    head: { status: 'ok', last_seq: 130, row_count: 130, updated_at: '2026-12-02T19:00:00.000Z', reset_at: null },
  };

  it('names the legacy segment, where and when it was re-anchored, and the HMAC segment', () => {
    expect(verifyLines(base)).toEqual([
      'audit chain ok (130 rows)',
      '  rows 1–120: legacy SHA-256 chain (unkeyed), re-anchored at row 120 on 2026-12-02 18:55:01 UTC; ok',
      '  rows 121–130: HMAC chain ok',
      '  signed head: row 130, 130 rows, matches the table',
    ]);
  });

  it('lists every problem when there is more than one', () => {
    const lines = verifyLines({
      ...base,
      ok: false,
      first_bad_id: 4,
      reason: 'row 4 was edited: its hash does not match its contents',
      problems: [
        { kind: 'row_edited', seq: 4, to: 4, message: 'row 4 was edited: its hash does not match its contents' },
        { kind: 'tail_deleted', seq: 129, to: 130, message: 'rows 129–130 missing from the end' },
      ],
      problems_total: 2,
    });
    expect(lines[0]).toBe('audit chain BROKEN at row 4: row 4 was edited: its hash does not match its contents (130 rows checked)');
    expect(lines).toContain('  - rows 129–130 missing from the end');
  });

  it('does not invent a row number when only the head is wrong', () => {
    const [first] = verifyLines({
      ...base,
      ok: false,
      reason: 'the signed head does not verify',
      problems: [{ kind: 'head_invalid', seq: null, to: null, message: 'the signed head does not verify' }],
      problems_total: 1,
      head: { ...base.head, status: 'invalid' },
    });
    expect(first).toBe('audit chain BROKEN: the signed head does not verify (130 rows checked)');
  });
});
