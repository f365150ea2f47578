/**
 * `sluicectl watch`: subscribes to daemon events and prints each one as a single JSON line on stdout.
 * A `gap` event or a jump in `seq` means events were dropped, so it re-subscribes for a fresh baseline
 * (the dropped events stay lost; the `gap` line tells the reader). Ends with exit 0 on SIGINT/SIGTERM and
 * exit 3 when the daemon goes away, so a supervising script can tell the two apart.
 */
import type { Argv } from 'yargs';
import { EVENT_TYPES, type SluiceEvent } from '../../shared/protocol/events.js';
import type { ParamsIn } from '../../shared/protocol/params.js';
import type { DaemonClient } from '../../shared/rpc/client.js';
import { action } from '../command-action.js';
import { checkParams, openClient, type GlobalArgs } from '../daemon-call.js';
import { CliError, EXIT } from '../exit-codes.js';

/** Registers `watch [--type T …] [--snapshot]`. */
export function watchCommand(y: Argv<GlobalArgs>): Argv<GlobalArgs> {
  return y.command(
    'watch',
    'stream daemon events as JSON lines (for scripts and tmux)',
    (w) =>
      w
        .option('type', { type: 'string', array: true, choices: EVENT_TYPES, describe: 'only these event types (repeatable)' })
        .option('snapshot', { type: 'boolean', default: false, describe: 'also print the state snapshot on each (re)subscribe' })
        .example('$0 watch --type approval.pending', 'one JSON line per new prompt')
        .example('$0 watch | jq .type', 'every event type as it happens'),
    action(async (args) => {
      const types = args.type && args.type.length > 0 ? args.type.map(String) : undefined;
      const params: ParamsIn<'events.subscribe'> = types ? { types } : {};
      checkParams('events.subscribe', params);
      const client = await openClient(args);
      try {
        await followEvents(client, params, args.snapshot);
      } finally {
        client.close();
      }
    }),
  );
}

/**
 * Prints events until a signal (resolves) or the connection closes (rejects with exit code 3).
 *
 * Events that arrive while a (re)subscribe is in flight are held and judged against the new baseline
 * once its result is in: the result and the events after it can arrive in one chunk, and judging them
 * before the baseline is known would either miss a gap or re-subscribe for no reason.
 */
async function followEvents(client: DaemonClient, params: ParamsIn<'events.subscribe'>, withSnapshot: boolean): Promise<void> {
  let last: number | null = null;
  let held: SluiceEvent[] | null = null;
  let stopping = false;
  let settle!: (outcome: Error | null) => void;
  const ended = new Promise<Error | null>((resolve) => (settle = resolve));
  const printLine = (value: unknown): void => {
    process.stdout.write(JSON.stringify(value) + '\n');
  };

  const subscribe = async (): Promise<void> => {
    held = [];
    const result = await client.call('events.subscribe', params);
    last = result.seq;
    if (withSnapshot) printLine({ type: 'snapshot', seq: result.seq, snapshot: result.snapshot });
    const pending = held;
    held = null;
    for (const event of pending) receive(event);
  };
  const resubscribe = (): void => {
    subscribe().catch((err: unknown) => settle(err instanceof Error ? err : new Error(String(err))));
  };
  const judge = (event: SluiceEvent): void => {
    printLine(event);
    const seq = typeof event.seq === 'number' ? event.seq : null;
    // Anything at or below the baseline is already reflected in the latest snapshot.
    if (seq !== null && last !== null && seq <= last) return;
    const missed = event.type === 'gap' || (seq !== null && last !== null && seq > last + 1);
    if (seq !== null) last = seq;
    if (missed) resubscribe();
  };
  const receive = (event: SluiceEvent): void => {
    if (held) held.push(event);
    else judge(event);
  };
  const onSignal = (): void => {
    stopping = true;
    settle(null);
  };

  const unsubscribe = client.onEvent(receive);
  client.onClose(() => {
    if (!stopping) {
      settle(new CliError('daemon_unreachable', 'sluiced went away; start it again with `sluicectl daemon start`', EXIT.unreachable));
    }
  });
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    await Promise.race([subscribe(), ended]);
    const outcome = await ended;
    if (outcome) throw outcome;
  } finally {
    stopping = true;
    unsubscribe();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
