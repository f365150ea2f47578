import { describe, expect, it } from 'vitest';
import { FIELD_ROWS, FIXED_ROWS, frameHeight, planRows } from '../../../src/tui/layout-plan.js';

const total = (p: ReturnType<typeof planRows>) => p.approvals + p.credentials + p.pools + p.notices;

describe('planRows', () => {
  it('fits an 80×24 pane one row short of the terminal (no full-screen redraw)', () => {
    const p = planRows({ rows: 24, approvals: 30, credentials: 30, pools: 30, notices: 30, fieldOpen: false });
    expect(total(p) + FIXED_ROWS).toBe(frameHeight(24));
    expect(frameHeight(24)).toBe(23);
  });

  it('leaves room for an open number field', () => {
    const p = planRows({ rows: 24, approvals: 30, credentials: 30, pools: 30, notices: 30, fieldOpen: true });
    expect(total(p) + FIXED_ROWS + FIELD_ROWS).toBe(23);
  });

  it('gives every panel a row and shares the rest, approvals first', () => {
    const p = planRows({ rows: 14, approvals: 5, credentials: 5, pools: 5, notices: 5, fieldOpen: false });
    expect(p).toEqual({ approvals: 2, credentials: 2, pools: 1, notices: 1 });
  });

  it('does not hand rows to panels with nothing more to show', () => {
    const p = planRows({ rows: 40, approvals: 2, credentials: 1, pools: 0, notices: 3, fieldOpen: false });
    expect(p).toEqual({ approvals: 2, credentials: 1, pools: 1, notices: 3 });
  });

  it('grows with the pane', () => {
    const small = planRows({ rows: 24, approvals: 50, credentials: 50, pools: 50, notices: 50, fieldOpen: false });
    const big = planRows({ rows: 60, approvals: 50, credentials: 50, pools: 50, notices: 50, fieldOpen: false });
    expect(total(big)).toBeGreaterThan(total(small));
  });
});
