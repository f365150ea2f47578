/**
 * The number field's pure logic (issue 12): pre-fill, typing, erasing, bounds checking with the shared
 * validators, and the `limits.set` params a valid value turns into. The bounds come from
 * `shared/protocol/limits.ts`, so the field rejects exactly what the daemon would.
 */
import {
  GLOBAL_CAP_MAX,
  GLOBAL_CAP_MIN,
  MAX_CONCURRENT_MAX,
  MAX_CONCURRENT_MIN,
  QUEUE_TIMEOUT_MAX_MS,
  QUEUE_TIMEOUT_MIN_MS,
  capProblem,
  globalCapProblem,
  queueTimeoutProblem,
} from '../../shared/protocol/limits.js';
import type { ParamsIn } from '../../shared/protocol/params.js';
import type { EditTarget, EditorState } from './dashboard-state.js';

/** Longer than any valid value, so an overlong entry shows the bounds error instead of stopping silently. */
const MAX_DIGITS = 7;

/** Opens a field pre-filled with `value` (the current setting as text; '' = unlimited global cap). */
export function openEditor(target: EditTarget, value: string): EditorState {
  return { target, initial: value, text: value, pristine: true, saving: false, serverError: null };
}

/** Types digits: replaces the pre-filled value on the first keystroke, appends afterwards. */
export function typeDigits(editor: EditorState, digits: string): EditorState {
  if (editor.saving || !/^[0-9]+$/.test(digits)) return editor;
  const base = editor.pristine ? '' : editor.text;
  const text = (base + digits).slice(0, MAX_DIGITS);
  return { ...editor, text, pristine: false, serverError: null };
}

/** Erases the last digit (the whole pre-filled value while it is still selected). */
export function eraseDigit(editor: EditorState): EditorState {
  if (editor.saving) return editor;
  const text = editor.pristine ? '' : editor.text.slice(0, -1);
  return { ...editor, text, pristine: false, serverError: null };
}

/** The bounds the field accepts, for its label. */
export function editorBounds(target: EditTarget): string {
  switch (target.kind) {
    case 'cred-cap':
      return `${MAX_CONCURRENT_MIN}–${MAX_CONCURRENT_MAX}`;
    case 'global-cap':
      return `${GLOBAL_CAP_MIN}–${GLOBAL_CAP_MAX}, empty = unlimited`;
    case 'queue-wait':
      return `${QUEUE_TIMEOUT_MIN_MS}–${QUEUE_TIMEOUT_MAX_MS} ms, 0 = refuse at once`;
  }
}

/** What the field edits, e.g. "cap for anthropic". */
export function editorLabel(target: EditTarget): string {
  switch (target.kind) {
    case 'cred-cap':
      return `cap for ${target.cred}`;
    case 'global-cap':
      return 'global cap';
    case 'queue-wait':
      return `queue wait for ${target.cred} (ms)`;
  }
}

/** Why the current text cannot be saved, or null when it can. Uses the shared validators. */
export function editorProblem(editor: EditorState): string | null {
  const { target, text } = editor;
  if (text === '') {
    if (target.kind === 'global-cap') return null;
    return target.kind === 'cred-cap'
      ? `enter a number between ${MAX_CONCURRENT_MIN} and ${MAX_CONCURRENT_MAX}`
      : `enter a number of milliseconds between ${QUEUE_TIMEOUT_MIN_MS} and ${QUEUE_TIMEOUT_MAX_MS}`;
  }
  const value = Number(text);
  switch (target.kind) {
    case 'cred-cap':
      return capProblem(value);
    case 'global-cap':
      return globalCapProblem(value);
    case 'queue-wait':
      return queueTimeoutProblem(value);
  }
}

/** True when the text differs from what the field was opened with (saving an unchanged value is a no-op). */
export function editorChanged(editor: EditorState): boolean {
  return normalise(editor.text) !== normalise(editor.initial);
}

function normalise(text: string): string {
  return text === '' ? '' : String(Number(text));
}

/** The `limits.set` params for a valid field. Call only when {@link editorProblem} is null. */
export function limitsParams(editor: EditorState): ParamsIn<'limits.set'> {
  const { target, text } = editor;
  switch (target.kind) {
    case 'cred-cap':
      return { cred: target.cred, max_concurrent: Number(text) };
    case 'global-cap':
      return { global: text === '' ? null : Number(text) };
    case 'queue-wait':
      return { cred: target.cred, queue_timeout_ms: Number(text) };
  }
}

/** The notice shown after a successful save, e.g. "cap for anthropic: 8 → 12 (applies to the next request)". */
export function savedMessage(editor: EditorState): string {
  const show = (t: string): string => (t === '' ? 'unlimited' : String(Number(t)));
  return `${editorLabel(editor.target)}: ${show(editor.initial)} → ${show(editor.text)} (applies to the next request)`;
}
