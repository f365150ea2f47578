/**
 * Runtime validators for every RPC method's params. The daemon validates each call with these before any
 * handler runs, so a handler only ever sees well-typed input; clients may use them to fail early.
 */
import { z } from 'zod';
import { SINCE_PATTERN } from './audit.js';
import {
  DAILY_BUDGET_MAX,
  DAILY_BUDGET_MIN,
  MAX_CONCURRENT_MAX,
  MAX_CONCURRENT_MIN,
  GLOBAL_CAP_MAX,
  GLOBAL_CAP_MIN,
  NAME_PATTERN,
  QUEUE_TIMEOUT_MAX_MS,
  QUEUE_TIMEOUT_MIN_MS,
  ROTATE_BELOW_MAX,
  ROTATE_BELOW_MIN,
} from './limits.js';
import { canonicalSites, INJECT_SITES } from './inject-sites.js';

const name = z.string().regex(NAME_PATTERN, 'names are 1-64 characters: letters, digits, . _ - (not first)');
const hostPattern = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9*?.\-[\]{},!]+$/, 'host globs may use letters, digits, . - and glob characters');
const header = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9-]+$/, 'a header name is letters, digits and -');
const maxConcurrent = z
  .number()
  .int('max_concurrent must be a whole number')
  .min(MAX_CONCURRENT_MIN, `max_concurrent must be between ${MAX_CONCURRENT_MIN} and ${MAX_CONCURRENT_MAX}`)
  .max(MAX_CONCURRENT_MAX, `max_concurrent must be between ${MAX_CONCURRENT_MIN} and ${MAX_CONCURRENT_MAX}`);
const queueTimeout = z
  .number()
  .int()
  .min(QUEUE_TIMEOUT_MIN_MS, `queue_timeout_ms must be between ${QUEUE_TIMEOUT_MIN_MS} and ${QUEUE_TIMEOUT_MAX_MS}`)
  .max(QUEUE_TIMEOUT_MAX_MS, `queue_timeout_ms must be between ${QUEUE_TIMEOUT_MIN_MS} and ${QUEUE_TIMEOUT_MAX_MS}`);
const format = z
  .string()
  .max(200)
  .refine((f) => f.split('{}').length === 2, 'format must contain {} exactly once');
const secret = z
  .string()
  .min(1, 'the secret is empty')
  .max(64 * 1024, 'the secret is too long');
const empty = z.object({}).strict();
const rotateBelowMessage = `rotate_below must be a whole percentage between ${ROTATE_BELOW_MIN} and ${ROTATE_BELOW_MAX}, or null (off)`;
const rotateBelow = z.number().int(rotateBelowMessage).min(ROTATE_BELOW_MIN, rotateBelowMessage).max(ROTATE_BELOW_MAX, rotateBelowMessage).nullable();
const dailyBudget = (what: string) => {
  const message = `${what} must be a whole number between ${DAILY_BUDGET_MIN} and ${DAILY_BUDGET_MAX}, or null (no budget)`;
  return z.number().int(message).min(DAILY_BUDGET_MIN, message).max(DAILY_BUDGET_MAX, message).nullable();
};
const injectSites = z
  .array(z.enum(INJECT_SITES, { errorMap: () => ({ message: `inject sites are ${INJECT_SITES.join(', ')}` }) }))
  .min(1, `inject needs at least one of ${INJECT_SITES.join(', ')}`)
  .max(4)
  .transform((sites) => canonicalSites(sites));
