/** Phantom rewriting in arbitrary text: bound → secret, bound elsewhere → leak (left in place), unknown → stripped (without a site: WebSocket messages) and counted. */
import { describe, expect, it } from 'vitest';
import { mayContainPhantom, newReport, rewritePhantoms, type PhantomLookup, type PhantomTarget } from '../../../../src/daemon/proxy/phantom-rewriter.js';
import { newPhantom, phantomCore } from '../../../../src/daemon/vault/phantom.js';

const WORK = newPhantom('sk-ant-api03-');
const OTHER = newPhantom('sk-proj-');
const SECRETS: Record<string, string> = { work: 'sk-ant-api03-REAL-work', other: 'sk-proj-REAL-other' };

/** `work` is bound to the current host, `other` is bound elsewhere. */
const lookup: PhantomLookup = (core) => {
  if (core === phantomCore(WORK)) return { credential: 'work', phantom: WORK, bound: true, label: 'work' };
  if (core === phantomCore(OTHER)) return { credential: 'other', phantom: OTHER, bound: false, label: 'other' };
  return undefined;
};

function rewrite(text: string) {
  const report = newReport();
  const asked: string[] = [];
  const out = rewritePhantoms(
    text,
    lookup,
    (t: PhantomTarget) => {
      asked.push(t.credential);
      return SECRETS[t.credential]!;
    },
    report,
  );
  return { out, report, asked };
}

describe('rewritePhantoms', () => {
  it('replaces a bound phantom with its secret and records the credential as used', () => {
    const { out, report } = rewrite(`Bearer ${WORK}`);
    expect(out).toBe('Bearer sk-ant-api03-REAL-work');
    expect([...report.used.values()].map((t) => t.credential)).toEqual(['work']);
    expect(report.leaked).toEqual([]);
    expect(report.unknown).toBe(0);
  });

  it('replaces every occurrence, in a URL path and query alike', () => {
    const { out } = rewrite(`/bot${WORK}/send?key=${WORK}&x=1`);
    expect(out).toBe('/botsk-ant-api03-REAL-work/send?key=sk-ant-api03-REAL-work&x=1');
  });

  it('reports a phantom bound elsewhere as leaked, leaves it in place and never asks for its secret', () => {
    const { out, report, asked } = rewrite(`{"k":"${OTHER}","k2":"${OTHER}"}`);
    expect(out).toBe(`{"k":"${OTHER}","k2":"${OTHER}"}`);
    expect(report.leaked.map((l) => l.credential)).toEqual(['other']);
    expect(report.used.size).toBe(0);
    expect(asked).toEqual([]);
  });

  it('strips an unknown phantom-shaped token and counts it', () => {
    const unknown = newPhantom('sk-ant-api03-');
    const { out, report } = rewrite(`x-api-key=${unknown};`);
    expect(out).toBe('x-api-key=;');
    expect(report.unknown).toBe(1);
    expect(report.used.size).toBe(0);
  });

  it('strips a known core carried under the wrong prefix instead of resolving it', () => {
    const forged = 'ghp_' + phantomCore(WORK);
    const { out, report } = rewrite(`token ${forged}`);
    expect(out).toBe('token ');
    expect(report.unknown).toBe(1);
    expect(report.used.size).toBe(0);
  });

  it('inserts a secret containing $ patterns literally', () => {
    const report = newReport();
    const out = rewritePhantoms(`a ${WORK} b`, lookup, () => "$&$1$$'", report);
    expect(out).toBe("a $&$1$$' b");
  });

  it('returns text without the marker untouched', () => {
    expect(mayContainPhantom('Bearer sk-ant-api03-abc')).toBe(false);
    expect(rewrite('Bearer sk-ant-api03-abc').out).toBe('Bearer sk-ant-api03-abc');
    expect(mayContainPhantom(WORK)).toBe(true);
  });
});
