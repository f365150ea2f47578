import { describe, expect, it } from 'vitest';
import type { CredentialUsage, Headroom } from '../../../src/shared/protocol/usage.js';
import { budgetView, formatCompact, headroomParts, headroomTone, tokenRateText } from '../../../src/tui/usage-format.js';

function headroom(over: Partial<Headroom> = {}): Headroom {
  return {
    requests: null,
    tokens: null,
    input_tokens: null,
    output_tokens: null,
    unified: null,
    fraction_left: null,
    updated_at: '2026-01-01T12:00:00.000Z',
    ...over,
  };
}

const win = (remaining: number, limit: number) => ({ remaining, limit, reset_at: null });

function budgeted(today: Partial<CredentialUsage['today']>, budget: Partial<CredentialUsage['budget']>): Pick<CredentialUsage, 'today' | 'budget'> {
  return {
    today: { requests: 0, input_tokens: 0, output_tokens: 0, cached_tokens: 0, ...today },
    budget: { daily_tokens: null, daily_requests: null, ...budget },
  };
}

describe('headroom tone', () => {
  it('is yellow below 20 % left and red below 5 %', () => {
    expect(headroomTone(0.61)).toBe('normal');
    expect(headroomTone(0.2)).toBe('normal');
    expect(headroomTone(0.199)).toBe('warn');
    expect(headroomTone(0.05)).toBe('warn');
    expect(headroomTone(0.049)).toBe('bad');
    expect(headroomTone(0)).toBe('bad');
  });
});

describe('headroom parts', () => {
  it('shows requests as remaining/limit and tokens as percent left: req 37/50 · tok 61%', () => {
    const parts = headroomParts(headroom({ requests: win(37, 50), tokens: win(61_000, 100_000) }));
    expect(parts).toEqual([
      { text: 'req 37/50', tone: 'normal' },
      { text: 'tok 61%', tone: 'normal' },
    ]);
  });

  it('tones each part by its own fraction, rounding the percentage down', () => {
    const parts = headroomParts(headroom({ requests: win(9, 50), tokens: win(4_900, 100_000) }));
    expect(parts).toEqual([
      { text: 'req 9/50', tone: 'warn' },
      { text: 'tok 4%', tone: 'bad' },
    ]);
    // 19.6 % left reads 19 %, in yellow, never "20 %" in yellow.
    expect(headroomParts(headroom({ tokens: win(19_600, 100_000) }))).toEqual([{ text: 'tok 19%', tone: 'warn' }]);
  });

  it('leaves out a part that is unknown, and shows nothing when nothing is known', () => {
    expect(headroomParts(headroom({ requests: win(37, 50) })).map((p) => p.text)).toEqual(['req 37/50']);
    expect(headroomParts(headroom({ tokens: win(5, 10) })).map((p) => p.text)).toEqual(['tok 50%']);
    expect(headroomParts(headroom({ requests: win(3, 0) }))).toEqual([]);
    expect(headroomParts(headroom())).toEqual([]);
    expect(headroomParts(null)).toEqual([]);
  });

  it('without a tokens window, uses the tighter of the input and output token windows', () => {
    expect(headroomParts(headroom({ input_tokens: win(80, 100), output_tokens: win(30, 100) }))).toEqual([{ text: 'tok 30%', tone: 'normal' }]);
  });

  it('compacts large request windows: req 3.9k/4k', () => {
    expect(headroomParts(headroom({ requests: win(3_900, 4_000) }))[0]?.text).toBe('req 3.9k/4k');
  });

  it('with only Anthropic subscription windows, shows the one with the least left: 5h 61%', () => {
    const unified = {
      status: 'allowed',
      windows: [
        { name: '7d', utilization: 0.2, reset_at: null },
        { name: '5h', utilization: 0.39, reset_at: null },
      ],
    };
    expect(headroomParts(headroom({ unified }))).toEqual([{ text: '5h 61%', tone: 'normal' }]);
    const hot = { status: 'allowed', windows: [{ name: '5h', utilization: 0.97, reset_at: null }] };
    expect(headroomParts(headroom({ unified: hot }))).toEqual([{ text: '5h 3%', tone: 'bad' }]);
    // req/tok windows win over unified ones.
    expect(headroomParts(headroom({ unified, requests: win(37, 50) })).map((p) => p.text)).toEqual(['req 37/50']);
  });
});

describe('compact numbers and rates', () => {
  it('formats counts as 850, 1.2k, 12.3k, 50k, 123k, 1.2M', () => {
    expect([850, 1_200, 12_300, 50_000, 123_456, 1_234_567].map(formatCompact)).toEqual(['850', '1.2k', '12.3k', '50k', '123k', '1.2M']);
  });

  it('hides a zero rate and writes the rest as N tok/m', () => {
    expect(tokenRateText(0)).toBeNull();
    expect(tokenRateText(Number.NaN)).toBeNull();
    expect(tokenRateText(0.4)).toBe('<1 tok/m');
    expect(tokenRateText(1_234)).toBe('1.2k tok/m');
    expect(tokenRateText(87.6)).toBe('88 tok/m');
  });
});

describe('daily budget', () => {
  it('shows tokens as day used/limit tok (input + output) and requests as day used/limit req', () => {
    expect(budgetView(budgeted({ input_tokens: 10_000, output_tokens: 2_300 }, { daily_tokens: 50_000 }))).toEqual({
      text: 'day 12.3k/50k tok',
      tone: 'normal',
      spent: false,
    });
    expect(budgetView(budgeted({ requests: 40 }, { daily_requests: 100 }))).toEqual({ text: 'day 40/100 req', tone: 'normal', spent: false });
  });

  it('is red once spent, yellow with less than 20 % left, and absent without a budget', () => {
    expect(budgetView(budgeted({ requests: 100 }, { daily_requests: 100 }))).toMatchObject({ tone: 'bad', spent: true });
    expect(budgetView(budgeted({ requests: 85 }, { daily_requests: 100 }))).toMatchObject({ tone: 'warn', spent: false });
    expect(budgetView(budgeted({ requests: 85 }, {}))).toBeNull();
  });

  it('with both budgets set, shows the one closer to its end', () => {
    const u = budgeted({ requests: 90, input_tokens: 1_000 }, { daily_tokens: 50_000, daily_requests: 100 });
    expect(budgetView(u)?.text).toBe('day 90/100 req');
  });
});
