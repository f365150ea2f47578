/** `sluicectl agents`: the agents running under `sluicectl run` now, with their requests (RPC `agents.list`). */
import type { Argv } from 'yargs';
import type { AgentInfo } from '../../shared/protocol/entities.js';
import { action } from '../command-action.js';
import { callDaemon, type GlobalArgs } from '../daemon-call.js';
import { formatTable } from '../output-table.js';
import { printResult } from '../print-result.js';

/** Registers `agents`. */
export function agentsCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'agents',
    'agents running under `sluicectl run` (each has its own proxy token)',
    (a) => a.example('$0 agents', 'list running agents with their in-flight requests'),
    action(async (args) => {
      printResult(args, await callDaemon(args, 'agents.list'), (r) => renderAgents(r.agents));
    }),
  );
}

/** One row per agent: name, id, since, in flight, requests. */
export function renderAgents(agents: AgentInfo[]): string[] {
  return formatTable(
    ['NAME', 'ID', 'STARTED', 'IN-FLIGHT', 'REQUESTS'],
    agents.map((a) => [a.name, a.id, a.started_at, a.in_flight, a.requests]),
    '(no agents running: start one with sluicectl run -- CMD)',
  );
}
