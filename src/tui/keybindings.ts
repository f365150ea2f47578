/**
 * The one key table: key → command → help text. The footer hints, the `?` overlay and the input handler
 * all read it, so a key cannot work without being documented or be documented without working.
 * Which keys are live depends on the mode: the number field and the help overlay capture the keyboard so
 * a stray `a` typed into a field can never allow a request.
 */
import type { Key } from 'ink';
import type { PanelId } from './state/dashboard-state.js';

/** Something a key does. */
export type Command =
  | 'allow-once'
  | 'always-allow'
  | 'deny'
  | 'always-deny'
  | 'rotate-pool'
  | 'edit-cap'
  | 'edit-global-cap'
  | 'edit-queue-wait'
  | 'move-up'
  | 'move-down'
  | 'next-panel'
  | 'previous-panel'
  | 'toggle-help'
  | 'quit'
  | 'field-digit'
  | 'field-erase'
  | 'field-save'
  | 'field-cancel'
  | 'help-close';

/** Which keyboard map is live. */
export type KeyMode = 'normal' | 'help' | 'field';

/** A special (non-printing) key, by its name in Ink's `Key`. */
export type SpecialKey = 'upArrow' | 'downArrow' | 'tab' | 'return' | 'escape' | 'backspace' | 'delete';

/** One way to press a command: a printable character, a special key, or a ctrl chord. */
export type KeyMatcher = { char: string } | { special: SpecialKey; shift?: boolean } | { ctrl: string } | { digits: true };

/** One row of the key table. */
export interface KeyBinding {
  command: Command;
  mode: KeyMode;
  keys: readonly KeyMatcher[];
  /** How the key is written in help and footer, e.g. "↑/k". */
  label: string;
  help: string;
  /** Short footer text; the footer shows the bindings of the focused panel first. */
  hint?: string;
  /** The panel the command acts on, when it acts on a selected row. */
  panel?: PanelId;
}

/** The key table. Order is the order of the `?` overlay. */
export const KEY_BINDINGS: readonly KeyBinding[] = [
  { command: 'allow-once', mode: 'normal', keys: [{ char: 'a' }], label: 'a', help: 'allow the selected destination once', hint: 'allow', panel: 'approvals' },
  { command: 'always-allow', mode: 'normal', keys: [{ char: 'A' }], label: 'A', help: 'always allow it (saves a rule)', hint: 'always', panel: 'approvals' },
  { command: 'deny', mode: 'normal', keys: [{ char: 'd' }], label: 'd', help: 'deny the selected destination', hint: 'deny', panel: 'approvals' },
  { command: 'always-deny', mode: 'normal', keys: [{ char: 'D' }], label: 'D', help: 'always deny it (saves a rule)', hint: 'never', panel: 'approvals' },
  {
    command: 'rotate-pool',
    mode: 'normal',
    keys: [{ char: 'r' }],
    label: 'r',
    help: 'rotate the selected pool to its next member',
    hint: 'rotate',
    panel: 'pools',
  },
  { command: 'edit-cap', mode: 'normal', keys: [{ char: 'c' }], label: 'c', help: "edit the selected credential's cap", hint: 'cap', panel: 'credentials' },
  {
    command: 'edit-queue-wait',
    mode: 'normal',
    keys: [{ char: 'w' }],
    label: 'w',
    help: "edit the selected credential's queue wait (ms)",
    hint: 'wait',
    panel: 'credentials',
  },
  { command: 'edit-global-cap', mode: 'normal', keys: [{ char: 'g' }], label: 'g', help: 'edit the global cap (empty = unlimited)', hint: 'global cap' },
  { command: 'move-up', mode: 'normal', keys: [{ special: 'upArrow' }, { char: 'k' }], label: '↑/k', help: 'move up' },
  { command: 'move-down', mode: 'normal', keys: [{ special: 'downArrow' }, { char: 'j' }], label: '↓/j', help: 'move down' },
  { command: 'next-panel', mode: 'normal', keys: [{ special: 'tab' }], label: 'tab', help: 'next panel', hint: 'panel' },
  { command: 'previous-panel', mode: 'normal', keys: [{ special: 'tab', shift: true }], label: 'shift-tab', help: 'previous panel' },
  { command: 'toggle-help', mode: 'normal', keys: [{ char: '?' }], label: '?', help: 'show or hide this help', hint: 'help' },
  { command: 'quit', mode: 'normal', keys: [{ char: 'q' }, { ctrl: 'c' }], label: 'q', help: 'quit (the daemon keeps running)', hint: 'quit' },
  { command: 'field-digit', mode: 'field', keys: [{ digits: true }], label: '0-9', help: 'type the new value', hint: 'type' },
  { command: 'field-erase', mode: 'field', keys: [{ special: 'backspace' }, { special: 'delete' }], label: 'backspace', help: 'erase a digit', hint: 'erase' },
  {
    command: 'field-save',
    mode: 'field',
    keys: [{ special: 'return' }],
    label: 'enter',
    help: 'save (refused while the value is out of bounds)',
    hint: 'save',
  },
  { command: 'field-cancel', mode: 'field', keys: [{ special: 'escape' }, { ctrl: 'c' }], label: 'esc', help: 'cancel', hint: 'cancel' },
  { command: 'help-close', mode: 'help', keys: [{ char: '?' }, { special: 'escape' }], label: '?/esc', help: 'close help', hint: 'close' },
  { command: 'quit', mode: 'help', keys: [{ char: 'q' }, { ctrl: 'c' }], label: 'q', help: 'quit', hint: 'quit' },
];

