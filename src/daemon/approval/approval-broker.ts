/**
 * The approval broker. Requests whose verdict is `ask` wait here. Requests to one `host:port` coalesce
 * into one prompt (unless a rule opts out); one answer fans out to every waiter. Fail closed: timeout,
 * shutdown, too many waiters and a full queue all deny. First answer wins; answering again is an error.
 */
import crypto from 'node:crypto';
import type { Clock } from '../clock.js';
import type { ApprovalDecision, ApprovalInfo } from '../../shared/protocol/entities.js';
import { SluiceError } from '../../shared/protocol/error-codes.js';
import type { EventPayloads } from '../../shared/protocol/events.js';
import { MAX_PENDING_PROMPTS, MAX_WAITERS_PER_PROMPT } from '../../shared/protocol/limits.js';

/** What a waiting request learns. */
export type ApprovalOutcome =
  | { allowed: true; decision: 'allow_once' | 'always_allow'; approval_id: string }
  | { allowed: false; reason: 'denied' | 'timeout' | 'too_many_waiting' | 'queue_full' | 'shutdown' | 'aborted'; approval_id: string | null };

/** The request that needs a human answer. */
export interface ApprovalRequest {
  host: string;
  port: number;
  method: string;
  path: string;
  /** False when a rule asked for one prompt per request. */
  coalesce: boolean;
  /** The `sluicectl run` agent asking (its `--name`), shown on the prompt; null for the owner's token. */
  agent?: string | null;
}

/** How many distinct agent names a prompt lists (the waiter count says how many requests there are). */
const MAX_AGENTS_SHOWN = 8;

/** Broker settings. */
export interface BrokerOptions {
  timeoutMs: number;
  maxWaiters?: number;
  maxPending?: number;
}

/** Where the broker reports what happens; the daemon wires this to the event bus. */
export type BrokerEvents = <K extends 'approval.pending' | 'approval.updated' | 'approval.resolved'>(type: K, payload: EventPayloads[K]) => void;

/** What an always-* answer saved: the rule in force for `host:port`, and the `ask` rule it replaced, if any. */
export interface SavedRule {
  rule_id: number;
  replaced: number | null;
}

/**
 * Persists an always-* answer as a rule for `host:port`; must be idempotent. Returns what was saved, or
 * throws when it could not be (the answer still applies to the waiting requests; see `resolve`).
 */
export type PersistDecision = (host: string, port: number, verdict: 'allow' | 'deny') => SavedRule | void;

interface Waiter {
  settle: (o: ApprovalOutcome) => void;
}

interface Prompt {
  info: ApprovalInfo;
  key: string | null;
  waiters: Set<Waiter>;
  cancelTimer: () => void;
}

const RECENT_LIMIT = 1000;

/** Coalescing approval queue; see the module comment for its guarantees. */
export class ApprovalBroker {
  private readonly prompts = new Map<string, Prompt>();
  private readonly byKey = new Map<string, Prompt>();
  private readonly recentlyResolved = new Map<string, ApprovalDecision | 'timeout' | 'shutdown'>();
  private closed = false;

  constructor(
    private readonly clock: Clock,
    private readonly opts: BrokerOptions,
    private readonly persist: PersistDecision,
    private readonly emit: BrokerEvents = () => {},
  ) {}

  /** Pending prompts in arrival order. */
  list(): ApprovalInfo[] {
    return [...this.prompts.values()].map((p) => ({ ...p.info, waiters: p.waiters.size }));
  }

  /** Number of pending prompts. */
  get pendingCount(): number {
    return this.prompts.size;
  }

  /**
   * Waits for a human answer for `req`. Resolves (never rejects) with the outcome. When `signal` aborts,
   * this waiter detaches and the prompt stays for the others.
   */
  ask(req: ApprovalRequest, signal?: AbortSignal): Promise<ApprovalOutcome> {
    if (this.closed) return Promise.resolve({ allowed: false, reason: 'shutdown', approval_id: null });
    if (signal?.aborted) return Promise.resolve({ allowed: false, reason: 'aborted', approval_id: null });
    const key = req.coalesce ? `${req.host.toLowerCase()}:${req.port}` : null;
    let prompt = key ? this.byKey.get(key) : undefined;
    if (prompt && prompt.waiters.size >= (this.opts.maxWaiters ?? MAX_WAITERS_PER_PROMPT)) {
      return Promise.resolve({ allowed: false, reason: 'too_many_waiting', approval_id: prompt.info.id });
    }
    if (!prompt) {
      if (this.prompts.size >= (this.opts.maxPending ?? MAX_PENDING_PROMPTS)) {
        return Promise.resolve({ allowed: false, reason: 'queue_full', approval_id: null });
      }
      return this.attach(this.open(req, key), signal, false);
    }
    return this.attach(prompt, signal, true, req.agent);
  }

