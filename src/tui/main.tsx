#!/usr/bin/env node
/**
 * `sluice`: the dashboard. Parses the command line, refuses a non-terminal stdin, finds or starts the
 * daemon, then renders the Ink app in the terminal's alternate screen until `q`.
 * Exit codes: 0 ok, 1 error, 2 usage (or no terminal), 3 no daemon and `--no-start`.
 */
import path from 'node:path';
import { render } from 'ink';
import { connectDaemon } from '../shared/rpc/client.js';
import { resolveSocketPath, socketPathProblem } from '../shared/rpc/paths.js';
import { parseTuiArgs, USAGE } from './cli-args.js';
import { AppContainer } from './components/AppContainer.js';
import { connectOrStart, startDetachedDaemon } from './daemon-launcher.js';
import { packageVersion } from './package-version.js';
import { paletteFor } from './theme.js';

const ENTER_ALT_SCREEN = '\u001B[?1049h';
const LEAVE_ALT_SCREEN = '\u001B[?1049l';

async function main(): Promise<number> {
  const parsed = parseTuiArgs(process.argv.slice(2));
  if (!parsed.ok) {
    process.stderr.write(`sluice: ${parsed.error}\n\n${USAGE}\n`);
    return 2;
  }
  const { options } = parsed;
  if (options.version) {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  if (options.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!process.stdin.isTTY) {
    process.stderr.write(
      'sluice: the dashboard needs an interactive terminal, and stdin is not one.\n' +
        'For scripts use sluicectl instead, e.g. `sluicectl status` or `sluicectl watch`.\n',
    );
    return 2;
  }
  const socketPath = options.socketPath === undefined ? resolveSocketPath() : path.resolve(options.socketPath);
  const problem = socketPathProblem(socketPath);
  if (problem) {
    process.stderr.write(`sluice: ${problem}\n`);
    return 2;
  }
  const connect = () => connectDaemon({ socketPath, connectTimeoutMs: 2_000 });
  const launch = await connectOrStart({
    connect,
    noStart: options.noStart,
    socketPath,
    startDaemon: () => {
      process.stderr.write('sluice: no daemon is running; starting sluiced…\n');
      return startDetachedDaemon(options.socketPath === undefined ? undefined : socketPath);
    },
  });
  if (launch.kind === 'refused') {
    process.stderr.write(`${launch.message}\n`);
    return 3;
  }
  if (launch.kind === 'failed') {
    process.stderr.write(`${launch.message}\n`);
    return 1;
  }
  const startupNotice = launch.started ? 'started sluiced in the background; it keeps running after you quit (stop it with sluicectl daemon stop)' : undefined;
  const altScreen = process.stdout.isTTY === true;
  if (altScreen) process.stdout.write(ENTER_ALT_SCREEN);
  try {
    const instance = render(
      <AppContainer connect={connect} initialClient={launch.client} startupNotice={startupNotice} palette={paletteFor(process.env)} />,
      // ctrl-c is a key-table binding for quit, so the app unmounts cleanly and closes its connection.
      { exitOnCtrlC: false },
    );
    await instance.waitUntilExit();
  } finally {
    if (altScreen) process.stdout.write(LEAVE_ALT_SCREEN);
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`sluice: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
