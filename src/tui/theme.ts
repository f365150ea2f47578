/**
 * Colours by meaning. Every coloured cell also carries its meaning in text (a marker or a word), so with
 * NO_COLOR (https://no-color.org: set and not empty) the palette is simply empty and nothing is lost.
 * Ink's chalk does not read NO_COLOR itself, hence this switch.
 */
import { createContext, useContext } from 'react';
import type { Tone } from './usage-format.js';

/** Ink colour names per meaning; undefined = terminal default. */
export interface Palette {
  ok: string | undefined;
  warn: string | undefined;
  bad: string | undefined;
  accent: string | undefined;
  muted: string | undefined;
  /** Whether dim text may be used (dim is unreadable on some no-colour terminals). */
  dim: boolean;
}

/** The colour palette. */
export const COLOR_PALETTE: Palette = { ok: 'green', warn: 'yellow', bad: 'red', accent: 'cyan', muted: 'gray', dim: true };

/** The palette for NO_COLOR: no colours, no dim. */
export const PLAIN_PALETTE: Palette = {
  ok: undefined,
  warn: undefined,
  bad: undefined,
  accent: undefined,
  muted: undefined,
  dim: false,
};

/** Picks the palette from the environment. */
export function paletteFor(env: NodeJS.ProcessEnv): Palette {
  return env.NO_COLOR !== undefined && env.NO_COLOR !== '' ? PLAIN_PALETTE : COLOR_PALETTE;
}

/** Provides the palette to components (colour is presentation, not state, so a context is fine). */
export const PaletteContext = createContext<Palette>(COLOR_PALETTE);

/** The current palette. */
export function usePalette(): Palette {
  return useContext(PaletteContext);
}

/** The palette colour of a tone: red for `bad`, yellow for `warn`, the terminal's default for `normal`. */
export function toneColor(tone: Tone, palette: Palette): string | undefined {
  if (tone === 'bad') return palette.bad;
  return tone === 'warn' ? palette.warn : undefined;
}
