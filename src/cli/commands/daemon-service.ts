/**
 * `sluicectl daemon install [--print] [--no-enable]` and `daemon uninstall`: run sluiced at login with the
 * platform's service manager (a systemd user unit on Linux, a launchd agent on macOS). `--print` shows the
 * file and changes nothing. The manager binary can be replaced with SLUICE_SYSTEMCTL / SLUICE_LAUNCHCTL
 * (tests point them at a recorder; nothing is enabled for real there).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Argv } from 'yargs';
import { action } from '../command-action.js';
import type { GlobalArgs } from '../daemon-call.js';
import { CliError, UsageError } from '../exit-codes.js';
import { printLines } from '../print-result.js';
import { managerCommands, pinnedEnv, serviceFilePath, serviceFileText, type ServicePlatform, type ServiceSpec } from '../service-files.js';

const PLATFORMS = ['linux', 'darwin'] as const;

interface ServiceArgs extends GlobalArgs {
  print?: boolean;
  enable?: boolean;
  platform?: string | undefined;
}

const platformOption = { choices: PLATFORMS, describe: 'service flavour (default: this machine: linux = systemd, darwin = launchd)' } as const;

/** `daemon install` and `daemon uninstall` as command modules, registered by the `daemon` group. */
export const daemonServiceCommands = [
  {
    command: 'install',
    describe: 'run sluiced at login (systemd user unit on Linux, launchd agent on macOS)',
    builder: (c: Argv<GlobalArgs>) =>
      c
        .option('print', { type: 'boolean', default: false, describe: 'print the service file instead of writing it' })
        .option('enable', { type: 'boolean', default: true, describe: 'enable and start it after writing (--no-enable: only write the file)' })
        .option('platform', platformOption)
        .example('$0 daemon install', 'write the service file, enable and start it')
        .example('$0 daemon install --print', 'show the file, change nothing'),
    handler: action(async (args: ServiceArgs) => install(args)),
  },
  {
    command: 'uninstall',
    describe: 'stop running sluiced at login and remove the service file',
    builder: (c: Argv<GlobalArgs>) => c.option('platform', platformOption).example('$0 daemon uninstall', 'disable and remove the service'),
    handler: action(async (args: ServiceArgs) => uninstall(args)),
  },
];

function platformOf(args: ServiceArgs): ServicePlatform {
  const p = args.platform ?? process.platform;
  if (p === 'linux' || p === 'darwin') return p;
  throw new UsageError(`daemon install supports Linux (systemd) and macOS (launchd), not ${p}`);
}

function specFor(args: ServiceArgs): ServiceSpec {
  return {
    platform: platformOf(args),
    node: process.execPath,
    daemon: fileURLToPath(new URL('../../daemon/main.js', import.meta.url)),
    env: { ...pinnedEnv(process.env), ...(args.socket ? { SLUICE_SOCKET: path.resolve(args.socket) } : {}) },
    home: os.homedir(),
    xdgConfigHome: process.env.XDG_CONFIG_HOME,
  };
}

/** Runs the manager commands; the binary name can be replaced through the environment. */
function runManager(platform: ServicePlatform, commands: string[][], allowFailure: boolean): void {
  const override = platform === 'darwin' ? process.env.SLUICE_LAUNCHCTL : process.env.SLUICE_SYSTEMCTL;
  for (const [bin, ...argv] of commands) {
    const file = override || bin!;
    const r = spawnSync(file, argv, { stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      if (allowFailure) continue;
      const why = r.error ? ((r.error as NodeJS.ErrnoException).code ?? r.error.message) : (r.stderr.trim().split('\n').pop() ?? `exit ${r.status}`);
      throw new CliError('service_manager_failed', `${[bin, ...argv].join(' ')} failed: ${why}`);
    }
  }
}

async function install(args: ServiceArgs): Promise<void> {
  const spec = specFor(args);
  const text = serviceFileText(spec);
  const file = serviceFilePath(spec);
  if (args.print) {
    process.stdout.write(text);
    return;
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text, { mode: 0o644 });
  const lines = [`wrote ${file}`];
  if (args.enable !== false) {
    runManager(spec.platform, managerCommands(spec.platform, 'enable', file, os.userInfo().uid), false);
    lines.push(
      spec.platform === 'darwin' ? 'loaded with launchctl; sluiced now starts at login' : 'enabled with systemctl --user; sluiced now starts at login',
    );
  } else {
    lines.push(
      spec.platform === 'darwin' ? `load it with: launchctl bootstrap gui/$(id -u) ${file}` : 'enable it with: systemctl --user enable --now sluiced.service',
    );
  }
  printLines(lines);
}

async function uninstall(args: ServiceArgs): Promise<void> {
  const spec = specFor(args);
  const file = serviceFilePath(spec);
  if (!fs.existsSync(file)) {
    printLines(`no service file at ${file}; nothing to remove`);
    return;
  }
  // Disabling a service that is not loaded fails; removing the file is what matters.
  runManager(spec.platform, managerCommands(spec.platform, 'disable', file, os.userInfo().uid), true);
  fs.rmSync(file, { force: true });
  printLines([`removed ${file}`, 'sluiced no longer starts at login (a running one keeps running: sluicectl daemon stop)']);
}
