/**
 * How every sluicectl command reaches the daemon: resolve the socket from the global options, connect,
 * check params against the shared schema (so a bad value exits 2 before anything is sent), call, close.
 */
import path from 'node:path';
import type { ZodTypeAny } from 'zod';
import { PARAMS, type MethodName, type ParamsIn } from '../shared/protocol/params.js';
import type { ResultOf } from '../shared/protocol/results.js';
import { connectDaemon, type DaemonClient } from '../shared/rpc/client.js';
import { resolveSocketPath, socketPathProblem } from '../shared/rpc/paths.js';
import { UsageError } from './exit-codes.js';
import { schemaIssueMessage } from './usage-messages.js';

/** Options every command accepts (`--socket`, `--json`, `--timeout`). */
export interface GlobalArgs {
  socket?: string | undefined;
  json?: boolean | undefined;
  timeout?: number | undefined;
}

const CONNECT_TIMEOUT_MS = 5_000;

/** The socket path the global options select: `--socket`, else `SLUICE_SOCKET`, else the home default. */
export function socketPathFor(args: GlobalArgs): string {
  const socketPath = args.socket ? path.resolve(args.socket) : resolveSocketPath();
  const problem = socketPathProblem(socketPath);
  if (problem) throw new UsageError(problem);
  return socketPath;
}

/** Opens a connection honouring `--socket` and `--timeout`; rejects with `daemon_unreachable` when nothing answers. */
export async function openClient(args: GlobalArgs): Promise<DaemonClient> {
  const timeout = args.timeout;
  if (timeout !== undefined && (!Number.isInteger(timeout) || timeout < 0)) {
    throw new UsageError('--timeout must be a whole number of milliseconds (0 = no limit)');
  }
  return connectDaemon({
    socketPath: socketPathFor(args),
    ...(timeout !== undefined ? { timeoutMs: timeout } : {}),
    connectTimeoutMs: timeout ? Math.min(timeout, CONNECT_TIMEOUT_MS) : CONNECT_TIMEOUT_MS,
  });
}

/** Throws a {@link UsageError} naming the first problem when `params` do not fit `method`'s schema. */
export function checkParams<M extends MethodName>(method: M, params: ParamsIn<M>): void {
  const schema = PARAMS[method] as ZodTypeAny;
  const parsed = schema.safeParse(params);
  if (parsed.success) return;
  const issue = parsed.error.issues[0];
  if (!issue) throw new UsageError(`invalid params for ${method}`);
  // The schema's messages name the bound but never echo the value, so a rejected secret is not printed.
  // Params paths (`hosts.0`) and zod's wording never reach the user: the message names the flag as typed.
  throw new UsageError(schemaIssueMessage(issue.path, issue.message));
}

/** Runs `fn` with a fresh connection and always closes it afterwards. */
export async function withClient<T>(args: GlobalArgs, fn: (client: DaemonClient) => Promise<T>): Promise<T> {
  const client = await openClient(args);
  try {
    return await fn(client);
  } finally {
    client.close();
  }
}

/** One checked call on its own connection: validates params, connects, calls, closes. */
export async function callDaemon<M extends MethodName>(args: GlobalArgs, method: M, params: ParamsIn<M> = {} as ParamsIn<M>): Promise<ResultOf<M>> {
  checkParams(method, params);
  return withClient(args, (client) => client.call(method, params));
}
