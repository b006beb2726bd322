import { LabError } from '../lib/errors.ts';
import type { BackendName } from '../topology.ts';
import { BACKEND_API, type BackendBody } from './backend-api.ts';
import { callUpstream, type UpstreamCall } from './client.ts';
import type { PageBudget } from './deadline.ts';
import { eventsCountedIn, type GatewayMetrics } from './metrics.ts';
import type { Handler, Policy } from './policies/chain.ts';
import { measureCalls } from './policies/measure.ts';
import { type Failure, fail, ok, type Result } from './result.ts';
import type { UpstreamInstance, UpstreamSet } from './upstream.ts';

/** What one dependency gave the page: its answer (maybe served stale from the cache) or an error. */
export type Fetched<T> = { readonly ok: true; readonly value: T; readonly stale: boolean } | Failure;

export interface CallContext {
  readonly requestId: string;
  /** The page's budget; absent for strategies without deadlines. */
  readonly budget?: PageBudget;
}

/** How a strategy reaches its dependencies: plainly, or through the resilience policies. */
export interface DependencyCaller {
  fetch<D extends BackendName>(dependency: D, id: number, ctx: CallContext): Promise<Fetched<BackendBody[D]>>;
}

export type Upstreams = Readonly<Record<BackendName, UpstreamSet>>;
export type Signer = NonNullable<UpstreamCall['sign']>;

/** One call to one dependency as it travels through the policies, each adding what it decides. */
export interface DependencyCall extends CallContext {
  readonly dependency: BackendName;
  readonly id: number;
  /** How long the call may take, every attempt included: set by the deadline policy. */
  readonly deadlineMs?: number;
  /** Aborts when `deadlineMs` runs out: set by the deadline policy. */
  readonly signal?: AbortSignal;
  /** Instances this call went to already; each attempt adds its own, so a retry goes elsewhere. */
  readonly tried?: Set<string>;
}

export type DependencyHandler = Handler<DependencyCall, Fetched<object>>;
export type DependencyPolicy = Policy<DependencyCall, Fetched<object>>;

/** Asks `handler` for one dependency's answer, typed as that dependency's body. */
export async function fetchThrough<D extends BackendName>(
  handler: DependencyHandler,
  dependency: D,
  id: number,
  ctx: CallContext,
): Promise<Fetched<BackendBody[D]>> {
  // The innermost handler parsed the body with BACKEND_API[dependency].schema.
  return (await handler({ ...ctx, dependency, id })) as Fetched<BackendBody[D]>;
}

/** The handler every chain ends in: one attempt, on an instance this call has not tried yet. */
export function attemptOn(upstreams: Upstreams, sign?: Signer): DependencyHandler {
  return async (call) => {
    const instance = upstreams[call.dependency].pick(call.tried);
    call.tried?.add(instance.url);
    const result = await attempt(instance, call.dependency, call.id, {
      requestId: call.requestId,
      ...(call.signal ? { signal: call.signal } : {}),
      ...(call.deadlineMs !== undefined ? { deadlineMs: call.deadlineMs } : {}),
      ...(sign ? { sign } : {}),
    });
    return result.ok ? { ok: true, value: result.value, stale: false } : result;
  };
}

export interface AttemptOptions {
  readonly requestId: string;
  readonly signal?: AbortSignal;
  readonly deadlineMs?: number;
  readonly sign?: Signer;
}

/** One call to one instance, its body checked against what the page needs. */
export async function attempt<D extends BackendName>(
  instance: UpstreamInstance,
  dependency: D,
  id: number,
  options: AttemptOptions,
): Promise<Result<BackendBody[D]>> {
  const api = BACKEND_API[dependency];
  const path = api.path(id);
  const result = await callUpstream(instance, {
    dependency,
    path,
    requestId: options.requestId,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
    ...(options.sign ? { sign: options.sign } : {}),
  });
  if (!result.ok) return result;
  const parsed = api.schema.safeParse(result.value);
  if (parsed.success) return ok(parsed.data as BackendBody[D]);
  const issue = parsed.error.issues[0];
  return fail(
    new LabError({
      status: 502,
      reason: 'DEPENDENCY_FAILED',
      message: `${dependency} answered ${path} with an unexpected body at ${instance.url}: ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
      metadata: { dependency, upstream: instance.url, upstreamStatus: '200' },
    }),
  );
}

/**
 * The naive and parallel strategies' way: one call to the next instance, no deadline, no
 * retry, no cache — whatever the backend does, the page gets. Only measured.
 */
export class PlainCaller implements DependencyCaller {
  readonly #call: DependencyHandler;

  constructor(options: { upstreams: Upstreams; metrics: GatewayMetrics; sign?: Signer }) {
    this.#call = measureCalls(eventsCountedIn(options.metrics))(attemptOn(options.upstreams, options.sign));
  }

  fetch<D extends BackendName>(
    dependency: D,
    id: number,
    ctx: CallContext,
  ): Promise<Fetched<BackendBody[D]>> {
    return fetchThrough(this.#call, dependency, id, ctx);
  }
}
