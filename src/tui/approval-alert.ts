/**
 * Telling the user a new approval is waiting while they look elsewhere: the terminal bell (tmux flags the
 * window, so a user in another pane sees it) and, with SLUICE_NOTIFY=desktop, a desktop notification
 * (`notify-send` on Linux, `osascript` on macOS) naming the destination and its waiter count.
 * SLUICE_NOTIFY=off silences both. Side effects are injected so the choices are testable.
 */
import { spawn } from 'node:child_process';
import type { ApprovalInfo } from '../shared/protocol/entities.js';

/** How new approvals are announced. */
export type NotifyMode = 'bell' | 'desktop' | 'off';

/** SLUICE_NOTIFY as a mode; unset or unknown values mean the bell (the safe, local default). */
export function notifyMode(env: NodeJS.ProcessEnv): NotifyMode {
  const v = env.SLUICE_NOTIFY?.trim().toLowerCase();
  return v === 'desktop' || v === 'off' ? v : 'bell';
}

/** The ids in `next` that were not in `seen` (arrival order). */
export function newApprovalIds(seen: ReadonlySet<string>, next: readonly ApprovalInfo[]): string[] {
  return next.filter((a) => !seen.has(a.id)).map((a) => a.id);
}

/** The desktop notification command for `platform`, or null where there is none. */
export function desktopCommand(platform: NodeJS.Platform, title: string, body: string): [string, string[]] | null {
  if (platform === 'linux') return ['notify-send', ['--app-name=sluice', title, body]];
  if (platform === 'darwin') {
    const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
    return ['osascript', ['-e', `display notification ${q(body)} with title ${q(title)}`]];
  }
  return null;
}

/** What an alert may do. */
export interface AlertEffects {
  bell(): void;
  run(file: string, args: string[]): void;
  platform: NodeJS.Platform;
}

/** The real effects: BEL on stdout, and a detached notifier whose failure (not installed) is ignored. */
export const REAL_EFFECTS: AlertEffects = {
  bell: () => {
    if (process.stdout.isTTY) process.stdout.write('\u0007');
  },
  run: (file, args) => {
    try {
      const child = spawn(file, args, { stdio: 'ignore', detached: true });
      child.on('error', () => undefined);
      child.unref();
    } catch {
      // A missing notifier must never take the dashboard down.
    }
  },
  platform: process.platform,
};

/** Announces one new approval according to `mode`. */
export function announceApproval(approval: Pick<ApprovalInfo, 'host' | 'port' | 'method' | 'path' | 'waiters'>, mode: NotifyMode, fx: AlertEffects): void {
  if (mode === 'off') return;
  fx.bell();
  if (mode !== 'desktop') return;
  const waiting = `${approval.waiters} request${approval.waiters === 1 ? '' : 's'} waiting`;
  const cmd = desktopCommand(fx.platform, 'sluice: approval needed', `${approval.host}:${approval.port} (${waiting}): ${approval.method} ${approval.path}`);
  if (cmd) fx.run(cmd[0], cmd[1]);
}
