/**
 * The daemon's typed in-process event bus. Publishing costs nothing when nobody listens, and a listener
 * that throws cannot break the publisher (the proxy path never fails because of a UI).
 */
import type { EventPayloads, EventType } from '../../shared/protocol/events.js';

/** A listener receives every event as `(type, payload)`. */
export type BusListener = <K extends EventType>(type: K, payload: EventPayloads[K]) => void;

/** Fan-out of typed events to listeners. */
export class EventBus {
  private readonly listeners = new Set<BusListener>();

  /** Sends an event to every listener. */
  publish<K extends EventType>(type: K, payload: EventPayloads[K]): void {
    for (const l of this.listeners) {
      try {
        l(type, payload);
      } catch {
        // A broken subscriber must not affect the proxy path; the RPC layer drops its own bad connections.
      }
    }
  }

  /** True when at least one listener is attached (lets callers skip building payloads). */
  get hasListeners(): boolean {
    return this.listeners.size > 0;
  }

  /** Adds a listener; returns its removal function. */
  subscribe(listener: BusListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