  private open(req: ApprovalRequest, key: string | null): Prompt {
    const id = 'ap_' + crypto.randomBytes(5).toString('hex');
    const now = this.clock.now();
    const info: ApprovalInfo = {
      id,
      host: req.host,
      port: req.port,
      method: req.method,
      path: req.path,
      waiters: 0,
      agents: req.agent ? [req.agent] : [],
      created_at: new Date(now).toISOString(),
      expires_at: new Date(now + this.opts.timeoutMs).toISOString(),
    };
    const prompt: Prompt = { info, key, waiters: new Set(), cancelTimer: () => {} };
    prompt.cancelTimer = this.clock.setTimer(() => this.finish(prompt, 'timeout'), this.opts.timeoutMs);
    this.prompts.set(id, prompt);
    if (key) this.byKey.set(key, prompt);
    this.emit('approval.pending', { approval: { ...info, waiters: 1 } });
    return prompt;
  }

  /** Adds a waiter; `announce` publishes the new count (a new prompt was already announced as pending). */
  private attach(prompt: Prompt, signal: AbortSignal | undefined, announce: boolean, agent?: string | null): Promise<ApprovalOutcome> {
    if (signal?.aborted) return Promise.resolve({ allowed: false, reason: 'aborted', approval_id: prompt.info.id });
    const agents = prompt.info.agents ?? [];
    if (agent && !agents.includes(agent) && agents.length < MAX_AGENTS_SHOWN) prompt.info.agents = [...agents, agent];
    return new Promise((resolve) => {
      const onAbort = () => {
        if (!prompt.waiters.delete(waiter)) return;
        this.emit('approval.updated', { id: prompt.info.id, waiters: prompt.waiters.size });
        resolve({ allowed: false, reason: 'aborted', approval_id: prompt.info.id });
      };
      const waiter: Waiter = {
        settle: (o) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(o);
        },
      };
      prompt.waiters.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (announce)
        this.emit('approval.updated', {
          id: prompt.info.id,
          waiters: prompt.waiters.size,
          ...(prompt.info.agents?.length ? { agents: prompt.info.agents } : {}),
        });
    });
  }

  /**
   * Answers prompt `id` for all its waiters and returns how many there were. Always-* persist one rule for
   * `host:port` before any waiter proceeds; `saved` says what was saved (null for once-answers). When the
   * rule cannot be saved, the error is thrown and the prompt stays pending (nobody passes on an answer that
   * was not recorded; the user can answer again). Throws `already_resolved` or `unknown_approval`.
   */
  resolve(id: string, decision: ApprovalDecision): { waiters: number; saved: SavedRule | null } {
    const prompt = this.prompts.get(id);
    if (!prompt) {
      const earlier = this.recentlyResolved.get(id);
      if (earlier) throw new SluiceError('already_resolved', `approval ${id} was already resolved (${earlier})`);
      throw new SluiceError('unknown_approval', `no pending approval with id ${id}`);
    }
    let saved: SavedRule | null = null;
    if (decision === 'always_allow' || decision === 'always_deny') {
      saved = this.persist(prompt.info.host, prompt.info.port, decision === 'always_allow' ? 'allow' : 'deny') ?? null;
    }
    return { waiters: this.finish(prompt, decision), saved };
  }

  private finish(prompt: Prompt, how: ApprovalDecision | 'timeout' | 'shutdown'): number {
    if (!this.prompts.delete(prompt.info.id)) return 0;
    if (prompt.key && this.byKey.get(prompt.key) === prompt) this.byKey.delete(prompt.key);
    prompt.cancelTimer();
    this.remember(prompt.info.id, how);
    const waiters = [...prompt.waiters];
    prompt.waiters.clear();
    const id = prompt.info.id;
    const outcome: ApprovalOutcome =
      how === 'allow_once' || how === 'always_allow'
        ? { allowed: true, decision: how, approval_id: id }
        : { allowed: false, reason: how === 'deny' || how === 'always_deny' ? 'denied' : how, approval_id: id };
    for (const w of waiters) w.settle(outcome);
    const decision: ApprovalDecision = how === 'timeout' || how === 'shutdown' ? 'deny' : how;
    this.emit('approval.resolved', { id, decision, waiters: waiters.length, reason: how === 'timeout' || how === 'shutdown' ? how : 'answered' });
    return waiters.length;
  }

  private remember(id: string, how: ApprovalDecision | 'timeout' | 'shutdown'): void {
    this.recentlyResolved.set(id, how);
    if (this.recentlyResolved.size > RECENT_LIMIT) {
      const oldest = this.recentlyResolved.keys().next().value;
      if (oldest !== undefined) this.recentlyResolved.delete(oldest);
    }
  }

  /** Denies every pending prompt and refuses new ones (daemon shutdown). */
  shutdown(): void {
    this.closed = true;
    for (const p of [...this.prompts.values()]) this.finish(p, 'shutdown');
  }
}
