import { describe, expect, it } from 'vitest';
import { fit, fitRight, formatCount, formatDuration, formatRate, sparkline, usageBar, windowAround } from '../../../src/tui/display-format.js';

describe('display format', () => {
  it('formats durations', () => {
    expect(formatDuration(-5)).toBe('0s');
    expect(formatDuration(42_900)).toBe('42s');
    expect(formatDuration(108_000)).toBe('1m48s');
    expect(formatDuration(7_380_000)).toBe('2h03m');
  });

  it('formats counts and rates compactly', () => {
    expect(formatCount(9999)).toBe('9999');
    expect(formatCount(12_345)).toBe('12.3k');
    expect(formatCount(2_500_000)).toBe('2.5M');
    expect(formatRate(0)).toBe('0');
    expect(formatRate(0.44)).toBe('0.4');
    expect(formatRate(12.4)).toBe('12');
  });

  it('fits text to a width', () => {
    expect(fit('abc', 5)).toBe('abc  ');
    expect(fit('abcdef', 4)).toBe('abc…');
    expect(fitRight('7', 3)).toBe('  7');
  });

  it('draws the in-flight bar with at least one cell when busy', () => {
    expect(usageBar(4, 8, 8)).toBe('████░░░░');
    expect(usageBar(1, 256, 8)).toBe('█░░░░░░░');
    expect(usageBar(0, 8, 4)).toBe('░░░░');
    expect(usageBar(20, 8, 4)).toBe('████');
  });

  it('draws a sparkline scaled to its maximum', () => {
    expect(sparkline([0, 0])).toBe('▁▁');
    expect(sparkline([0, 7])).toBe('▁█');
  });

  it('keeps the selected row inside the window', () => {
    expect(windowAround(3, 2, 5)).toEqual({ start: 0, end: 3 });
    expect(windowAround(20, 0, 5)).toEqual({ start: 0, end: 5 });
    expect(windowAround(20, 10, 5)).toEqual({ start: 8, end: 13 });
    expect(windowAround(20, 19, 5)).toEqual({ start: 15, end: 20 });
  });
});
