/** The one refusal catalogue: every code the proxy writes is in it, with the status the proxy uses. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { refusalBody } from '../../../../src/daemon/proxy/refusals.js';
import { isRefusalCode, REFUSALS, type RefusalCode } from '../../../../src/shared/protocol/refusal-codes.js';

const PROXY = fileURLToPath(new URL('../../../../src/daemon/proxy/', import.meta.url));

/** `status: N, code: 'x'` pairs written in the proxy's sources. */
function writtenPairs(): { file: string; status: number; code: string }[] {
  const out: { file: string; status: number; code: string }[] = [];
  for (const f of fs.readdirSync(PROXY).filter((n) => n.endsWith('.ts'))) {
    const text = fs.readFileSync(path.join(PROXY, f), 'utf8');
    for (const m of text.matchAll(/status: (\d{3}),\s*code: '([a-z_]+)'/g)) out.push({ file: f, status: Number(m[1]), code: m[2]! });
  }
  return out;
}

describe('refusal catalogue', () => {
  it('every literal refusal in the proxy uses a catalogued code with its catalogued status', () => {
    const pairs = writtenPairs();
    expect(pairs.length).toBeGreaterThan(15);
    const wrong = pairs.filter((p) => !isRefusalCode(p.code) || REFUSALS[p.code].status !== p.status);
    expect(wrong).toEqual([]);
  });

  it.each(Object.keys(REFUSALS) as RefusalCode[])('%s gets a provider-shaped body naming the code', (code) => {
    const r = { status: REFUSALS[code].status, code, message: REFUSALS[code].summary };
    const anthropic = JSON.parse(refusalBody(r, 'anthropic')) as { type: string; error: { type: string; message: string }; sluice: { code: string } };
    expect(anthropic.type).toBe('error');
    expect(anthropic.error.type).toMatch(/_error$|^request_too_large$/);
    expect(anthropic.sluice.code).toBe(code);
    const openai = JSON.parse(refusalBody(r, 'openai')) as { error: { code: string; type: string } };
    expect(openai.error.code).toBe(code);
    expect(openai.error.type).toMatch(/_error$/);
  });
});
