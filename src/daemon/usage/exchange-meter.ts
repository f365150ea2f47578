/**
 * The usage side of one HTTP exchange that used a credential: reads the rate-limit headers of every
 * response a credential got (the first answer and a pool replay's), taps the decoded body the client gets
 * (see {@link UsageMeter}: it observes, never holds a byte back), and records the request once the exchange
 * ends. Made only for exchanges with a credential, so others pay nothing.
 */
import type { ResponseHead } from '../proxy/upstream-response.js';
import type { RequestExchange } from '../proxy/request-exchange.js';
import { meterFor, type UsageMeter } from './usage-meters.js';
import type { UsageRecorder } from './usage-service.js';

/** See the module comment. */
export class ExchangeMeter {
  private meter: UsageMeter | null = null;
  /** Credentials that answered this exchange, in order (a pool replay adds the second). */
  private readonly answered: string[] = [];
  private done = false;
  /**
   * Fed each decoded body chunk the client gets, before masking (a copy is never needed: the meter does not
   * change chunks and keeps at most a bounded JSON body). Whatever text it keeps is masked by the service.
   */
  readonly tap = (chunk: Buffer): void => {
    this.meter?.feed(chunk);
  };

  constructor(
    private readonly usage: UsageRecorder,
    /** The request path without its query string. */
    private readonly path: string,
  ) {}

  /** A response from `credential` arrived (its headers; any status, a 429 too). */
  answeredBy(credential: string | null, res: ResponseHead): void {
    if (!credential) return;
    this.answered.push(credential);
    this.usage.observeHeaders(credential, res.headers);
  }

  /** `res` is the response the client gets: picks the body parser for its content type. */
  relaying(res: ResponseHead): void {
    this.meter = meterFor(this.path, headerText(res.headers['content-type']), headerText(res.headers['content-length']));
  }

  /**
   * Records the exchange (once): one request for each credential whose upstream answered, whatever the
   * status (tokens for the one whose answer the client got). An upstream that never answered (no
   * connection, no response headers) counts nothing.
   */
  end(ex: RequestExchange): void {
    if (this.done) return;
    this.done = true;
    if (this.answered.length === 0) return;
    const last = ex.credential ?? this.answered[this.answered.length - 1]!;
    const pool = ex.pool;
    const agent = ex.agent?.name ?? null;
    // Plain literals of one shape (no spreads): this runs once per request on the proxy's thread.
    for (let i = 0; i < this.answered.length - 1; i++) {
      const c = this.answered[i]!;
      if (c !== last) this.usage.record({ pool, agent, credential: c, model: null, requests: 1, input_tokens: 0, output_tokens: 0, cached_tokens: 0 });
    }
    const u = this.meter?.result() ?? null;
    this.usage.record({
      pool,
      agent,
      credential: last,
      model: u?.model ?? null,
      requests: 1,
      input_tokens: u?.input_tokens ?? 0,
      output_tokens: u?.output_tokens ?? 0,
      cached_tokens: u?.cached_tokens ?? 0,
    });
  }
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
