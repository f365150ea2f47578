import type { Key } from 'ink';
import { describe, expect, it } from 'vitest';
import { KEY_BINDINGS, bindingsFor, commandForKey, hintsFor, splitKeyPresses } from '../../../src/tui/keybindings.js';

const NO_KEY: Key = {
  upArrow: false,
  downArrow: false,
  leftArrow: false,
  rightArrow: false,
  pageDown: false,
  pageUp: false,
  home: false,
  end: false,
  return: false,
  escape: false,
  ctrl: false,
  shift: false,
  tab: false,
  backspace: false,
  delete: false,
  meta: false,
  super: false,
  hyper: false,
  capsLock: false,
  numLock: false,
};
const key = (over: Partial<Key> = {}): Key => ({ ...NO_KEY, ...over });

describe('key table', () => {
  it('maps the documented keys in normal mode', () => {
    const cases: [string, Partial<Key>, string][] = [
      ['a', {}, 'allow-once'],
      ['A', { shift: true }, 'always-allow'],
      ['d', {}, 'deny'],
      ['D', { shift: true }, 'always-deny'],
      ['r', {}, 'rotate-pool'],
      ['c', {}, 'edit-cap'],
      ['g', {}, 'edit-global-cap'],
      ['w', {}, 'edit-queue-wait'],
      ['j', {}, 'move-down'],
      ['k', {}, 'move-up'],
      ['', { downArrow: true }, 'move-down'],
      ['', { upArrow: true }, 'move-up'],
      ['', { tab: true }, 'next-panel'],
      ['', { tab: true, shift: true }, 'previous-panel'],
      ['?', {}, 'toggle-help'],
      ['q', {}, 'quit'],
      ['c', { ctrl: true }, 'quit'],
    ];
    for (const [input, k, command] of cases) expect(commandForKey('normal', input, key(k)), input).toBe(command);
  });

  it('a ctrl or meta chord never triggers a letter command', () => {
    expect(commandForKey('normal', 'a', key({ ctrl: true }))).toBeNull();
    expect(commandForKey('normal', 'a', key({ meta: true }))).toBeNull();
  });

  it('the number field captures letters: `a` while typing does nothing', () => {
    expect(commandForKey('field', 'a', key())).toBeNull();
    expect(commandForKey('field', '12', key())).toBe('field-digit');
    expect(commandForKey('field', '', key({ delete: true }))).toBe('field-erase');
    expect(commandForKey('field', '', key({ backspace: true }))).toBe('field-erase');
    expect(commandForKey('field', '', key({ return: true }))).toBe('field-save');
    expect(commandForKey('field', '', key({ escape: true, meta: true }))).toBe('field-cancel');
  });

  it('help captures everything but close and quit', () => {
    expect(commandForKey('help', 'a', key())).toBeNull();
    expect(commandForKey('help', '?', key())).toBe('help-close');
    expect(commandForKey('help', '', key({ escape: true, meta: true }))).toBe('help-close');
    expect(commandForKey('help', 'q', key())).toBe('quit');
  });

  it('every binding has help text and no key is bound twice in a mode', () => {
    for (const b of KEY_BINDINGS) expect(b.help.length, b.command).toBeGreaterThan(3);
    for (const mode of ['normal', 'field', 'help'] as const) {
      const seen = new Set<string>();
      for (const b of bindingsFor(mode)) {
        for (const m of b.keys) {
          const id = JSON.stringify(m);
          expect(seen.has(id), `${mode} ${id}`).toBe(false);
          seen.add(id);
        }
      }
    }
  });

  it('footer hints show the focused panel keys first', () => {
    expect(
      hintsFor('normal', 'approvals')
        .slice(0, 4)
        .map((h) => h.keys),
    ).toEqual(['a', 'A', 'd', 'D']);
    expect(hintsFor('normal', 'pools')[0]).toEqual({ keys: 'r', text: 'rotate' });
    expect(hintsFor('normal', 'pools').some((h) => h.keys === 'a')).toBe(false);
  });
});

describe('splitKeyPresses', () => {
  it('splits a read of several plain keys into single presses', () => {
    const presses = splitKeyPresses('\x7f\x7f12A\r', key());
    expect(presses.map((p) => commandForKey('field', p.input, p.key))).toEqual([
      'field-erase',
      'field-erase',
      'field-digit',
      'field-digit',
      null,
      'field-save',
    ]);
    expect(presses[4]).toMatchObject({ input: 'A', key: { shift: true } });
  });

  it('decodes control characters as ctrl chords and leaves single keys alone', () => {
    expect(splitKeyPresses('j\u0003', key()).map((p) => commandForKey('normal', p.input, p.key))).toEqual(['move-down', 'quit']);
    expect(splitKeyPresses('a', key())).toEqual([{ input: 'a', key: key() }]);
  });
});
