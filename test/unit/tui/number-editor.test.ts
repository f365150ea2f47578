import { describe, expect, it } from 'vitest';
import { editorChanged, editorProblem, eraseDigit, limitsParams, openEditor, savedMessage, typeDigits } from '../../../src/tui/state/number-editor.js';

const cap = () => openEditor({ kind: 'cred-cap', cred: 'anthropic' }, '8');

describe('number field logic', () => {
  it('the first digit replaces the pre-filled value, later digits append', () => {
    expect(typeDigits(cap(), '1').text).toBe('1');
    expect(typeDigits(typeDigits(cap(), '1'), '2').text).toBe('12');
  });

  it('backspace clears the pre-filled value, then erases one digit at a time', () => {
    expect(eraseDigit(cap()).text).toBe('');
    expect(eraseDigit(typeDigits(cap(), '123')).text).toBe('12');
  });

  it('ignores anything but digits', () => {
    expect(typeDigits(cap(), 'a').text).toBe('8');
    expect(typeDigits(cap(), '-1').text).toBe('8');
  });

  it('checks a credential cap with the shared bounds 1..256', () => {
    expect(editorProblem(typeDigits(cap(), '300'))).toBe('max_concurrent must be between 1 and 256');
    expect(editorProblem(typeDigits(cap(), '0'))).toBe('max_concurrent must be between 1 and 256');
    expect(editorProblem(eraseDigit(cap()))).toMatch(/enter a number/);
    expect(editorProblem(typeDigits(cap(), '256'))).toBeNull();
  });

  it('allows an empty global cap (unlimited) and checks numbers', () => {
    const g = openEditor({ kind: 'global-cap' }, '64');
    expect(editorProblem(eraseDigit(g))).toBeNull();
    expect(limitsParams(eraseDigit(g))).toEqual({ global: null });
    expect(editorProblem(typeDigits(g, '0'))).toMatch(/global cap must be between/);
  });

  it('checks a queue wait against 0..600000 ms', () => {
    const w = openEditor({ kind: 'queue-wait', cred: 'anthropic' }, '0');
    expect(editorProblem(typeDigits(w, '700000'))).toMatch(/queue_timeout_ms must be between 0 and 600000/);
    expect(limitsParams(typeDigits(w, '1500'))).toEqual({ cred: 'anthropic', queue_timeout_ms: 1500 });
  });

  it('turns a cap into limits.set params and a message', () => {
    const e = typeDigits(cap(), '12');
    expect(limitsParams(e)).toEqual({ cred: 'anthropic', max_concurrent: 12 });
    expect(savedMessage(e)).toBe('cap for anthropic: 8 → 12 (applies to the next request)');
  });

  it('knows when nothing changed', () => {
    expect(editorChanged(cap())).toBe(false);
    expect(editorChanged(typeDigits(cap(), '08'))).toBe(false);
    expect(editorChanged(typeDigits(cap(), '9'))).toBe(true);
  });

  it('caps the length so a runaway entry shows the bounds error instead of growing', () => {
    expect(typeDigits(cap(), '123456789').text).toBe('1234567');
  });
});
