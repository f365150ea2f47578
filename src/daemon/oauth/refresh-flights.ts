/**
 * One OAuth refresh per credential at a time, whoever sends it: the daemon's proactive refresher and agents
 * whose refresh grants pass through the proxy share these flights. Rotating refresh tokens are single-use,
 * so a second refresh with the same token would get `invalid_grant` and could cool a healthy pool member.
 * An agent's refresh that arrives while another is under way waits for it; if the token it carries is then
 * no longer the credential's current one, it is not sent at all: the agent is answered with the tokens the
 * flight saved, rewritten as the phantoms it already holds.
 */
import type { CredentialVault } from '../vault/credential-vault.js';
import type { TokenExchange } from './token-exchange.js';

/** What an agent's refresh grant should do after {@link RefreshFlights.gate}. */
export type RefreshGate =
  /** Send it: this request is now the owner's flight; call `end(ok)` once its response was handled. */
  | { send: true; sent: string; end: (ok: boolean) => void }
  /** Do not send it: answer the agent with this token response (phantoms only). */
  | { send: false; answer: Buffer };

/** Per-credential single-flight refreshes. */
export class RefreshFlights {
  private readonly flights = new Map<string, Promise<boolean>>();

  constructor(
    private readonly vault: CredentialVault,
    private readonly exchange: TokenExchange,
  ) {}

  /** True while a refresh of `owner` is under way. */
  busy(owner: string): boolean {
    return this.flights.has(owner);
  }

  /** Runs `fn` as `owner`'s flight, or joins the one already under way (its result is shared). */
  run(owner: string, fn: () => Promise<boolean>): Promise<boolean> {
    const running = this.flights.get(owner);
    if (running) return running;
    const p = fn().finally(() => {
      if (this.flights.get(owner) === p) this.flights.delete(owner);
    });
    this.flights.set(owner, p);
    return p;
  }

  /**
   * For an agent's refresh grant injected with `owner`'s refresh token: waits until no refresh of `owner` is
   * under way, then decides (synchronously, so no other refresh can slip in between) whether the outgoing
   * request still carries the current refresh token. `outgoing` are the rewritten request parts.
   */
  async gate(owner: string, pool: string | null, outgoing: readonly (string | Buffer | null | undefined)[]): Promise<RefreshGate> {
    for (let f = this.flights.get(owner); f; f = this.flights.get(owner)) await f.catch(() => false);
    const current = this.currentRefresh(owner);
    if (current === null || !outgoing.some((t) => t && t.includes(current))) {
      return { send: false, answer: this.exchange.savedAsPhantoms({ credential: owner, pool }) };
    }
    let settle!: (ok: boolean) => void;
    const p = new Promise<boolean>((r) => (settle = r));
    this.flights.set(owner, p);
    let ended = false;
    return {
      send: true,
      sent: current,
      end: (ok) => {
        if (ended) return;
        ended = true;
        // Leave the map before waking the waiters, so the first of them can start its own flight.
        if (this.flights.get(owner) === p) this.flights.delete(owner);
        settle(ok);
      },
    };
  }

  /** True when `token` is still `owner`'s current refresh token (an `invalid_grant` for a stale one cools nothing). */
  isCurrent(owner: string, token: string): boolean {
    return this.currentRefresh(owner) === token;
  }

  private currentRefresh(owner: string): string | null {
    const row = this.vault.get(owner);
    if (!row || row.kind !== 'oauth') return null;
    try {
      return this.vault.oauthTokens(owner).refresh_token || null;
    } catch {
      return null;
    }
  }
}
