/**
 * Model names come from the upstream: they are normalised (printable ASCII, at most 128 characters, junk-only
 * → unknown) before they key a usage bucket, and masked whole before they are cut, so a secret straddling the
 * cut leaves no prefix behind. The normaliser alone, then through UsageService over a migrated database.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/daemon/clock.js';
import { EventBus } from '../../../../src/daemon/events/event-bus.js';
import { openDatabase, type Db } from '../../../../src/daemon/store/database.js';
import { UsageRepo } from '../../../../src/daemon/store/usage-repo.js';
import { MAX_MODEL_NAME_CHARS, normalizeModelName } from '../../../../src/daemon/usage/model-name.js';
import { JsonUsageMeter } from '../../../../src/daemon/usage/usage-meters.js';
import { UsageService, type UsageRecord } from '../../../../src/daemon/usage/usage-service.js';

describe('normalizeModelName', () => {
  it('keeps real model names as they are', () => {
    for (const m of ['claude-sonnet-4-5-20250929', 'gpt-4o-2024-08-06', 'gpt-5-codex', 'models/gemini-1.5-pro', 'org/model:tag@v1 (beta)'])
      expect(normalizeModelName(m)).toBe(m);
  });

  it('caps at 128 characters (a 100 KB name keeps its first 128)', () => {
    expect(MAX_MODEL_NAME_CHARS).toBe(128);
    const huge = 'm'.repeat(100 * 1024);
    expect(normalizeModelName(huge)).toBe('m'.repeat(128));
    expect(normalizeModelName('x'.repeat(128))).toBe('x'.repeat(128));
  });

  it('replaces control characters, ESC sequences, DEL, bidi and zero-width marks, lone surrogates and non-ASCII, one ? per code point', () => {
    expect(normalizeModelName('claude\u0000-\u001b[31mred\u001b[0m\u007f')).toBe('claude?-?[31mred?[0m?');
    expect(normalizeModelName('gpt\r\nX-Injected: 1\t')).toBe('gpt??X-Injected: 1');
    expect(normalizeModelName('\tgpt-4o\r\n')).toBe('gpt-4o');
    expect(normalizeModelName('evil\u202egnp.exe\u200b')).toBe('evil?gnp.exe?');
    expect(normalizeModelName('m\ud800x\udfffy')).toBe('m?x?y');
    expect(normalizeModelName('mod\u{1f600}él')).toBe('mod??l');
    // Every character of the result is printable ASCII, whatever came in.
    const junk = Array.from({ length: 4096 }, (_, i) => String.fromCharCode(i * 16 + 7)).join('');
    expect(normalizeModelName(junk)).toMatch(/^[\x20-\x7e]{1,128}$/);
  });

  it('an empty result is unknown (null): empty, spaces, control characters only', () => {
    for (const m of [null, '', '   ', '\u0000\u0001\u0002', '\n\t \u202e', '\u{1f600}'.repeat(3)]) expect(normalizeModelName(m)).toBeNull();
  });

  it('trims whitespace around the name (a trailing newline is not junk), also the spaces the cut leaves at the end', () => {
    expect(normalizeModelName('  claude  ')).toBe('claude');
    expect(normalizeModelName(`${'a'.repeat(120)}        tail`)).toBe('a'.repeat(120));
  });
});

const dbs: Db[] = [];
afterEach(() => {
  for (const db of dbs.splice(0)) db.close();
});

const SECRET = 'sk-REAL-SECRET-0123456789abcdefghij';
const PHANTOM = 'sk-phantom-0000000000000000000000000';

function setup() {
  const db = openDatabase(':memory:');
  dbs.push(db);
  const clock = new FakeClock(Date.UTC(2026, 0, 10, 10, 15));
  const svc = new UsageService({
    clock,
    repo: new UsageRepo(db),
    bus: new EventBus(),
    names: () => ['a'],
    budgetOf: () => ({ daily_tokens: null, daily_requests: null }),
    maskText: (t) => t.replaceAll(SECRET, PHANTOM),
  });
  svc.start();
  return { clock, db, svc };
}

const rec = (model: string | null): UsageRecord => ({
  credential: 'a',
  pool: null,
  agent: null,
  model,
  requests: 1,
  input_tokens: 1,
  output_tokens: 1,
  cached_tokens: 0,
});

const models = (db: Db) => (db.prepare('SELECT model FROM usage_hourly ORDER BY model').all() as { model: string }[]).map((r) => r.model);

describe('UsageService keys buckets by the normalised model name', () => {
  it('a 100 KB name parsed from a response body is stored and reported capped; control characters are replaced', () => {
    const { clock, db, svc } = setup();
    const parsed = (model: string) => {
      const meter = new JsonUsageMeter();
      meter.feed(Buffer.from(JSON.stringify({ type: 'message', model, usage: { input_tokens: 1, output_tokens: 1 } })));
      return meter.result()!.model;
    };
    svc.record(rec(parsed('z'.repeat(100 * 1024))));
    svc.record(rec(parsed('claude\u0000\u001b]0;pwned\u0007')));
    clock.advance(1000);
    expect(models(db)).toEqual(['claude??]0;pwned?', 'z'.repeat(128)]);
    expect(
      svc
        .snapshot('model', '24h')
        .rows.map((r) => r.key)
        .sort(),
    ).toEqual(['claude??]0;pwned?', 'z'.repeat(128)]);
  });

  it('junk-only names count as unknown ("-"), in the same bucket as no name', () => {
    const { clock, db, svc } = setup();
    svc.record(rec('\u0000\u0000'));
    svc.record(rec('   '));
    svc.record(rec(null));
    clock.advance(1000);
    expect(models(db)).toEqual(['']);
    expect(svc.snapshot('model', '24h').rows).toEqual([{ key: '-', requests: 3, input_tokens: 3, output_tokens: 3, cached_tokens: 0 }]);
  });

  it('a real secret straddling the cut is masked before cutting: no prefix of it is stored or reported', () => {
    const { clock, db, svc } = setup();
    // The secret starts 10 characters before the cut, so a cut-then-mask would keep 'sk-REAL-SE'.
    svc.record(rec(`${'p'.repeat(MAX_MODEL_NAME_CHARS - 10)}${SECRET}${'q'.repeat(50)}`));
    // Interleaved control characters must not be dropped into a secret either.
    svc.record(rec(`x${SECRET.slice(0, 5)}\u0000${SECRET.slice(5)}`));
    clock.advance(1000);
    const stored = JSON.stringify(models(db)) + JSON.stringify(svc.snapshot('model', '24h'));
    expect(stored).not.toContain('sk-REAL');
    expect(models(db)).toContain(`${'p'.repeat(MAX_MODEL_NAME_CHARS - 10)}${PHANTOM.slice(0, 10)}`);
  });
});
