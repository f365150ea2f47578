/**
 * The files `sluicectl daemon install` writes so sluiced runs at login: a systemd user unit on Linux, a
 * launchd agent plist on macOS. Pure: paths and environment in, file path and text out, so the content is
 * tested without touching the user's service manager.
 */
import path from 'node:path';

/** Platforms with a service file. */
export type ServicePlatform = 'linux' | 'darwin';

/** What the service runs and where it keeps its state. */
export interface ServiceSpec {
  platform: ServicePlatform;
  /** The node binary (absolute). */
  node: string;
  /** The daemon entry point, dist/daemon/main.js (absolute). */
  daemon: string;
  /** SLUICE_* variables to pin (SLUICE_HOME etc. as the installing shell has them). */
  env: Record<string, string>;
  /** The user's home directory. */
  home: string;
  /** $XDG_CONFIG_HOME when set (Linux). */
  xdgConfigHome: string | undefined;
}

/** systemd unit name and launchd label. */
export const SYSTEMD_UNIT = 'sluiced.service';
export const LAUNCHD_LABEL = 'dev.sluice.sluiced';

/** Where the service file lives. */
export function serviceFilePath(spec: Pick<ServiceSpec, 'platform' | 'home' | 'xdgConfigHome'>): string {
  if (spec.platform === 'darwin') return path.join(spec.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`);
  return path.join(spec.xdgConfigHome || path.join(spec.home, '.config'), 'systemd', 'user', SYSTEMD_UNIT);
}

/** The SLUICE_* variables of `env` a service should keep (never a secret: sluice keeps none in env). */
export function pinnedEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('SLUICE_') && v !== undefined && v !== '') out[k] = v;
  return out;
}

/** The service file's text. */
export function serviceFileText(spec: ServiceSpec): string {
  return spec.platform === 'darwin' ? launchdPlist(spec) : systemdUnit(spec);
}

// systemd splits ExecStart on spaces unless an argument is double-quoted; `\` and `"` are escaped inside.
function systemdArg(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

function systemdUnit(spec: ServiceSpec): string {
  const env = Object.entries(spec.env)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `Environment=${systemdArg(`${k}=${v}`)}`);
  return [
    '# Written by sluicectl daemon install; remove with sluicectl daemon uninstall.',
    '[Unit]',
    'Description=sluice credential firewall for AI agents (sluiced)',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${systemdArg(spec.node)} ${systemdArg(spec.daemon)}`,
    ...env,
    'Restart=on-failure',
    'RestartSec=2',
    '',
    '[Install]',
    'WantedBy=default.target',
    '',
  ].join('\n');
}

function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function launchdPlist(spec: ServiceSpec): string {
  const env = Object.entries(spec.env).sort(([a], [b]) => a.localeCompare(b));
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    '<!-- Written by sluicectl daemon install; remove with sluicectl daemon uninstall. -->',
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    `    <string>${xml(spec.node)}</string>`,
    `    <string>${xml(spec.daemon)}</string>`,
    '  </array>',
    ...(env.length > 0
      ? [
          '  <key>EnvironmentVariables</key>',
          '  <dict>',
          ...env.flatMap(([k, v]) => [`    <key>${xml(k)}</key>`, `    <string>${xml(v)}</string>`]),
          '  </dict>',
        ]
      : []),
    '  <key>RunAtLoad</key>',
    '  <true/>',
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
}

/** The service-manager commands that enable (install) or disable (uninstall) the service. */
export function managerCommands(platform: ServicePlatform, action: 'enable' | 'disable', file: string, uid: number): string[][] {
  if (platform === 'darwin') {
    return action === 'enable' ? [['launchctl', 'bootstrap', `gui/${uid}`, file]] : [['launchctl', 'bootout', `gui/${uid}/${LAUNCHD_LABEL}`]];
  }
  return action === 'enable'
    ? [
        ['systemctl', '--user', 'daemon-reload'],
        ['systemctl', '--user', 'enable', '--now', SYSTEMD_UNIT],
      ]
    : [
        ['systemctl', '--user', 'disable', '--now', SYSTEMD_UNIT],
        ['systemctl', '--user', 'daemon-reload'],
      ];
}