const tokenUrl = z
  .string()
  .max(2048)
  .url('token_url must be a URL')
  .refine((u) => /^https:\/\//i.test(u), 'token_url must be an https:// URL (a refresh token never travels in clear text)');

/** Params schema per RPC method. A method absent here does not exist. */
export const PARAMS = {
  'daemon.status': empty,
  'daemon.shutdown': empty,
  'proxy.env': empty,
  'token.rotate': empty,
  'agents.register': z
    .object({
      name: z
        .string()
        .min(1, 'an agent name is 1-64 characters')
        .max(64, 'an agent name is 1-64 characters')
        .regex(/^[A-Za-z0-9._-]+$/, 'an agent name is letters, digits and . _ -'),
    })
    .strict(),
  'agents.unregister': z.object({ id: z.string().regex(/^[0-9a-f]{12}$/, 'not an agent id') }).strict(),
  'agents.list': empty,
  'cred.add': z
    .object({
      name,
      kind: z.enum(['api-key', 'oauth']).default('api-key'),
      hosts: z.array(hostPattern).min(1, 'a credential needs at least one --host').max(32),
      header: header.optional(),
      format: format.optional(),
      max_concurrent: maxConcurrent.optional(),
      queue_timeout_ms: queueTimeout.optional(),
      token_url: tokenUrl.optional(),
      inject: injectSites.optional(),
      secret,
    })
    .strict()
    .refine((p) => p.kind !== 'oauth' || p.token_url !== undefined, 'an oauth credential needs token_url (--token-url)'),
  'cred.list': empty,
  'cred.update': z
    .object({
      name,
      hosts: z.array(hostPattern).min(1).max(32).optional(),
      header: header.nullable().optional(),
      format: format.nullable().optional(),
      max_concurrent: maxConcurrent.optional(),
      queue_timeout_ms: queueTimeout.optional(),
      token_url: tokenUrl.optional(),
      inject: injectSites.optional(),
      secret: secret.optional(),
    })
    .strict(),
  'cred.remove': z.object({ name }).strict(),
  'pool.create': z
    .object({
      name,
      members: z.array(name).min(1, 'a pool needs at least one --member').max(32),
      rotate_below: rotateBelow.optional(),
      plan_limits_only: z.boolean().optional(),
    })
    .strict(),
  'pool.update': z
    .object({ name, rotate_below: rotateBelow.optional(), plan_limits_only: z.boolean().optional() })
    .strict()
    .refine((p) => p.rotate_below !== undefined || p.plan_limits_only !== undefined, 'nothing to update: give rotate_below or plan_limits_only'),
  'pool.list': empty,
  'pool.status': z.object({ name: name.optional() }).strict(),
  'pool.rotate': z.object({ name }).strict(),
  'pool.reset': z.object({ name }).strict(),
  'pool.remove': z.object({ name }).strict(),
  'pool.add_member': z.object({ name, member: name }).strict(),
  'pool.remove_member': z.object({ name, member: name }).strict(),
  'rule.add': z
    .object({
      verdict: z.enum(['allow', 'deny', 'ask']),
      host: hostPattern,
      port: z.number().int().min(1).max(65535).nullable().optional(),
      method: z
        .string()
        .regex(/^[A-Za-z]{1,16}$/, 'method is an HTTP method name')
        .nullable()
        .optional(),
      path: z.string().min(1).max(1024).startsWith('/', 'a path glob starts with /').nullable().optional(),
      coalesce: z.boolean().default(true),
    })
    .strict(),
  'rule.list': empty,
  'rule.remove': z.object({ id: z.number().int().positive() }).strict(),
  'approval.list': empty,
  'approval.resolve': z
    .object({
      id: z.string().min(1).max(64),
      decision: z.enum(['allow_once', 'always_allow', 'deny', 'always_deny']),
    })
    .strict(),
  'limits.get': empty,
  'limits.set': z
    .object({
      global: z
        .number()
        .int('global cap must be a whole number')
        .min(GLOBAL_CAP_MIN, `global cap must be between ${GLOBAL_CAP_MIN} and ${GLOBAL_CAP_MAX}, or none`)
        .max(GLOBAL_CAP_MAX, `global cap must be between ${GLOBAL_CAP_MIN} and ${GLOBAL_CAP_MAX}, or none`)
        .nullable()
        .optional(),
      cred: name.optional(),
      max_concurrent: maxConcurrent.optional(),
      queue_timeout_ms: queueTimeout.optional(),
      daily_tokens: dailyBudget('daily_tokens').optional(),
      daily_requests: dailyBudget('daily_requests').optional(),
    })
    .strict()
    .refine(
      (p) =>
        (p.max_concurrent === undefined && p.queue_timeout_ms === undefined && p.daily_tokens === undefined && p.daily_requests === undefined) ||
        p.cred !== undefined,
      'max_concurrent, queue_timeout_ms, daily_tokens and daily_requests need cred',
    )
    .refine(
      (p) =>
        p.global !== undefined ||
        p.max_concurrent !== undefined ||
        p.queue_timeout_ms !== undefined ||
        p.daily_tokens !== undefined ||
        p.daily_requests !== undefined,
      'nothing to set: give global, or cred with max_concurrent, queue_timeout_ms, daily_tokens or daily_requests',
    ),
  'stats.snapshot': empty,
  'usage.snapshot': z
    .object({
      by: z.enum(['cred', 'pool', 'agent', 'model'], { errorMap: () => ({ message: 'by is one of cred, pool, agent, model' }) }).default('cred'),
      since: z.enum(['1h', '24h', '7d'], { errorMap: () => ({ message: 'since is one of 1h, 24h, 7d' }) }).default('24h'),
    })
    .strict(),
  'audit.tail': z
    .object({
      n: z.number().int().min(1).max(10_000).default(20),
      cred: name.optional(),
      host: hostPattern.optional(),
      agent: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[A-Za-z0-9._-]+$/, 'an agent name is letters, digits, . _ -')
        .optional(),
      event: z
        .string()
        .min(1)
        .max(64)
        .regex(/^[a-z0-9_.-]+$/, 'an event name is lower-case letters, digits, _ . -')
        .optional(),
      since: z.string().regex(SINCE_PATTERN, 'since is a whole number and a unit (s, m, h, d), e.g. 10m, 2h, 1d').optional(),
    })
    .strict(),
  'audit.verify': empty,
  'events.subscribe': z.object({ types: z.array(z.string().max(64)).max(64).optional() }).strict(),
} as const;

/** Every RPC method name. */
export type MethodName = keyof typeof PARAMS;

/** The params a caller passes to `M` (defaults optional). */
export type ParamsIn<M extends MethodName> = z.input<(typeof PARAMS)[M]>;

/** The params a handler receives for `M` (defaults filled in). */
export type ParamsOut<M extends MethodName> = z.output<(typeof PARAMS)[M]>;

/** True when `method` is a known RPC method. */
export function isMethodName(method: string): method is MethodName {
  return Object.prototype.hasOwnProperty.call(PARAMS, method);
}
