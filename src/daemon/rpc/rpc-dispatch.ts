/**
 * Method registration: every call's params are validated with the shared zod schema before its handler
 * runs, and every error leaves as a JSON-RPC error with a stable catalogue code in `data.code`. Unknown
 * errors become -32603 "Internal error" with no message leaked (the log has the detail).
 */
import { JSONRPCServer, createJSONRPCErrorResponse } from 'json-rpc-2.0';
import { ZodError } from 'zod';
import { ERRORS, SluiceError } from '../../shared/protocol/error-codes.js';
import { PARAMS, type MethodName, type ParamsOut } from '../../shared/protocol/params.js';
import type { ResultOf } from '../../shared/protocol/results.js';
import type { Logger } from '../log.js';
import { isBusyError } from '../store/database.js';
import type { RpcConnection } from './rpc-server.js';

/** A handler per RPC method. */
export type Handlers = {
  [M in MethodName]: (params: ParamsOut<M>, conn: RpcConnection) => ResultOf<M> | Promise<ResultOf<M>>;
};

/** A readable one-line summary of a zod failure. */
export function describeZodError(err: ZodError): string {
  return err.issues
    .slice(0, 3)
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}

/** Builds the JSON-RPC server with all handlers registered. */
export function createDispatcher(handlers: Handlers, log: Logger): JSONRPCServer<RpcConnection> {
  const server = new JSONRPCServer<RpcConnection>({ errorListener: () => {} });
  server.mapErrorToJSONRPCErrorResponse = (id, error: unknown) => {
    if (error instanceof SluiceError) return createJSONRPCErrorResponse(id, error.rpcCode, error.message, { code: error.code, ...error.details });
    if (isBusyError(error)) return createJSONRPCErrorResponse(id, ERRORS.store_busy.rpc, ERRORS.store_busy.message, { code: 'store_busy' });
    if (error instanceof ZodError)
      return createJSONRPCErrorResponse(id, ERRORS.invalid_params.rpc, `invalid params: ${describeZodError(error)}`, { code: 'invalid_params' });
    log.error('rpc handler failed', { err: error });
    return createJSONRPCErrorResponse(id, ERRORS.internal.rpc, 'Internal error', { code: 'internal' });
  };
  for (const method of Object.keys(PARAMS) as MethodName[]) {
    const schema = PARAMS[method];
    const handler = handlers[method] as (p: unknown, c: RpcConnection) => unknown;
    server.addMethod(method, async (raw, conn) => {
      const params = schema.parse(raw ?? {});
      return handler(params, conn);
    });
  }
  return server;
}
