/**
 * The `sluice` command line, parsed by hand (three flags do not need yargs' startup cost). Pure: argv in,
 * options or a usage error out.
 */

/** What the command line asks for. */
export interface TuiOptions {
  /** Refuse to start a daemon when none answers. */
  noStart: boolean;
  /** The daemon socket; undefined = `$SLUICE_SOCKET` or the default. */
  socketPath: string | undefined;
  help: boolean;
  /** `--version`: print the package version and exit (only present when asked). */
  version?: boolean;
}

/** Either options or a usage error to print before exiting 2. */
export type ParsedArgs = { ok: true; options: TuiOptions } | { ok: false; error: string };

/** `sluice --help`. */
export const USAGE = `Usage: sluice [--socket PATH] [--no-start]

The sluice dashboard: live requests, the approval queue, caps and credential pools.
Starts the sluiced daemon when none answers on the socket, and tells you it did.

Options:
  --socket PATH   daemon socket (default: $SLUICE_SOCKET, else $SLUICE_HOME/sluiced.sock)
  --no-start      do not start a daemon; exit 3 when none is running
  -V, --version   print the version
  -h, --help      show this help

Keys: press ? in the dashboard. For scripts use sluicectl (e.g. sluicectl watch).`;

/** Parses `argv` (without the node and script paths). */
export function parseTuiArgs(argv: readonly string[]): ParsedArgs {
  const options: TuiOptions = { noStart: false, socketPath: undefined, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') options.help = true;
    else if (arg === '--version' || arg === '-V') options.version = true;
    else if (arg === '--no-start') options.noStart = true;
    else if (arg === '--socket') {
      const value = argv[i + 1];
      if (value === undefined || value === '' || value.startsWith('--')) return { ok: false, error: '--socket needs a path' };
      options.socketPath = value;
      i++;
    } else if (arg.startsWith('--socket=')) {
      const value = arg.slice('--socket='.length);
      if (value === '') return { ok: false, error: '--socket needs a path' };
      options.socketPath = value;
    } else return { ok: false, error: `unknown argument: ${arg}` };
  }
  return { ok: true, options };
}
