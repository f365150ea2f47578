/** `sluicectl status`: one screen of what the daemon is, where it listens and what it holds. */
import type { Argv } from 'yargs';
import type { DaemonStatus } from '../../shared/protocol/entities.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { formatDuration } from '../human-time.js';
import { printResult } from '../print-result.js';

/** Registers `status`; prints `daemon.status` (raw with `--json`). */
export function statusCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'status',
    'show the daemon, proxy address and counts',
    (c) => c.example('$0 status', 'daemon version, proxy address, socket, CA and counts').example('$0 status --json', 'the same as JSON, for scripts'),
    action(async (args) => {
      printResult(args, await callDaemon(args, 'daemon.status'), renderStatus);
    }),
  );
}

/** Human lines for a {@link DaemonStatus}. */
export function renderStatus(s: DaemonStatus): string[] {
  const c = s.counts;
  return [
    `sluiced ${s.version}  pid ${s.pid}  up ${formatDuration(s.uptime_s)}`,
    `proxy    ${s.proxy.listen} (access token ${s.proxy.auth === 'on' ? 'required' : 'off'})`,
    `socket   ${s.socket}`,
    `CA       ${s.ca_path}`,
    `home     ${s.home}`,
    `policy   default ${s.default_verdict}, approvals time out after ${formatDuration(s.approval_timeout_ms / 1000)}`,
    `counts   ${c.credentials} credentials, ${c.pools} pools, ${c.rules} rules, ` + `${c.pending_approvals} pending approvals, ${c.in_flight} in flight`,
  ];
}
