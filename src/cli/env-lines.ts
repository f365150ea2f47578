/**
 * Renders environment variables as lines a shell can `eval`. Values are single-quoted so that nothing in
 * them (spaces, `$`, backticks, quotes) is interpreted by the shell that evaluates the output.
 */

/** Shells `sluicectl env` can write for; bash and zsh take the POSIX `export` lines of sh. */
export type ShellKind = 'bash' | 'zsh' | 'sh' | 'fish';

/** The shells accepted by `--shell`, in help order. */
export const SHELL_KINDS: readonly ShellKind[] = ['bash', 'zsh', 'sh', 'fish'];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** One line per variable: `export K='V'` for sh, bash and zsh, `set -gx K 'V';` for fish. Keys that are not valid names are refused. */
export function envLines(vars: Record<string, string>, shell: ShellKind): string[] {
  return Object.entries(vars).map(([key, value]) => {
    if (!NAME.test(key)) throw new Error(`refusing to print an environment variable with an invalid name: ${JSON.stringify(key)}`);
    return shell === 'fish' ? `set -gx ${key} ${fishQuote(value)};` : `export ${key}=${shQuote(value)}`;
  });
}

/** POSIX single quoting: the only character to handle is `'`, which becomes `'\''`. */
export function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** fish single quoting: inside '…' fish treats `\\` and `\'` as escapes, nothing else. */
export function fishQuote(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
