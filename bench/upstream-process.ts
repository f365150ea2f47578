/**
 * The fake HTTPS upstream in a process of its own (the bench's default): a real provider is elsewhere, so
 * neither the load generator nor the proxies share its event loop. Writes `{"port":N}` on one stdout line
 * once listening; exits when its stdin closes or on SIGTERM, so it never outlives the bench.
 */
import { startFakeUpstream } from '../test/fakes/fake-upstream.js';

const up = await startFakeUpstream({ record: false });
const stop = (): void => {
  void up.close().finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.on('error', stop);
process.stdin.resume();
process.stdout.write(`${JSON.stringify({ port: up.port })}\n`);
