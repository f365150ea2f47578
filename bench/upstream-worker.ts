/**
 * The fake HTTPS upstream in its own worker thread, so that the load generator and the upstream do not
 * share one event loop (a real provider is elsewhere). Posts `{port}` once listening; closes on 'close'.
 */
import { parentPort } from 'node:worker_threads';
import { startFakeUpstream } from '../test/fakes/fake-upstream.js';

const up = await startFakeUpstream({ record: false });
parentPort!.on('message', (m: unknown) => {
  if (m === 'close') void up.close().then(() => parentPort!.postMessage('closed'));
});
parentPort!.postMessage({ port: up.port });
