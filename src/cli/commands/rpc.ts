/**
 * `sluicectl rpc METHOD [JSON]`: a raw call for debugging and for methods newer than this CLI. Params are
 * sent exactly as given (no client-side schema check); the daemon's answer or error decides the outcome.
 */
import type { Argv } from 'yargs';
import type { MethodName, ParamsIn } from '../../shared/protocol/params.js';
import { action } from '../command-action.js';
import { withClient, type GlobalArgs } from '../daemon-call.js';
import { UsageError } from '../exit-codes.js';

/** Registers `rpc <method> [params]`. */
export function rpcCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'rpc <method> [params]',
    'call any RPC method; params is a JSON object',
    (r) =>
      r
        .positional('method', { type: 'string', demandOption: true, describe: 'method name, e.g. daemon.status' })
        .positional('params', { type: 'string', describe: 'JSON object, e.g. \'{"name":"openai"}\'' })
        .example('$0 rpc daemon.status', 'call a method without params')
        .example(`$0 rpc pool.status '{"name":"claude"}'`, 'with params'),
    action(async (args) => {
      const params = parseParams(args.params);
      // Unknown methods are the daemon's to reject (exit 1), which keeps `rpc` useful against newer daemons.
      const result = await withClient(args, (c) => c.call(args.method as MethodName, params as ParamsIn<MethodName>));
      process.stdout.write(JSON.stringify(result, null, 2) + '\n');
    }),
  );
}

/** Parses the params argument: absent → `{}`; anything but a JSON object is a usage error. */
export function parseParams(text: string | undefined): Record<string, unknown> {
  if (text === undefined || text.trim() === '') return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message quotes the input, which could hold a secret someone pasted; do not echo it.
    throw new UsageError('params are not valid JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError('params must be a JSON object, e.g. \'{"name":"openai"}\'');
  }
  return value as Record<string, unknown>;
}
