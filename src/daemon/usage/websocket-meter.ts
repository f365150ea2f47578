/**
 * The usage side of a WebSocket through sluice (the Responses API over WebSocket, as Codex uses it): the
 * upgrade answer's rate-limit headers, and one request with its tokens for every server→client text message
 * that reports usage (`response.completed`): a socket that carries several responses counts one request per
 * response. An upgrade the upstream refused, and a socket that closes without any response, count one
 * request without tokens.
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

  /**
   * The socket closed. One that reported no response still counts as one request (the upgrade reached the
   * upstream); otherwise each response already counted.
   */
  closed(): void {
    if (this.responses === 0) this.count(1, null, 0, 0, 0);
  }

  /** A server→client text message (observed only; it goes to the client as it is). */
  message(data: Buffer): void {
    const u = usageOfMessage(data);
    if (!u) return;
    this.responses++;
    this.count(1, u.model, u.input_tokens, u.output_tokens, u.cached_tokens);
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