/** The command a key press means in `mode`, or null when the key does nothing there. */
export function commandForKey(mode: KeyMode, input: string, key: Key): Command | null {
  for (const binding of KEY_BINDINGS) {
    if (binding.mode !== mode) continue;
    if (binding.keys.some((m) => matches(m, input, key))) return binding.command;
  }
  return null;
}

function matches(m: KeyMatcher, input: string, key: Key): boolean {
  if ('special' in m) {
    // Ink reports a lone Escape with `meta` set, so only shift is compared here.
    return key[m.special] && (m.shift ?? false) === key.shift;
  }
  if ('ctrl' in m) return key.ctrl && input === m.ctrl;
  // A ctrl or meta chord is never the plain letter: ctrl-a must not allow anything.
  if (key.ctrl || key.meta) return false;
  if ('digits' in m) return /^[0-9]+$/.test(input);
  return input === m.char;
}

/** One key press as Ink reports it. */
export interface KeyPress {
  input: string;
  key: Key;
}

/**
 * Splits what Ink hands over as one input into single key presses. Ink only separates escape sequences,
 * so plain keys that arrive in one read (typed quickly, key repeat, tmux send-keys) come as one string
 * such as "\x7f\x7f12\r" that no binding matches; each character is a key of its own here.
 */
export function splitKeyPresses(input: string, key: Key): KeyPress[] {
  const chars = [...input];
  if (chars.length <= 1 || key.ctrl || key.meta) return [{ input, key }];
  return chars.map((ch) => decodeChar(ch, key));
}

function decodeChar(ch: string, template: Key): KeyPress {
  const blank: Key = { ...template, shift: false, return: false, tab: false, backspace: false, delete: false };
  if (ch === '\r' || ch === '\n') return { input: '', key: { ...blank, return: true } };
  if (ch === '\t') return { input: '', key: { ...blank, tab: true } };
  if (ch === '\x7f') return { input: '', key: { ...blank, delete: true } };
  if (ch === '\b') return { input: '', key: { ...blank, backspace: true } };
  const code = ch.codePointAt(0) ?? 0;
  // Other control characters are ctrl chords: 0x03 is ctrl-c.
  if (code > 0 && code < 0x20) return { input: String.fromCharCode(code + 0x60), key: { ...blank, ctrl: true } };
  return { input: ch, key: { ...blank, shift: /[A-Z]/.test(ch) } };
}

/** The bindings shown by `?` for one mode. */
export function bindingsFor(mode: KeyMode): KeyBinding[] {
  return KEY_BINDINGS.filter((b) => b.mode === mode);
}

/** One footer hint, e.g. `{keys: "a", text: "allow"}`. */
export interface KeyHint {
  keys: string;
  text: string;
}

/**
 * Footer hints for a mode: in normal mode the focused panel's keys first, then the global ones; keys for
 * other panels are left out to keep the line short.
 */
export function hintsFor(mode: KeyMode, focus: PanelId): KeyHint[] {
  const withHint = bindingsFor(mode).filter((b) => b.hint !== undefined);
  const panelKeys = withHint.filter((b) => b.panel === focus);
  const globalKeys = withHint.filter((b) => b.panel === undefined);
  return [...panelKeys, ...globalKeys].map((b) => ({ keys: b.label, text: b.hint ?? '' }));
}
