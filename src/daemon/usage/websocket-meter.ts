/**
 * The usage side of a WebSocket through sluice (the Responses API over WebSocket, as Codex uses it): the
 * upgrade answer's rate-limit headers, one request for the upgrade that reached the upstream (accepted or
 * refused), and the tokens of every server→client text message that reports usage (`response.completed`).
 * A socket that carries several responses counts one request per response (the first one is the upgrade's).
 */
import type http from 'node:http';
import type { RequestExchange } from '../proxy/request-exchange.js';
import { usageOfMessage } from './usage-meters.js';
import type { UsageRecorder } from './usage-service.js';

/** See the module comment. */
export class WebSocketMeter {
  private responses = 0;

  constructor(
    private readonly usage: UsageRecorder,
    private readonly ex: RequestExchange,
  ) {}

  /** The upstream answered the upgrade (`refused`: with an HTTP status instead of 101). */
  answered(res: http.IncomingMessage, refused: boolean): void {
    const cred = this.ex.credential;
    if (!cred) return;
    this.usage.observeHeaders(cred, res.headers);
    if (refused) this.count(1, null, 0, 0, 0);
  }

  /** The socket is open both ways: the upgrade counts as a request. */
  opened(): void {
    this.count(1, null, 0, 0, 0);
  }

  /** A server→client text message (observed only; it goes to the client as it is). */
  message(data: Buffer): void {
    const u = usageOfMessage(data);
    if (!u) return;
    // The first response on the socket is the upgrade's request, already counted.
    this.count(this.responses++ === 0 ? 0 : 1, u.model, u.input_tokens, u.output_tokens, u.cached_tokens);
  }

  private count(requests: number, model: string | null, input: number, output: number, cached: number): void {
    const cred = this.ex.credential;
    if (!cred) return;
    this.usage.record({
      credential: cred,
      pool: this.ex.pool,
      agent: this.ex.agent?.name ?? null,
      model,
      requests,
      input_tokens: input,
      output_tokens: output,
      cached_tokens: cached,
    });
  }
}
