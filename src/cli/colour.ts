/**
 * Colour for human output: only on a terminal, never with `--json`, never when NO_COLOR is set (any
 * value, https://no-color.org), and never for TERM=dumb. FORCE_COLOR=1 turns it on without a terminal
 * (for pagers such as `less -R`), but NO_COLOR still wins.
 */

/** Styling functions; each returns its text unchanged when colour is off. */
export interface Colours {
  enabled: boolean;
  error(text: string): string;
  warn(text: string): string;
  ok(text: string): string;
  bold(text: string): string;
  dim(text: string): string;
}

/** Whether output to a stream with `isTTY` should be coloured, given the environment and `--json`. */
export function colourEnabled(isTTY: boolean | undefined, json: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (json) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  if (env.FORCE_COLOR !== undefined && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0') return true;
  if (env.TERM === 'dumb') return false;
  return isTTY === true;
}

const sgr = (open: number, close: number) => (text: string) => `\u001b[${open}m${text}\u001b[${close}m`;
const plain = (text: string) => text;

/** The styling for `stream` (stdout or stderr). */
export function colours(stream: { isTTY?: boolean }, json: boolean, env: NodeJS.ProcessEnv = process.env): Colours {
  const on = colourEnabled(stream.isTTY, json, env);
  return on
    ? { enabled: true, error: sgr(31, 39), warn: sgr(33, 39), ok: sgr(32, 39), bold: sgr(1, 22), dim: sgr(2, 22) }
    : { enabled: false, error: plain, warn: plain, ok: plain, bold: plain, dim: plain };
}
